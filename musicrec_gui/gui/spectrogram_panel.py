"""The anchor's spectrogram panel: the view, titled with the song's name and tags, with its playhead."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

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
        self.view = SpectrogramView(session.display_features)
        self.view.setMinimumHeight(160)
        self.ready = False
        self._token = 0
        self._cache: OrderedDict[int, SpectrogramData] = OrderedDict()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        session.anchorChanged.connect(self.refresh)
        session.analysisChanged.connect(self._on_analysis_changed)
        preview.positionChanged.connect(self._on_position)
        preview.changed.connect(self._on_preview_changed)
        self.view.seekRequested.connect(self._on_seek_requested)
        if preview.player.available:
            self.view.setToolTip("Click to play from there · wheel to zoom in time, drag to pan · "
                                 "double-click to see it all")

    def _on_analysis_changed(self, _settings) -> None:
        self._cache.clear()
        self.refresh()

    def _title(self, track) -> str:
        from musicrec_gui.core.playlist import display_name
        from musicrec_gui.core.tags import tags_text

        title = f"<b>{_elide(display_name(track), 70)}</b>" + (f" — {_elide(track.album, 40)}" if track.album else "")
        tags = self.session.song_tags(track)
        if tags:
            title += f"<br><small>tags: {_elide(tags_text(tags), 90)}</small>"
        return title

    def refresh(self, *_args) -> None:
        track = self.session.anchor
        self._token += 1
        token = self._token
        if track is None:
            self.view.title.setText("")
            self.view.show_message("Select a song to see its spectrogram.")
            self._set_ready()
            return
        title = self._title(track)
        cached = self._cache.get(track.id)
        if cached is not None:
            self.view.set_data(cached, title)
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


def _elide(text: str, n: int) -> str:
    text = text if len(text) <= n else text[: n - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
