"""The anchor's spectrogram panel: the view, titled with the song's name and tags, with its playhead."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from musicrec_gui.core.spectrogram import SpectrogramData, compute_spectrogram
from musicrec_gui.gui.spectrogram import SpectrogramView

SPECTROGRAM_CACHE = 32  # songs


class SpectrogramPanel(QWidget):
    """The anchor's spectrogram, titled with its name and tags, with a playhead while it plays.

    Parameters
    ----------
    session : Session
    preview : Preview
    jobs : BackgroundJobs
        Spectrograms are decoded there, never on the GUI thread.
    """

    shown = Signal()  # a spectrogram (or a message saying why there is none) is on screen

    def __init__(self, session, preview, jobs, parent: QWidget | None = None):
        super().__init__(parent)
        self.session, self.preview, self.jobs = session, preview, jobs
        self.view = SpectrogramView(session.display_features, selectable=True)
        self.view.setMinimumHeight(160)
        self.chips = TagChips()
        self.chips.tagClicked.connect(lambda name: session.filterRequested.emit(f'tag:"{name}"' if " " in name
                                                                                 else f"tag:{name}"))
        self.ready = False
        self.moments = None  # (n, 2) seconds of the anchor's analysed moments, once shown
        self._token = 0
        self._cache: OrderedDict[int, SpectrogramData] = OrderedDict()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        layout.addWidget(self.chips)
        session.anchorChanged.connect(self.refresh)
        session.passageChanged.connect(self.view.set_selection)
        self.view.passageSelected.connect(session.set_passage)
        session.analysisChanged.connect(self._on_analysis_changed)
        preview.positionChanged.connect(self._on_position)
        preview.changed.connect(self._on_preview_changed)
        self.view.seekRequested.connect(self._on_seek_requested)
        self.view.setToolTip(("Click to play from there · " if preview.player.available else "")
                             + "drag across a passage to find songs with a moment like it · "
                             "wheel to zoom in time, Shift+drag to pan · double-click to see it all.\n"
                             "The bands along the top mark the moments the encoder analysed.")

    def _on_analysis_changed(self, _settings) -> None:
        self._cache.clear()
        self.refresh()

    def _title(self, track) -> str:
        from musicrec_gui.core.playlist import display_name

        return f"<b>{_elide(display_name(track), 70)}</b>" + (f" — {_elide(track.album, 40)}" if track.album else "")

    def _mark_analysed(self, track) -> None:
        """Bands along the top where the encoder listened: what a selected passage can be matched by."""
        moments = self.session.song_moments(track) if track.status == "done" else None
        if moments is None or self.view.data is None:
            return
        spans = self.moments = moments[1]
        self.view.mark_moments([(a, b, "", "#ffffff") for a, b in spans], strip=True)
        self.view.set_selection(self.session.passage)

    def refresh(self, *_args) -> None:
        track = self.session.anchor
        self._token += 1
        token = self._token
        self.moments = None
        self.chips.set_tags(self.session.song_tags(track) if track is not None else [])
        if track is None:
            self.view.title.setText("")
            self.view.show_message("Select a song to see its spectrogram.")
            self._set_ready()
            return
        title = self._title(track)
        cached = self._cache.get(track.id)
        if cached is not None:
            self.view.set_data(cached, title)
            self._mark_analysed(track)
            self._on_preview_changed()
            self._set_ready()
            return
        self.ready = False
        self.view.show_loading(title)
        settings, features = self.session.analysis, self.session.display_features

        def work():
            return compute_spectrogram(track.path, settings=settings, config=features, duration=track.duration)

        def done(data):
            if token != self._token:
                return
            self._cache[track.id] = data
            while len(self._cache) > SPECTROGRAM_CACHE:
                self._cache.popitem(last=False)
            self.view.set_data(data, title)
            self._mark_analysed(track)
            self._set_ready()

        def failed(err):
            if token == self._token:
                self.view.show_message(f"Cannot show this song: {err}")
                self._set_ready()

        self.jobs.submit(work, done, failed)

    def _set_ready(self) -> None:
        self.ready = True
        self.shown.emit()

    def _on_position(self, track, seconds: float) -> None:
        anchor = self.session.anchor
        if anchor is not None and track.id == anchor.id and self.preview.anchor_state() is not None:
            self.view.set_playhead(seconds)

    def _on_preview_changed(self) -> None:
        if self.preview.anchor_state() is None:
            self.view.set_playhead(None)
        elif self.view.playhead_seconds is None:
            self.view.set_playhead(self.preview.player.position())

    def _on_seek_requested(self, seconds: float) -> None:
        anchor = self.session.anchor
        if anchor is not None and self.view.data is not None and anchor.status != "failed":
            self.preview.seek_anchor(seconds)
            self.view.set_playhead(seconds)


class TagChips(QWidget):
    """The anchor's most probable tags as chips; clicking one filters the song list by it."""

    tagClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 2, 0, 0)
        self._layout.setSpacing(6)
        self.buttons: list[QToolButton] = []
        self.hide()

    def set_tags(self, tags: list[tuple[str, float]]) -> None:
        self.buttons = []
        while self._layout.count():  # the chips and the "Tags:" caption
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if tags:
            self._layout.addWidget(_caption("Tags:"))
        for name, probability in tags:
            button = QToolButton()
            button.setText(f"{name}  {round(100 * probability)} %")
            button.setAutoRaise(True)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setStyleSheet("QToolButton { border: 1px solid #b9c4d0; border-radius: 9px; padding: 1px 8px; "
                                 "background: #eef3f8; color: #1d3b57; } QToolButton:hover { background: #dbe7f3; }")
            button.setToolTip(f"The encoder hears “{name}” with {round(100 * probability)} % probability. "
                              f"Click to list the songs tagged {name}.")
            button.clicked.connect(lambda _checked=False, n=name: self.tagClicked.emit(n))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self._layout.addStretch(1)
        self.setVisible(bool(tags))


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: #555;")
    return label


def _elide(text: str, n: int) -> str:
    text = text if len(text) <= n else text[: n - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
