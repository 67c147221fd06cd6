"""The engine thread: the one thread that owns the Keras model and writes to the library.

``EngineWorker`` lives in a long-lived QThread. It first loads the encoder (which
imports TensorFlow, ~10 s), then runs scans by iterating the core ``scan()``
generator and turning each event into a Qt signal. ``Engine`` is its GUI-thread
facade: starting a scan sets the previous scan's cancel Event (the worker's
loop notices at its next event) and queues the new one, so a new scan always
supersedes the old; events of a superseded scan are dropped. Everything the engine says
travels through one typed signal, ``Engine.event``.
"""

from __future__ import annotations

import atexit
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from musicrec_gui.core import features as features_mod
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.library import Library


def _load_encoder(path: str):
    from musicrec_gui.core.encoder import Encoder  # imports TensorFlow

    return Encoder(path)


@dataclass(frozen=True)
class EncoderReady:
    """The encoder is loaded; ``name`` says which."""

    name: str


@dataclass(frozen=True)
class EncoderFailed:
    """The encoder could not be loaded; the cached library can still be browsed."""

    message: str


@dataclass(frozen=True)
class ScanError:
    """A scan stopped on an error (e.g. its folder vanished); a ``ScanFinished`` follows."""

    message: str


@dataclass(frozen=True)
class ScanQueued:
    """A scan of ``folder`` was asked for (sent at once, from the GUI thread)."""

    folder: str
    encoder_loaded: bool


# Every event the engine sends: the core scan's own events and the four above.
EngineEvent = (EncoderReady, EncoderFailed, ScanError, ScanQueued, scan_mod.ListingProgress, scan_mod.ScanStarted,
               scan_mod.TrackDone, scan_mod.TrackFailed, scan_mod.ScanFinished)
NO_SCAN = -1  # generation of events that belong to no scan (the encoder's)


class EngineWorker(QObject):
    """Runs in the engine thread. Each event travels with the generation of the scan it belongs to."""

    event = Signal(int, object)  # generation, one of EngineEvent

    def __init__(self, library: Library, encoder_path: str, loader: Callable[[str], object] = _load_encoder):
        super().__init__()
        self._library = library
        self._encoder_path = encoder_path
        self._loader = loader
        self._encoder = None
        self._encoder_error = ""

    @Slot()
    def load_encoder(self) -> None:
        """Load the encoder once; later calls (a scan asked for before the delayed load) do nothing."""
        if self._encoder is not None or self._encoder_error:
            return
        try:
            self._encoder = self._loader(self._encoder_path)
            # With the encoder: librosa's imports and numba's compilation hold the GIL for a while;
            # done here, during the start-up load, they do not stall the window in the first scan.
            features_mod.load_backend()
            warm = getattr(self._encoder, "embed_slices", None)
            config = getattr(self._encoder, "config", None)
            if warm is not None and config is not None:  # traces the inference graph now, not mid-scan
                shape = (1, config.features.n_mels, config.features.slice_frames, 1)
                warm(np.zeros(shape, dtype=np.float32))
        except Exception as err:  # noqa: BLE001 - a broken or foreign model file may raise anything
            self._encoder_error = str(err)
            self.event.emit(NO_SCAN, EncoderFailed(f"The encoder could not be loaded: {err}"))
            return
        config = getattr(self._encoder, "config", None)
        name = f"{config.name} {config.version}" if config is not None else Path(self._encoder_path).stem
        self.event.emit(NO_SCAN, EncoderReady(name))

    @Slot(int, str, object, object)
    def run_scan(self, generation: int, folder: str, options: dict, cancel: threading.Event) -> None:
        """Run one scan; ``options`` are :func:`core.scan.scan`'s keyword options (settings, retry_failed)."""
        stopped = scan_mod.ScanFinished(0, 0, 0, True, 0.0)
        if cancel.is_set():
            self.event.emit(generation, stopped)
            return
        self.load_encoder()
        if self._encoder is None:
            self.event.emit(generation, ScanError(f"Cannot analyse: {self._encoder_error or 'no encoder loaded'}"))
            self.event.emit(generation, stopped)
            return
        try:
            for event in scan_mod.scan(folder, library=self._library, encoder=self._encoder,
                                       cancel=cancel, **options):
                self.event.emit(generation, event)
        except (MusicrecError, OSError) as err:  # e.g. the folder vanished: said, and the app goes on
            self.event.emit(generation, ScanError(f"The scan stopped: {err}"))
            self.event.emit(generation, stopped)
        except Exception as err:  # noqa: BLE001 - a bug: reported with its traceback, the app goes on
            traceback.print_exc()
            self.event.emit(generation, ScanError(
                f"The scan stopped on an unexpected error ({type(err).__name__}: {err}); this is a bug in "
                "musicrec, please report it. Songs analysed so far are kept."))
            self.event.emit(generation, stopped)


ENCODER_LOAD_DELAY_MS = 250


class EngineThread(QThread):
    """The engine's QThread, with its event loop run from Python.

    Running ``exec()`` inside a Python ``run()`` keeps one Python thread state alive
    for the thread's whole life. With the default C++ ``run()``, every queued slot
    call creates and then frees a thread state; TensorFlow's pybind11 layer caches
    that pointer per thread and, once it is freed and reused by another thread,
    takes the GIL with a foreign thread state (observed: hangs and segfaults).
    """

    def run(self) -> None:
        self.exec()


class Engine(QObject):
    """GUI-thread facade of the engine thread: one ``event`` signal, the current scan's events only.

    Widgets connect to ``event`` and pick the event types they show (``isinstance``), so a
    new panel needs no new relay here.
    """

    event = Signal(object)  # one of EngineEvent

    _requestScan = Signal(int, str, object, object)
    _requestEncoder = Signal()

    def __init__(self, library: Library, encoder_path: str, parent: QObject | None = None,
                 loader: Callable[[str], object] = _load_encoder):
        super().__init__(parent)
        self._thread = EngineThread()
        self._thread.setObjectName("musicrec-engine")
        self._worker = EngineWorker(library, encoder_path, loader)
        self._worker.moveToThread(self._thread)
        self._generation = 0
        self._cancel: threading.Event | None = None
        self.scanning = False
        self.encoder_loaded = False
        self._requestScan.connect(self._worker.run_scan)
        self._requestEncoder.connect(self._worker.load_encoder)
        self._worker.event.connect(self._on_worker_event)
        self._thread.start()
        _RUNNING_THREADS.add(self._thread)
        # Importing TensorFlow holds the GIL for seconds: start it once the window has painted,
        # not while it is being built.
        QTimer.singleShot(ENCODER_LOAD_DELAY_MS, self, self._requestEncoder.emit)

    # A bound slot (not a lambda) so that Qt queues it into this object's (the GUI) thread.
    @Slot(int, object)
    def _on_worker_event(self, generation: int, event) -> None:
        if generation != NO_SCAN and generation != self._generation:
            return  # a superseded scan
        if isinstance(event, EncoderReady):
            self.encoder_loaded = True
        elif isinstance(event, scan_mod.ScanFinished):
            self.scanning = False
        self.event.emit(event)

    def start_scan(self, folder: str, settings: AnalysisSettings, *, retry_failed: bool = False) -> None:
        """Analyse ``folder``; a scan already running is cancelled and superseded.

        ``retry_failed`` analyses again the files that failed before under this encoder and analysis.
        """
        if self._cancel is not None:
            self._cancel.set()
        self._generation += 1
        self._cancel = threading.Event()
        self.scanning = True
        options = {"settings": settings, "retry_failed": retry_failed}
        self._requestScan.emit(self._generation, str(folder), options, self._cancel)
        self.event.emit(ScanQueued(str(folder), self.encoder_loaded))

    def cancel_scan(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the engine thread (idempotent): cancel the scan, end its event loop, join it.

        Returns False if it did not end within ``timeout_ms`` (default: 3 s once the encoder is
        loaded, for a cancelled scan to finish its song; 0.1 s while it still loads, since a
        load writes nothing and TensorFlow's import cannot be interrupted). Nothing it holds
        needs saving: each song is written in one transaction, and a cancelled scan writes no more.
        """
        self.cancel_scan()
        if timeout_ms is None:
            timeout_ms = 3000 if self.encoder_loaded else 100
        return _stop_thread(self._thread, timeout_ms)


# Engine threads are held here until joined: a QThread destroyed while running aborts the
# whole process, so one whose window went away unclosed is still joined at interpreter exit.
_RUNNING_THREADS: set[QThread] = set()


def _stop_thread(thread: QThread, timeout_ms: int) -> bool:
    if thread in _RUNNING_THREADS:
        thread.quit()
        if thread.wait(timeout_ms):
            _RUNNING_THREADS.discard(thread)
    return thread not in _RUNNING_THREADS


def all_stopped() -> bool:
    """Whether every engine thread has been joined."""
    return not _RUNNING_THREADS


@atexit.register
def _stop_all_threads() -> None:
    for thread in list(_RUNNING_THREADS):
        _stop_thread(thread, 60000)
