"""Widgets of the main window: scan progress, failures, recommendations, preview controls."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QFrame, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton,
    QScrollArea, QSizePolicy, QSlider, QSpinBox, QStyle, QTableView, QToolButton, QVBoxLayout, QWidget,
)

from musicrec_gui.core.library import Track
from musicrec_gui.core.recommend import Recommendation, closeness_percent
from musicrec_gui.gui.models import FailureTableModel, describe, format_duration


def format_eta(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, int(round(seconds)))} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class ScanProgressBar(QWidget):
    """Progress of the running scan: bar, counts, rate, time left, and a Cancel button."""

    cancelRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(160)
        self.label = QLabel("")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the scan after the current song; finished songs are kept")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label, 2)
        layout.addWidget(self.cancel_button)
        self._started_at = 0.0
        self._to_analyse = 0
        self._completed = 0
        self.failed = 0
        self.set_idle("No scan running.")

    def _on_cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText("Cancelling after the current song…")
        self.cancelRequested.emit()

    def set_waiting(self, text: str) -> None:
        self.cancel_button.setEnabled(True)
        self.bar.setRange(0, 0)  # busy
        self.label.setText(text)

    def start(self, total: int, to_analyse: int, cached: int) -> None:
        self._started_at = time.monotonic()
        self._to_analyse = to_analyse
        self._completed = 0
        self.failed = 0
        self.cancel_button.setEnabled(to_analyse > 0)
        self.bar.setRange(0, max(1, to_analyse))
        self.bar.setValue(0)
        self.label.setText(f"{total} songs: {cached} already analysed, {to_analyse} to analyse")

    def advance(self, completed: int, to_analyse: int, failed: bool) -> None:
        self._completed = completed
        self._to_analyse = to_analyse
        self.failed += int(failed)
        self.bar.setRange(0, max(1, to_analyse))
        self.bar.setValue(completed)
        elapsed = max(1e-6, time.monotonic() - self._started_at)
        rate = completed / elapsed
        left = (to_analyse - completed) / rate if rate > 0 else 0.0
        parts = [f"{completed} / {to_analyse} analysed", f"{rate:.1f} songs/s" if rate >= 1 else f"{60 * rate:.1f} songs/min"]
        if completed < to_analyse:
            parts.append(f"about {format_eta(left)} left")
        if self.failed:
            parts.append(f"{self.failed} failed")
        self.label.setText(" · ".join(parts))

    def set_idle(self, text: str) -> None:
        self.cancel_button.setEnabled(False)
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
        self.label.setText(text)

    def finish(self, analysed: int, failed: int, cached: int, cancelled: bool, seconds: float) -> None:
        self.cancel_button.setEnabled(False)
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        if not cancelled:
            self.bar.setValue(self.bar.maximum())
        what = "Scan cancelled" if cancelled else "Scan finished"
        self.label.setText(f"{what}: {analysed} analysed, {failed} failed, {cached} unchanged ({seconds:.1f} s)")


class FailurePanel(QWidget):
    """Files that could not be analysed, with the reason for each."""

    countChanged = Signal(int)
    retryRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = FailureTableModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.horizontalHeader().resizeSection(0, 420)
        self.view.setAlternatingRowColors(True)
        self.summary = QLabel("No failures.")
        self.retry_button = QPushButton("Retry failed")
        self.retry_button.setToolTip("Analyse these files again (after repairing them, or after a time-out)")
        self.retry_button.setEnabled(False)
        self.retry_button.clicked.connect(self.retryRequested)
        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.retry_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self.view)
        self.model.rowsInserted.connect(self._on_rows_changed)
        self.model.modelReset.connect(self._on_rows_changed)

    def set_failures(self, failures) -> None:
        self.model.set_failures(failures)

    def add(self, path: str, reason: str) -> None:
        self.model.add(path, reason)

    def count(self) -> int:
        return self.model.rowCount()

    def _on_rows_changed(self, *args) -> None:
        n = self.model.rowCount()
        self.summary.setText("No failures." if n == 0 else
                             f"{n} file{'s' if n != 1 else ''} could not be analysed (hover for the full text):")
        self.retry_button.setEnabled(n > 0)
        self.countChanged.emit(n)


class RecommendationRow(QFrame):
    """One recommended song: rank, score, spectrogram thumbnail, title/artist/album, play button."""

    playClicked = Signal(object)  # Track

    def __init__(self, rank: int, rec: Recommendation, can_play: bool, parent=None):
        super().__init__(parent)
        self.track = rec.track
        self.score = rec.score
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
        self.thumbnail = QLabel()
        self.thumbnail.setFixedSize(QSize(120, 44))
        self.thumbnail.setStyleSheet("background: #440154;")
        self.thumbnail.setToolTip("Spectrogram of the analysed excerpt")
        t = rec.track
        details = " · ".join(x for x in (t.artist, t.album, format_duration(t.duration)) if x)
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
        layout.addWidget(self.rank_label)
        layout.addWidget(self.play_button)
        layout.addWidget(self.score_label)
        layout.addWidget(self.thumbnail)
        layout.addWidget(self.text, 1)

    def set_thumbnail(self, pixmap: QPixmap) -> None:
        self.thumbnail.setPixmap(pixmap)

    def set_playing(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


class RecommendationPanel(QWidget):
    """Nearest songs to the anchor, with the controls that shape the list."""

    countChanged = Signal(int)
    exclusionsChanged = Signal()
    playRequested = Signal(object)  # Track
    saveRequested = Signal()

    def __init__(self, count: int = 2, exclude_artist: bool = False, exclude_album: bool = False,
                 can_play: bool = True, parent=None):
        super().__init__(parent)
        self.can_play = can_play
        self.anchor: Track | None = None
        self.recommendations: list[Recommendation] = []
        self.rows: list[RecommendationRow] = []
        self.heading = QLabel("Songs like …")
        self.heading.setStyleSheet("font-weight: bold;")
        self.heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_box = QSpinBox()
        self.count_box.setRange(1, 100)
        self.count_box.setValue(count)
        self.count_box.setToolTip("How many similar songs to show")
        self.count_box.valueChanged.connect(self._on_count_changed)
        self.exclude_artist = QCheckBox("Exclude same artist")
        self.exclude_artist.setChecked(exclude_artist)
        self.exclude_album = QCheckBox("Exclude same album")
        self.exclude_album.setChecked(exclude_album)
        self.exclude_artist.toggled.connect(self._on_exclusion_toggled)
        self.exclude_album.toggled.connect(self._on_exclusion_toggled)
        self.save_button = QPushButton("Save as playlist (M3U8)…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.saveRequested)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.count_box)
        controls.addWidget(self.exclude_artist)
        controls.addWidget(self.exclude_album)
        controls.addStretch(1)
        controls.addWidget(self.save_button)
        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(4)
        self.list_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.list_widget)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.message = QLabel("Select a song in the list to see the songs that sound like it.")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.heading)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.scroll, 1)

    @property
    def count(self) -> int:
        return self.count_box.value()

    def _on_count_changed(self, value: int) -> None:
        self.countChanged.emit(value)

    def _on_exclusion_toggled(self, _checked: bool) -> None:
        self.exclusionsChanged.emit()

    def set_anchor(self, track: Track | None) -> None:
        self.anchor = track
        text = describe(track) if track else "…"
        self.heading.setText(f"Songs like {text if len(text) <= 90 else text[:89] + '…'}")
        self.heading.setToolTip(describe(track) if track else "")

    def show_message(self, text: str) -> None:
        self._clear_rows()
        self.recommendations = []
        self.save_button.setEnabled(False)
        self.message.setText(text)
        self.message.show()

    def set_recommendations(self, recs: list[Recommendation]) -> None:
        self._clear_rows()
        self.recommendations = list(recs)
        self.save_button.setEnabled(self.anchor is not None)
        if not recs:
            self.message.setText("No other analysed songs to compare with (or all are excluded).")
            self.message.show()
            return
        self.message.hide()
        for rank, rec in enumerate(recs, 1):
            row = RecommendationRow(rank, rec, self.can_play)
            row.playClicked.connect(self.playRequested)
            self.list_layout.insertWidget(self.list_layout.count() - 1, row)
            self.rows.append(row)

    def row_for(self, track_id: int) -> RecommendationRow | None:
        return next((r for r in self.rows if r.track.id == track_id), None)

    def set_playing(self, track_id: int | None) -> None:
        for row in self.rows:
            row.set_playing(row.track.id == track_id)

    def _clear_rows(self) -> None:
        for row in self.rows:
            self.list_layout.removeWidget(row)
            row.deleteLater()
        self.rows = []


class PlayerControls(QWidget):
    """Play/pause the selected song, stop, volume, and what is playing."""

    playPauseClicked = Signal()
    stopClicked = Signal()
    volumeChanged = Signal(int)

    def __init__(self, volume: int = 80, parent=None):
        super().__init__(parent)
        self.play_button = QPushButton("Play")
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play the selected song from its analysed excerpt")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(volume)
        self.volume.setFixedWidth(110)
        self.volume.setToolTip("Volume")
        self.now_playing = QLabel("")
        self.now_playing.setStyleSheet("color: #555;")
        self.now_playing.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.play_button)
        layout.addWidget(self.stop_button)
        layout.addWidget(QLabel("Volume"))
        layout.addWidget(self.volume)
        layout.addWidget(self.now_playing, 1)
        self.play_button.clicked.connect(self.playPauseClicked)
        self.stop_button.clicked.connect(self.stopClicked)
        self.volume.valueChanged.connect(self.volumeChanged)

    def set_available(self, available: bool, reason: str = "") -> None:
        for button in (self.play_button, self.stop_button):
            button.setEnabled(available)
            if not available:
                button.setToolTip(reason)
        self.volume.setEnabled(available)

    def set_state(self, playing_anchor: bool, paused_anchor: bool, text: str) -> None:
        if playing_anchor:
            self.play_button.setText("Pause")
            self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        else:
            self.play_button.setText("Resume" if paused_anchor else "Play")
            self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.now_playing.setText(text)
