"""One recommended song as a row: rank, play button, score, a spectrogram thumbnail with preview progress, title."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QStyle, QToolButton

from musicrec_gui.core.recommend import Recommendation, closeness_percent
from musicrec_gui.gui.models import format_duration
from musicrec_gui.gui.player import clock_text


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ThumbnailLabel(QLabel):
    """A spectrogram thumbnail that, while its song is in the player, shows how far it has got.

    The thumbnail shows the analysed excerpt, but a preview plays the song on: the bar along
    its bottom is the whole song, filled up to the time that plays.
    """

    BAR_HEIGHT = 4

    def __init__(self, parent=None):
        super().__init__(parent)
        self.progress: float | None = None  # fraction of the song played; None: not in the player

    def set_progress(self, fraction: float | None) -> None:
        fraction = None if fraction is None else min(1.0, max(0.0, float(fraction)))
        if fraction != self.progress:
            self.progress = fraction
            self.update()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.progress is None:
            return
        painter = QPainter(self)
        w, h, bar = self.width(), self.height(), self.BAR_HEIGHT
        painter.fillRect(QRect(0, h - bar, w, bar), QColor(0, 0, 0, 150))
        played = int(round(self.progress * w))
        painter.fillRect(QRect(0, h - bar, played, bar), QColor("#ff3b30"))
        painter.fillRect(QRect(min(played, w - 2), 0, 2, h - bar), QColor(255, 59, 48, 220))
        painter.end()


class RecommendationRow(QFrame):
    """One recommended song: rank, play button, score, spectrogram thumbnail, title/artist/album."""

    playClicked = Signal(object)  # Track
    clicked = Signal(object)  # Track: the row itself, to make it the anchor
    menuRequested = Signal(object, object)  # Track, global position
    whyClicked = Signal(object)  # Track: show where the two songs match

    def __init__(self, rank: int, rec: Recommendation, can_play: bool, parent=None):
        super().__init__(parent)
        self.track = rec.track
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to see the songs like this one; right-click for more")
        self.score = rec.score
        self.can_play = can_play
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.rank_label = QLabel(f"{rank}.")
        self.rank_label.setFixedWidth(24)
        if rec.closeness == rec.closeness:
            self.score_label = QLabel(f"<small>closer than</small><br><b>{closeness_percent(rec.closeness)} %</b>")
            self.score_label.setToolTip(
                f"This pair is {rec.closeness_text} in this library: {closeness_percent(rec.closeness)} % of "
                f"the other pairs of songs sound less alike (cosine similarity {rec.score:.3f}).")
        else:
            self.score_label = QLabel(f"<b>{rec.score:.3f}</b><br><small>similarity</small>")
            self.score_label.setToolTip("Cosine similarity of the song vectors (1 = identical)")
        self.score_label.setFixedWidth(70)
        self.thumbnail = ThumbnailLabel()
        self.thumbnail.setFixedSize(QSize(120, 44))
        self.thumbnail.setStyleSheet("background: #440154;")
        self.thumbnail.setToolTip("Spectrogram of the analysed excerpt")
        t = rec.track
        details = " · ".join(x for x in (t.artist, t.album, format_duration(t.duration)) if x)
        moment = getattr(rec, "moment", None)  # found by a passage: where its matching moment is
        if moment is not None:
            details = f"its moment at {clock_text(moment)} · " + details
        self.text = QLabel(f"<b>{_html(t.title)}</b><br><span style='color:#555'>{_html(details)}</span>")
        self.text.setToolTip(t.display_path)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.play_button = QToolButton()
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play a preview" if can_play else "Audio preview is unavailable")
        self.play_button.setEnabled(can_play)
        self.play_button.clicked.connect(lambda: self.playClicked.emit(self.track))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        for widget in (self.rank_label, self.play_button, self.score_label, self.thumbnail):
            layout.addWidget(widget)
        layout.addWidget(self.text, 1)
        self.why_button = QToolButton()
        self.why_button.setText("Why?")
        self.why_button.setToolTip("Show which moments of the two songs sound most alike")
        self.why_button.clicked.connect(lambda: self.whyClicked.emit(self.track))
        layout.addWidget(self.why_button)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit(self.track)
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:
        self.menuRequested.emit(self.track, event.globalPos())

    def set_playing(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        if self.can_play:
            self.play_button.setToolTip("Pause the preview" if playing else "Play a preview")

    def set_progress(self, seconds: float | None) -> None:
        """Where its preview is (None: not in the player), as a bar over the thumbnail."""
        duration = self.track.duration
        if seconds is None:
            self.thumbnail.set_progress(None)
            self.thumbnail.setToolTip("Spectrogram of the analysed excerpt")
            return
        self.thumbnail.set_progress(seconds / duration if duration > 0 else 0.0)
        total = f" / {clock_text(duration)}" if duration > 0 else ""
        self.thumbnail.setToolTip(f"Spectrogram of the analysed excerpt · playing at {clock_text(seconds)}{total}")


