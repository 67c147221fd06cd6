"""The engine thread: the one thread that owns the Keras model and writes to the library.

``EngineWorker`` lives in a long-lived QThread. It first loads the encoder (which
imports TensorFlow, ~10 s), then runs scans by iterating the core ``scan()``
generator and turning each event into a Qt signal. ``Engine`` is its GUI-thread
facade: starting a scan sets the previous scan's cancel Event (the worker's
loop notices at its next event) and queues the new one, so a new scan always
supersedes the old; events of a superseded scan are dropped.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from musicrec_gui.core import features as features_mod
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.library import Library


def _load_encoder(path: str):
    from musicrec_gui.core.encoder import Encoder  # imports TensorFlow

    return Encoder(path)


class EngineWorker(QObject):
    """Runs in the engine thread. Every signal carries the scan's generation number."""

    encoderReady = Signal(str)  # description
    encoderFailed = Signal(str)
    listing = Signal(int, int)  # generation, files found
    scanStarted = Signal(int, object)  # ScanStarted
    trackDone = Signal(int, object)  # TrackDone
    trackFailed = Signal(int, object)  # TrackFailed
    scanFinished = Signal(int, object)  # ScanFinished
    scanError = Signal(int, str)

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
        except Exception as err:  # noqa: BLE001 - any failure is shown to the user
            self._encoder_error = str(err)
            self.encoderFailed.emit(f"The encoder could not be loaded: {err}")
            return
        config = getattr(self._encoder, "config", None)
        name = f"{config.name} {config.version}" if config is not None else Path(self._encoder_path).stem
        self.encoderReady.emit(name)

    @Slot(int, str, object, object)
    def run_scan(self, generation: int, folder: str, options: dict, cancel: threading.Event) -> None:
        """Run one scan; ``options`` are :func:`core.scan.scan`'s keyword options (settings, retry_failed)."""
        if cancel.is_set():
            self.scanFinished.emit(generation, scan_mod.ScanFinished(0, 0, 0, True, 0.0))
            return
        self.load_encoder()
        if self._encoder is None:
            self.scanError.emit(generation, f"Cannot analyse: {self._encoder_error or 'no encoder loaded'}")
            self.scanFinished.emit(generation, scan_mod.ScanFinished(0, 0, 0, True, 0.0))
            return
        try:
            for event in scan_mod.scan(folder, library=self._library, encoder=self._encoder,
                                       cancel=cancel, **options):
                if isinstance(event, scan_mod.TrackDone):
                    self.trackDone.emit(generation, event)
                elif isinstance(event, scan_mod.TrackFailed):
                    self.trackFailed.emit(generation, event)
                elif isinstance(event, scan_mod.ScanStarted):
                    self.scanStarted.emit(generation, event)
                elif isinstance(event, scan_mod.ListingProgress):
                    self.listing.emit(generation, event.found)
                elif isinstance(event, scan_mod.ScanFinished):
                    self.scanFinished.emit(generation, event)
        except Exception as err:  # noqa: BLE001 - e.g. the folder vanished; the app goes on
            self.scanError.emit(generation, f"The scan stopped: {err}")
            self.scanFinished.emit(generation, scan_mod.ScanFinished(0, 0, 0, True, 0.0))


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
    """GUI-thread facade of the engine thread. Re-emits only the current scan's events."""

    encoderReady = Signal(str)
    encoderFailed = Signal(str)
    listing = Signal(int)
    scanStarted = Signal(object)
    trackDone = Signal(object)
    trackFailed = Signal(object)
    scanFinished = Signal(object)
    scanError = Signal(str)

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
        w = self._worker
        self._requestScan.connect(w.run_scan)
        self._requestEncoder.connect(w.load_encoder)
        w.encoderReady.connect(self._on_encoder_ready)
        w.encoderFailed.connect(self.encoderFailed)
        w.listing.connect(self._on_listing)
        w.scanStarted.connect(self._on_scan_started)
        w.trackDone.connect(self._on_track_done)
        w.trackFailed.connect(self._on_track_failed)
        w.scanError.connect(self._on_scan_error)
        w.scanFinished.connect(self._on_scan_finished)
        self._thread.start()
        _RUNNING_THREADS.add(self._thread)
        # Importing TensorFlow holds the GIL for seconds: start it once the window has painted,
        # not while it is being built.
        QTimer.singleShot(ENCODER_LOAD_DELAY_MS, self, self._requestEncoder.emit)

    def _current(self, generation: int) -> bool:
        return generation == self._generation

    @Slot(str)
    def _on_encoder_ready(self, name: str) -> None:
        self.encoder_loaded = True
        self.encoderReady.emit(name)

    # Bound slots (not lambdas) so that Qt queues them into this object's (the GUI) thread.
    @Slot(int, int)
    def _on_listing(self, generation: int, found: int) -> None:
        if self._current(generation):
            self.listing.emit(found)

    @Slot(int, object)
    def _on_scan_started(self, generation: int, event) -> None:
        if self._current(generation):
            self.scanStarted.emit(event)

    @Slot(int, object)
    def _on_track_done(self, generation: int, event) -> None:
        if self._current(generation):
            self.trackDone.emit(event)

    @Slot(int, object)
    def _on_track_failed(self, generation: int, event) -> None:
        if self._current(generation):
            self.trackFailed.emit(event)

    @Slot(int, str)
    def _on_scan_error(self, generation: int, message: str) -> None:
        if self._current(generation):
            self.scanError.emit(message)

    @Slot(int, object)
    def _on_scan_finished(self, generation: int, event) -> None:
        if self._current(generation):
            self.scanning = False
            self.scanFinished.emit(event)

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

    def cancel_scan(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Stop the engine thread (idempotent): cancel the scan, end its event loop, join it."""
        self.cancel_scan()
        _stop_thread(self._thread, timeout_ms)


# Engine threads are held here until joined: a QThread destroyed while running aborts the
# whole process, so one whose window went away unclosed is still joined at interpreter exit.
_RUNNING_THREADS: set[QThread] = set()


def _stop_thread(thread: QThread, timeout_ms: int) -> None:
    if thread in _RUNNING_THREADS:
        thread.quit()
        if thread.wait(timeout_ms):
            _RUNNING_THREADS.discard(thread)


@atexit.register
def _stop_all_threads() -> None:
    for thread in list(_RUNNING_THREADS):
        _stop_thread(thread, 60000)
