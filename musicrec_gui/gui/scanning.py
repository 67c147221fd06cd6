"""Scanning from the app: open a folder, rescan, retry, cancel, and keep the session's songs current."""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal

from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.library import Track, real_path
from musicrec_gui.core.names import display_text
from musicrec_gui.core.precomputed import DEMO_VECTORS
from musicrec_gui.gui.engine import (
    Engine, EncoderFailed, EncoderReady, Reanalysed, ReanalysisFinished, ScanError, Seeded,
)
from musicrec_gui.gui.session import Session, demo_folder


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
        if real_path(folder) != self.session.folder:
            self.engine.cancel_reanalysis()  # songs of the folder left: no longer shown
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
        # The demo ships its songs' analyses: they are shown analysed before the encoder has loaded.
        precomputed = demo_folder() / DEMO_VECTORS if session.is_demo else None
        self.engine.start_scan(session.folder, session.analysis, retry_failed=retry_failed,
                               precomputed=str(precomputed) if precomputed and precomputed.is_file() else None)
        return True

    def reanalyse(self, tracks: list[Track]) -> bool:
        """Analyse ``tracks`` again now (a running scan goes on after them); False if there is no encoder."""
        session = self.session
        if not session.encoder_key:
            self.message.emit(f"Cannot analyse: {session.encoder_error}", 0)
            return False
        tracks = [track for track in tracks if track is not None]
        if not tracks:
            return False
        self.engine.reanalyse(tracks, session.analysis)
        what = _song_name(tracks[0]) if len(tracks) == 1 else f"{len(tracks)} songs"
        self.message.emit(f"Analysing {what} again…", 0)
        return True

    def _on_analysis_changed(self, _settings) -> None:
        if self.start_scan():
            self.message.emit("Analysing the folder again in the new mode; until a song is done, its neighbours "
                              "come from the previous analysis.", 15000)

    def cancel(self) -> None:
        self.engine.cancel_scan()

    def _on_event(self, event) -> None:
        session = self.session
        if isinstance(event, Reanalysed):
            return self._on_reanalysed(event)
        if isinstance(event, ReanalysisFinished):
            if event.error:
                self.message.emit(event.error, 0)
            return None
        if isinstance(event, Seeded):
            if event.folder == session.folder:
                session.show_folder(session.folder)
                self.message.emit(f"{len(event.tracks)} demo songs shown from their shipped analysis; looking for "
                                  "changes (the encoder loads only if a song needs analysing).", 10000)
            return None
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

    def _on_reanalysed(self, event: Reanalysed) -> None:
        session, result = self.session, event.result
        if session.track(event.track_id) is None:
            return  # a song of a folder no longer open
        if isinstance(result, scan_mod.TrackDone):
            session.update_track(result.track)
            self.message.emit(f"{_song_name(result.track)} was analysed again.", 8000)
            return
        track = session.library.track_by_path(result.path)
        if track is not None:
            session.update_track(track)
        name = _song_name(track) if track is not None else display_text(result.path)
        self.message.emit(f"{name} could not be analysed: {result.reason}", 15000)


def _song_name(track: Track) -> str:
    return f"\u201c{track.title or os.path.basename(track.display_path)}\u201d"
