"""The engine thread: the one thread that owns the Keras model and writes to the library.

``EngineWorker`` lives in a long-lived QThread. It runs scans by iterating the core
``scan()`` generator and turning each event into a Qt signal; the encoder (which imports
TensorFlow, ~10 s and ~0.8 GB) is loaded when a song first needs analysing. ``Engine`` is its GUI-thread
facade: starting a scan sets the previous scan's cancel Event (the worker's
loop notices at its next event) and queues the new one, so a new scan always
supersedes the old; events of a superseded scan are dropped. Everything the engine says
travels through one typed signal, ``Engine.event``.
"""

from __future__ import annotations

import atexit
import collections
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from musicrec_gui.core import features as features_mod
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.encoder import DescribedEncoder, read_encoder_config
from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.library import Library, LibraryError, Track, real_path
from musicrec_gui.core.precomputed import load_precomputed, seed_library


def _load_encoder(path: str):
    from musicrec_gui.core.encoder import Encoder  # imports TensorFlow

    return Encoder(path)


class _EncoderOnDemand(DescribedEncoder):
    """The engine's encoder as a scan sees it, loaded (TensorFlow imported) only when a song is analysed.

    A folder whose songs are all analysed is scanned without it: browsing a large library then
    costs no TensorFlow (~0.8 GB of memory and seconds of a held GIL). ``key`` and ``features``
    come from the encoder's JSON; loading goes through the worker, which says it is ready.
    """

    def __init__(self, worker: "EngineWorker", config):
        self._worker, self.config = worker, config

    def _loaded(self):
        self._worker.load_encoder()
        if self._worker._encoder is None:
            raise MusicrecError(self._worker._encoder_error or "no encoder loaded")
        return self._worker._encoder

    def embed_slices(self, slices: np.ndarray) -> np.ndarray:
        return self._loaded().embed_slices(slices)

    def embed_slices_with_tags(self, slices: np.ndarray):
        encoder = self._loaded()
        with_tags = getattr(encoder, "embed_slices_with_tags", None)
        return with_tags(slices) if with_tags is not None else (encoder.embed_slices(slices), None)


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


@dataclass(frozen=True)
class Seeded:
    """Songs of ``folder`` were stored from shipped, precomputed analyses (the demo), before the encoder loaded."""

    folder: str
    tracks: tuple[Track, ...]


@dataclass(frozen=True)
class ReanalysisQueued:
    """Songs were queued to be analysed again (sent at once, from the GUI thread)."""

    track_ids: tuple[int, ...]


@dataclass(frozen=True)
class Reanalysed:
    """One song of a re-analysis is done: ``result`` is the core's ``TrackDone`` or ``TrackFailed``."""

    track_id: int
    result: object


@dataclass(frozen=True)
class ReanalysisFinished:
    """A re-analysis request ended (all its songs done, cancelled, or stopped on ``error``)."""

    track_ids: tuple[int, ...]
    cancelled: bool = False
    error: str = ""


# Every event the engine sends: the core scan's own events and the ones above.
EngineEvent = (EncoderReady, EncoderFailed, ScanError, ScanQueued, Seeded, ReanalysisQueued, Reanalysed,
               ReanalysisFinished, scan_mod.ListingProgress, scan_mod.ScanStarted, scan_mod.TrackDone,
               scan_mod.TrackFailed, scan_mod.ScanFinished)
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
        # Re-analysis requests: (tracks, settings, cancel). Appended from the GUI thread (a deque's
        # append and popleft are atomic); taken here, between two songs of a running scan or alone.
        self._reanalysis: collections.deque = collections.deque()

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
        """Run one scan; ``options`` are :func:`core.scan.scan`'s keyword options (settings, retry_failed).

        ``options["precomputed"]``, if given, is a precomputed file (the demo's) whose matching songs
        are stored first, before the encoder is loaded, so they are shown analysed at once.
        """
        stopped = scan_mod.ScanFinished(0, 0, 0, True, 0.0)
        if cancel.is_set():
            self.event.emit(generation, stopped)
            return
        options = dict(options)
        precomputed = options.pop("precomputed", None)
        if precomputed:
            self._seed(generation, folder, precomputed, options.get("settings") or AnalysisSettings())
        encoder = self._encoder
        if encoder is None:  # loaded only if a song needs analysing
            # Its JSON gives the cache keys; a damaged model file is told when the first song needs it,
            # and the scan still lists the folder's songs (pending) before it stops.
            try:
                encoder = _EncoderOnDemand(self, read_encoder_config(self._encoder_path))
            except (MusicrecError, OSError) as err:
                self.event.emit(generation, ScanError(f"Cannot analyse: {err}"))
                self.event.emit(generation, stopped)
                return
        try:
            for event in scan_mod.scan(folder, library=self._library, encoder=encoder,
                                       cancel=cancel, **options):
                self.event.emit(generation, event)
                if self._reanalysis:  # asked for by the user: before the scan's next song
                    self.run_reanalysis()
        except (MusicrecError, OSError) as err:  # e.g. the folder vanished: said, and the app goes on
            self.event.emit(generation, ScanError(f"The scan stopped: {err}"))
            self.event.emit(generation, stopped)
        except Exception as err:  # noqa: BLE001 - a bug: reported with its traceback, the app goes on
            traceback.print_exc()
            self.event.emit(generation, ScanError(
                f"The scan stopped on an unexpected error ({type(err).__name__}: {err}); this is a bug in "
                "musicrec, please report it. Songs analysed so far are kept."))
            self.event.emit(generation, stopped)

    def _seed(self, generation: int, folder: str, precomputed: str, settings: AnalysisSettings) -> None:
        try:
            config = read_encoder_config(self._encoder_path)
            seeded = seed_library(self._library, real_path(folder), load_precomputed(precomputed),
                                  encoder_key=config.key, analysis_key=settings.key, dimension=config.embedding_size)
        except (MusicrecError, OSError, ValueError):
            return  # nothing seeded: the scan analyses these songs as it would any others
        if seeded:
            self.event.emit(generation, Seeded(real_path(folder), tuple(track for track, _ in seeded)))

    def queue_reanalysis(self, tracks: tuple[Track, ...], settings: AnalysisSettings, cancel: threading.Event) -> None:
        """Called from the GUI thread: the songs are analysed by :meth:`run_reanalysis`."""
        self._reanalysis.append((tracks, settings, cancel))

    @Slot(str, str)
    def store_meta(self, key: str, value: str) -> None:
        """Write one meta entry (a cache, such as the map's basis): the engine thread is the library's one writer."""
        try:
            self._library.set_meta(key, value)
        except LibraryError:
            pass  # a read-only or full library: the cache is only a time saver

    @Slot()
    def run_reanalysis(self) -> None:
        """Analyse again the songs asked for (in the engine thread, alone or between two songs of a scan)."""
        while self._reanalysis:
            tracks, settings, cancel = self._reanalysis.popleft()
            ids = tuple(track.id for track in tracks)
            if cancel.is_set():
                self.event.emit(NO_SCAN, ReanalysisFinished(ids, cancelled=True))
                continue
            self.load_encoder()
            if self._encoder is None:
                self.event.emit(NO_SCAN, ReanalysisFinished(
                    ids, error=f"Cannot analyse: {self._encoder_error or 'no encoder loaded'}"))
                continue
            error = ""
            try:
                for result in scan_mod.reanalyse(tracks, library=self._library, encoder=self._encoder,
                                                 settings=settings, cancel=cancel):
                    # One result per song, in order: ``completed`` says which.
                    self.event.emit(NO_SCAN, Reanalysed(tracks[result.completed - 1].id, result))
            except (MusicrecError, OSError) as err:
                error = f"The re-analysis stopped: {err}"
            except Exception as err:  # noqa: BLE001 - a bug: reported with its traceback, the app goes on
                traceback.print_exc()
                error = (f"The re-analysis stopped on an unexpected error ({type(err).__name__}: {err}); this is a "
                         "bug in musicrec, please report it.")
            self.event.emit(NO_SCAN, ReanalysisFinished(ids, cancelled=cancel.is_set(), error=error))


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
    _requestReanalysis = Signal()
    _requestMeta = Signal(str, str)

    def __init__(self, library: Library, encoder_path: str, parent: QObject | None = None,
                 loader: Callable[[str], object] = _load_encoder):
        super().__init__(parent)
        self._thread = EngineThread()
        self._thread.setObjectName("musicrec-engine")
        self._worker = EngineWorker(library, encoder_path, loader)
        self._worker.moveToThread(self._thread)
        self._generation = 0
        self._cancel: threading.Event | None = None
        self._reanalysis_cancel = threading.Event()
        self.scanning = False
        self.encoder_loaded = False
        self._requestScan.connect(self._worker.run_scan)
        self._requestEncoder.connect(self._worker.load_encoder)
        self._requestReanalysis.connect(self._worker.run_reanalysis)
        self._requestMeta.connect(self._worker.store_meta)
        self._worker.event.connect(self._on_worker_event)
        self._thread.start()
        _RUNNING_THREADS.add(self._thread)

    def load_encoder(self) -> None:
        """Load the encoder now (in the engine thread) instead of when a scan first needs it."""
        self._requestEncoder.emit()

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

    def start_scan(self, folder: str, settings: AnalysisSettings, *, retry_failed: bool = False,
                   precomputed: str | None = None) -> None:
        """Analyse ``folder``; a scan already running is cancelled and superseded.

        ``retry_failed`` analyses again the files that failed before under this encoder and analysis;
        ``precomputed`` names a precomputed file (``core.precomputed``) whose songs matching
        ``folder``'s files are stored before the encoder loads (a :class:`Seeded` event says which).
        """
        if self._cancel is not None:
            self._cancel.set()
        self._generation += 1
        self._cancel = threading.Event()
        self.scanning = True
        options = {"settings": settings, "retry_failed": retry_failed}
        if precomputed:
            options["precomputed"] = str(precomputed)
        self._requestScan.emit(self._generation, str(folder), options, self._cancel)
        self.event.emit(ScanQueued(str(folder), self.encoder_loaded))

    def store_meta(self, key: str, value: str) -> None:
        """Have the engine thread write one meta entry (after the scan in hand, if one runs)."""
        self._requestMeta.emit(key, value)

    def cancel_scan(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def reanalyse(self, tracks, settings: AnalysisSettings) -> None:
        """Analyse ``tracks`` again with the encoder and ``settings``, even where their analysis is valid.

        Not a scan: a running scan goes on, and these songs are analysed before its next song
        (the engine takes requests between two songs), so the user waits for one song, not for
        the scan. Events: :class:`ReanalysisQueued` at once, a :class:`Reanalysed` per song, then
        :class:`ReanalysisFinished`.
        """
        tracks = tuple(tracks)
        if not tracks:
            return
        self._worker.queue_reanalysis(tracks, settings, self._reanalysis_cancel)
        self._requestReanalysis.emit()
        self.event.emit(ReanalysisQueued(tuple(track.id for track in tracks)))

    def cancel_reanalysis(self) -> None:
        """Drop the re-analyses asked for so far (another folder was opened); the song in hand is finished."""
        self._reanalysis_cancel.set()
        self._reanalysis_cancel = threading.Event()

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the engine thread (idempotent): cancel the scan, end its event loop, join it.

        Returns False if it did not end within ``timeout_ms`` (default: 3 s while a scan runs or
        once the encoder is loaded, for a cancelled scan to finish its song; 0.1 s otherwise:
        a load writes nothing and TensorFlow's import cannot be interrupted). Nothing it holds
        needs saving: each song is written in one transaction, and a cancelled scan writes no more.
        """
        self.cancel_scan()
        self.cancel_reanalysis()
        if timeout_ms is None:
            timeout_ms = 3000 if self.encoder_loaded or self.scanning else 100
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
