"""The scan's panels: progress (with Cancel) and the files that could not be analysed (with Retry)."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QTableView, QVBoxLayout, QWidget,
)

from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.names import display_text
from musicrec_gui.gui.engine import Reanalysed, ScanQueued, Seeded
from musicrec_gui.gui.models import FailureTableModel
from musicrec_gui.gui.scanning import ScanController


def format_eta(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, int(round(seconds)))} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class ScanProgressBar(QWidget):
    """Progress of the running scan: bar, counts, rate, time left, and a Cancel button."""

    def __init__(self, scans: ScanController, parent=None):
        super().__init__(parent)
        self.scans = scans
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
        scans.engine.event.connect(self._on_event)
        scans.message.connect(self._on_message)

    def _on_event(self, event) -> None:
        if isinstance(event, ScanQueued):
            self.set_waiting("Looking for songs…")
        elif isinstance(event, Seeded):
            self.set_waiting(f"{len(event.tracks)} songs ready from their shipped analysis; looking for changes…")
        elif isinstance(event, scan_mod.ListingProgress):
            self.set_waiting(f"Looking for songs… {event.found} found")
        elif isinstance(event, scan_mod.ScanStarted):
            self._gone = (event.pruned, event.missing)
            self.start(event.total, event.to_analyse, event.cached)
        elif isinstance(event, (scan_mod.TrackDone, scan_mod.TrackFailed)):
            self.advance(event.completed, event.to_analyse, failed=isinstance(event, scan_mod.TrackFailed))
        elif isinstance(event, scan_mod.ScanFinished):
            self.finish(event.analysed, event.failed, event.cached, event.cancelled, event.seconds)
            if event.error:
                self.set_idle(f"The scan stopped: {event.error}")

    def _on_message(self, text: str, _timeout: int) -> None:
        if text.startswith("Cannot analyse"):
            self.set_idle(text)

    def _on_cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText("Cancelling after the current song…")
        self.scans.cancel()

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
        removed, missing = getattr(self, "_gone", (0, 0))
        self._gone = (0, 0)
        gone = (f", {removed} removed" if removed else "") + (f", {missing} missing (kept)" if missing else "")
        self.label.setText(f"{what}: {analysed} analysed, {failed} failed, {cached} unchanged{gone} ({seconds:.1f} s)")


class FailurePanel(QWidget):
    """Files of the open folder that could not be analysed, with the reason for each, and Retry."""

    countChanged = Signal(int)

    def __init__(self, scans: ScanController, parent=None):
        super().__init__(parent)
        self.scans = scans
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
        self.retry_button.clicked.connect(self.retry)
        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.retry_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self.view)
        self.model.rowsInserted.connect(self._on_rows_changed)
        self.model.rowsRemoved.connect(self._on_rows_changed)
        self.model.modelReset.connect(self._on_rows_changed)
        scans.session.folderShown.connect(self._on_folder_shown)
        scans.engine.event.connect(self._on_event)

    def _on_folder_shown(self, _tracks) -> None:
        # The session's table, not the shown sequence: a large folder's songs come as a view that
        # makes a Track per song read (~5 s to find the failed few of a million).
        self.set_failures((t.display_path, t.error) for t in self.scans.session.songs.with_status("failed"))

    def _on_event(self, event) -> None:
        if isinstance(event, scan_mod.TrackFailed):
            self.add(display_text(event.path), event.reason)
        elif isinstance(event, Reanalysed) and self.scans.session.track(event.track_id) is not None:
            result = event.result
            if isinstance(result, scan_mod.TrackFailed):
                self.add(display_text(result.path), result.reason)
            else:
                self.model.remove(result.track.display_path)

    def retry(self) -> None:
        """Analyse the failed files again."""
        if self.scans.start_scan(retry_failed=True):
            self.set_failures(())

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
