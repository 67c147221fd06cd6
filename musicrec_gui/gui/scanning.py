"""Scanning from the app: open a folder, rescan, retry, cancel, and keep the session's songs current."""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal

from musicrec_gui.core import scan as scan_mod
from musicrec_gui.gui.engine import Engine, EncoderFailed, EncoderReady, ScanError
from musicrec_gui.gui.session import Session


class ScanController(QObject):
    """Turns the user's scan requests into engine scans and the engine's events into session updates.

    Parameters
    ----------
    session : Session
    engine : Engine
    """

    message = Signal(str, int)  # status-bar text, milliseconds to show it (0: until replaced)
    scanIdle = Signal()  # a scan finished (or was cancelled)

    def __init__(self, session: Session, engine: Engine, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.engine = engine
        engine.event.connect(self._on_event)
        session.analysisChanged.connect(self._on_analysis_changed)

    def open_folder(self, folder: str) -> bool:
        """Show ``folder`` from the cache and scan it for changes; False (and a message) if it is not a folder."""
        if not os.path.isdir(folder):
            self.message.emit(f"{folder} is not a folder that can be opened.", 10000)
            return False
        self.session.set_anchor(None)
        self.session.show_folder(folder)
        self.start_scan()
        return True

    def start_scan(self, *, retry_failed: bool = False) -> bool:
        """Scan the open folder (a running scan is superseded); False if there is nothing to scan with."""
        session = self.session
        if not session.folder:
            return False
        if not session.encoder_key:
            self.message.emit(f"Cannot analyse: {session.encoder_error}", 0)
            return False
        self.engine.start_scan(session.folder, session.analysis, retry_failed=retry_failed)
        return True

    def _on_analysis_changed(self, _settings) -> None:
        if self.start_scan():
            self.message.emit("Analysing the folder again in the new mode; until a song is done, its neighbours "
                              "come from the previous analysis.", 15000)

    def cancel(self) -> None:
        self.engine.cancel_scan()

    def _on_event(self, event) -> None:
        session = self.session
        if isinstance(event, scan_mod.TrackDone):
            session.update_track(event.track)
        elif isinstance(event, scan_mod.TrackFailed):
            # Only the open folder is ever scanned (a superseded scan's events never arrive).
            track = session.library.track_by_path(event.path)
            if track is not None:
                session.update_track(track)
        elif isinstance(event, scan_mod.ScanStarted):
            if event.missing:
                self.message.emit(
                    f"{event.missing} known song{'s' if event.missing != 1 else ''} not found: their folder is gone "
                    "or empty (an unplugged drive?). They are kept; plug the drive in and rescan.", 0)
            if event.pruned or event.to_analyse:
                # The scan added new files as pending and forgot removed ones: show that now.
                session.show_folder(session.folder)
        elif isinstance(event, scan_mod.ScanFinished):
            if event.error:  # a full disk, a lock held too long, a broken encoder: finished songs are kept
                self.message.emit(f"The scan stopped: {event.error}", 0)
            self.scanIdle.emit()
        elif isinstance(event, ScanError):
            self.message.emit(event.message, 15000)
        elif isinstance(event, EncoderReady):
            self.message.emit(f"Encoder ready: {event.name}", 8000)
        elif isinstance(event, EncoderFailed):
            self.message.emit(event.message, 0)
