"""Why two songs are alike: their best-matching moments, marked on both spectrograms."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from musicrec_gui.core.explore import ExploreError, MomentPair, closest_moments
from musicrec_gui.core.library import Track
from musicrec_gui.core.playback import clock_text
from musicrec_gui.core.playlist import display_name
from musicrec_gui.core.spectrogram import compute_overview
from musicrec_gui.gui.preview import RECOMMENDATION, Preview
from musicrec_gui.gui.session import Session
from musicrec_gui.gui.spectrogram import MOMENT_COLOURS, SpectrogramView
from musicrec_gui.gui.tasks import BackgroundJobs

MATCHES_SHOWN = 3


class MatchView(QDialog):
    """The anchor above, a recommended song below, their ``MATCHES_SHOWN`` closest pairs of moments
    marked in matching colours, and a row per pair to hear either side.

    Parameters
    ----------
    session, preview, jobs
    index : VectorIndex or None
        Moments are compared centred on this library's mean, as recommendations are.
    first, second : Track
    """

    def __init__(self, session: Session, preview: Preview, jobs: BackgroundJobs, parent: QWidget | None = None):
        super().__init__(parent)
        self.session, self.preview, self.jobs = session, preview, jobs
        self.tracks: tuple[Track, Track] | None = None
        self.pairs: list[MomentPair] = []
        self.spans: list = [None, None]
        # Made once and shown again for each pair: pyqtgraph views are not deleted while the app runs
        # (deleting them can crash a later garbage collection).
        self.views = [SpectrogramView(session.display_features), SpectrogramView(session.display_features)]
        self.ready = [False, False]
        self._token = 0
        layout = QVBoxLayout(self)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        for side, view in enumerate(self.views):
            view.setMinimumHeight(150)
            view.setToolTip("Coloured stretches of the same colour are the moments that match. Click to play "
                            "from there; wheel to zoom, drag to pan.")
            view.seekRequested.connect(lambda seconds, side=side: self._play(side, seconds))
            layout.addWidget(view, 1)
        self.pair_box = QWidget()
        self.pair_rows = QVBoxLayout(self.pair_box)
        self.pair_rows.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pair_box)
        close = QPushButton("Close")
        close.setToolTip("Close this view")
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        layout.addLayout(bottom)
        self.resize(900, 640)

    def show_pair(self, index, first: Track, second: Track) -> None:
        """Show where ``first`` and ``second`` match best; ``index`` centres the moments as recommendations do."""
        self._token += 1
        self.tracks = (first, second)
        self.pairs, self.spans, self.ready = [], [None, None], [False, False]
        self.setWindowTitle(f"Why these sound alike — {display_name(second)}")
        while self.pair_rows.count():
            item = self.pair_rows.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for view, track in zip(self.views, self.tracks):
            view.title.setText(f"<b>{_html(display_name(track))}</b>")
        self._match(index)
        for side in (0, 1):
            self._load(side)
        self.show()
        self.raise_()

    def _play(self, side: int, seconds: float) -> None:
        if self.tracks is not None:
            self.preview.play_at(self.tracks[side], seconds, role=RECOMMENDATION)

    def _match(self, index) -> None:
        stored = [self.session.song_moments(t) for t in self.tracks]
        if any(s is None for s in stored):
            self.summary.setText("One of the songs has no analysed moments under the current encoder and analysis; "
                                 "wait for the scan, then try again.")
            return
        try:
            self.pairs = closest_moments(stored[0][0], stored[1][0], index=index, count=MATCHES_SHOWN)
        except ExploreError as err:
            self.summary.setText(str(err))
            return
        self.spans = [spans for _vectors, spans in stored]
        self.summary.setText(
            f"The {len(self.pairs)} pairs of moments that sound most alike, of the {len(stored[0][0])} × "
            f"{len(stored[1][0])} the encoder analysed. Each colour marks one pair on both songs.")
        for number, pair in enumerate(self.pairs, 1):
            self.pair_rows.addWidget(self._pair_row(number, pair))

    def _pair_row(self, number: int, pair: MomentPair) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        colour = MOMENT_COLOURS[(number - 1) % len(MOMENT_COLOURS)]
        a, b = self.spans[0][pair.first, 0], self.spans[1][pair.second, 0]
        label = QLabel(f"<span style='background:{colour}; color:white; padding:0 6px'>&nbsp;{number}&nbsp;</span> "
                       f"{clock_text(a)} in the first ↔ {clock_text(b)} in the second · "
                       f"similarity {pair.similarity:.2f}")
        label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(label, 1)
        for side, seconds, text in ((0, a, "Play first"), (1, b, "Play second")):
            button = QPushButton(text)
            button.setToolTip(f"Play {display_name(self.tracks[side])} from {clock_text(seconds)}")
            button.setEnabled(self.preview.player.available)
            button.clicked.connect(lambda _c=False, side=side, s=seconds: self._play(side, s))
            layout.addWidget(button)
        return row

    def _load(self, side: int) -> None:
        track, view = self.tracks[side], self.views[side]
        view.show_message("Computing spectrogram…")
        features, token = self.session.display_features, self._token

        def work():
            return compute_overview(track.path, config=features, duration=track.duration)

        def done(data) -> None:
            if token != self._token:
                return  # another pair is shown now
            view.set_data(data)
            if self.pairs and self.spans[side] is not None:
                moments = []
                for number, pair in enumerate(self.pairs, 1):
                    start, end = self.spans[side][pair.first if side == 0 else pair.second]
                    if start < data.end:
                        moments.append((start, end, str(number), MOMENT_COLOURS[(number - 1) % len(MOMENT_COLOURS)]))
                view.mark_moments(moments)
            self.ready[side] = True

        def failed(err) -> None:
            if token == self._token:
                view.show_message(f"Cannot show this song: {err}")
                self.ready[side] = True

        self.jobs.submit(work, done, failed)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
