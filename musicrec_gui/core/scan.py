"""Scanning a music folder: a plain generator of events.

``scan(...)`` walks the folder, reconciles it with the library cache, then
analyses what is new or changed. Each ``yield`` is a progress event and a
cancellation point: stop iterating (or call ``close()``), or set ``cancel``,
and the scan stops after the file in hand, keeping everything finished so far.

Pipeline (after beets): a small thread pool decodes audio and computes
spectrogram slices ahead of time, at most ``prefetch`` files ahead; the
generator's own thread is the only one that runs the encoder and writes to the
database, so neither needs to be thread-safe. A file that fails is an event
(``TrackFailed``) and the scan goes on.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence, Union

import numpy as np
import threadpoolctl

from musicrec_gui.core import audio as audio_mod
from musicrec_gui.core import features as features_mod
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.encoder import song_vector
from musicrec_gui.core.errors import FailureKind
from musicrec_gui.core.names import display_text
from musicrec_gui.core.library import FileIdentity, Library, LibraryError, Track, iter_identities, real_path


class SongEncoder(Protocol):
    """What the scan needs of an encoder (``core.encoder.Encoder`` is one)."""

    @property
    def key(self) -> str: ...

    @property
    def features(self) -> FeatureConfig: ...

    @property
    def embedding_size(self) -> int: ...

    def embed_slices(self, slices: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ListingProgress:
    """Still walking the folder; ``found`` audio files so far."""

    found: int


@dataclass(frozen=True)
class ScanStarted:
    folder: str
    total: int  # audio files found
    to_analyse: int
    cached: int  # already analysed with this encoder and analysis
    pruned: int  # cached files that no longer exist, forgotten
    missing: int = 0  # cached files not found but kept: their folder is gone or empty (an unmounted drive?)
    failed_before: int = 0  # failed earlier with this encoder and analysis; not retried unless asked


@dataclass(frozen=True)
class TrackDone:
    track: Track
    n_slices: int
    completed: int  # files handled so far in this scan (done + failed)
    to_analyse: int
    # The song vector just stored [shape=(d,)]: an open index adds it without reading the library.
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    # For the user when the file was only partly analysed ("the MP3 file is cut off after 3.6 s of
    # 4.0 s (truncated download?); the part that is there was analysed"); "" for a whole file.
    note: str = ""


@dataclass(frozen=True)
class TrackFailed:
    """A file that could not be analysed; the scan goes on.

    Attributes
    ----------
    path : str
    reason : str
        What happened, for the user.
    completed, to_analyse : int
    kind : FailureKind
        Why, sorted (``empty``, ``truncated``, ``not_audio``, ``unreadable``, ``vanished``, …);
        the library stores it with the reason (``Track.error_kind``).
    """

    path: str
    reason: str
    completed: int
    to_analyse: int
    kind: FailureKind = FailureKind.NOT_AUDIO


@dataclass(frozen=True)
class ScanFinished:
    analysed: int
    failed: int
    cached: int
    cancelled: bool
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # Why the scan stopped early, for the user (a full disk, a broken encoder); "" when it did not.
    error: str = ""


ScanEvent = Union[ListingProgress, ScanStarted, TrackDone, TrackFailed, ScanFinished]


@dataclass
class _Prepared:
    slices: np.ndarray
    offset: float
    tags: audio_mod.Tags
    decode_seconds: float
    feature_seconds: float
    note: str = ""


def prepare_track(
    path: str,
    *,
    settings: AnalysisSettings,
    config: FeatureConfig,
    identity: tuple[int, int] | None = None,
    cancel: audio_mod.Cancel | None = None,
) -> _Prepared:
    """Decode, tag and slice one file (runs in the pool; touches no shared state).

    ``identity`` is the (size, mtime_ns) the scan planned with; a file rewritten while
    it was read fails here, and the next scan sees its new identity and analyses it again.
    ``cancel`` (anything with ``is_set()``) stops the decoding within a block
    (:class:`audio.DecodeCancelled`).
    """
    start = time.perf_counter()
    notes: list[str] = []
    windowed = settings.mode in ("full", "spread")
    if windowed:
        # Only the audio under the kept slices is decoded: bounded memory for any length.
        windows, duration = audio_mod.load_song_windows(
            path, config=config, max_slices=settings.max_slices,
            patches=settings.patches if settings.mode == "spread" else None, cancel=cancel, notes=notes)
        offset = 0.0
    else:
        audio, offset, duration = audio_mod.load_for_analysis(path, settings=settings, sample_rate=config.sample_rate,
                                                              cancel=cancel, min_seconds=config.slice_seconds,
                                                              notes=notes)
    tags = audio_mod.read_tags(path)
    if identity is not None:
        try:
            st = os.stat(path)
        except OSError:
            raise audio_mod.AudioError("the file disappeared during the scan (moved or deleted while it was read)",
                                       kind=FailureKind.VANISHED) from None
        if (st.st_size, st.st_mtime_ns) != identity:
            raise audio_mod.AudioError("the file changed while it was being read; the next scan analyses it again",
                                       kind=FailureKind.CHANGED)
    if not tags.duration:
        tags = audio_mod.Tags(tags.title, tags.artist, tags.album, duration)
    decoded = time.perf_counter()
    if cancel is not None and cancel.is_set():
        raise audio_mod.DecodeCancelled("decoding was cancelled")  # spare the feature work too
    if windowed:
        slices = features_mod.window_slices(windows, config=config)
    else:
        slices = features_mod.song_slices(audio, config=config)
    return _Prepared(slices, offset, tags, decoded - start, time.perf_counter() - decoded, " ".join(notes))


def embed(encoder: SongEncoder, slices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the encoder on a song's slices: (slice embeddings, mean tag probabilities or None).

    Raises
    ------
    ValueError
        The encoder gave the wrong shape or values that are not finite (a fault of the encoder,
        not of the song). Anything the encoder itself raises is passed on.
    """
    tag_probabilities = None
    with_tags = getattr(encoder, "embed_slices_with_tags", None)
    if with_tags is not None:
        embeddings, patch_tags = with_tags(slices)
        if patch_tags is not None:
            tag_probabilities = np.asarray(patch_tags, dtype=np.float32).mean(axis=0)
    else:
        embeddings = encoder.embed_slices(slices)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(slices):
        raise ValueError(f"it returned an array of shape {embeddings.shape} for "
                         f"{len(slices)} slices; expected ({len(slices)}, d)")
    if not np.all(np.isfinite(embeddings)) or (
            tag_probabilities is not None and not np.all(np.isfinite(tag_probabilities))):
        raise ValueError("it produced non-finite values (NaN or infinity)")
    return embeddings, tag_probabilities


def _await_prepared(future, hang_seconds: float) -> tuple[_Prepared | None, str | None, FailureKind]:
    """A file's decoded slices from the pool, or why it could not be decoded: (None, reason, kind).

    ``audio.DecodeCancelled`` passes through: a cancelled file is left pending, not failed.
    """
    try:
        return future.result(timeout=hang_seconds), None, FailureKind.OTHER
    except FutureTimeout:
        # Stuck inside a decoder's C code, past the cooperative time limit: give up on the file. The
        # thread cannot be killed; it is abandoned, not waited for, at the end.
        return None, (f"decoding got stuck for over {hang_seconds:g} s (the file is probably damaged); "
                      "the next scan tries it again"), FailureKind.TIMED_OUT
    except audio_mod.AudioError as err:
        return None, str(err), err.kind
    except MemoryError:
        return None, "the file is too large to analyse (out of memory)", FailureKind.TOO_LARGE
    except audio_mod.DecodeCancelled:
        raise
    except Exception as err:  # noqa: BLE001 - one bad file must never stop a scan
        return None, (f"musicrec failed on this file (an unexpected error, a bug: "
                      f"{type(err).__name__}: {err})"), FailureKind.OTHER


class _AnySet:
    """Looks like an Event that is set when any of the given events is."""

    def __init__(self, *events: threading.Event):
        self._events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self._events)


@dataclass(frozen=True)
class Analysed:
    """One song analysed by an analysis source: what :func:`scan` records.

    Attributes
    ----------
    track : Track
    embeddings : np.ndarray [shape=(n_slices, d)], float32
    tag_probabilities : np.ndarray [shape=(n_tags,)] or None
    offset : float
    tags : audio.Tags
    note : str
        For the user when only part of the file could be analysed; "" otherwise.
    """

    track: Track
    embeddings: np.ndarray = field(repr=False)
    tag_probabilities: np.ndarray | None = field(repr=False)
    offset: float
    tags: audio_mod.Tags
    note: str = ""


@dataclass(frozen=True)
class NotAnalysed:
    """One song that could not be analysed: ``reason`` for the user, ``kind`` sorted, as a local scan says them."""

    track: Track
    reason: str
    kind: FailureKind


@dataclass(frozen=True)
class AnalysisStopped:
    """The analysis stopped early: the user cancelled (``error == ""``) or it cannot go on (``error`` says why)."""

    error: str = ""


AnalysisOutcome = Union[Analysed, NotAnalysed, AnalysisStopped]


class AnalysisSource(Protocol):
    """Where the songs of a scan are analysed: this process (:class:`LocalAnalysis`) or a cluster.

    Called once per scan from the scan's thread; yields one :class:`Analysed` or
    :class:`NotAnalysed` per track it finishes (in any order), or :class:`AnalysisStopped`
    as its last item. It writes nothing: :func:`scan` records every outcome in the library.
    ``stages`` is :func:`scan`'s dict of seconds per stage ("decode", "features",
    "inference"), added to as songs are done. The scan closes the iterator when it stops
    early (cancelled, Ctrl-C, library error): work under way must stop then.
    """

    def __call__(self, todo: Sequence[Track], *, encoder: SongEncoder, settings: AnalysisSettings,
                 cancel: threading.Event, stages: dict[str, float]) -> Iterator[AnalysisOutcome]: ...


def encoder_failed_message(encoder_key: str, path: str, err: object) -> str:
    """Why a scan stopped when the encoder itself failed on a song (nothing is recorded against the song)."""
    return (f"the encoder {encoder_key} failed on {display_text(path)}: {err}. "
            "The encoder is broken or does not fit this analysis; nothing was recorded "
            "against your songs. Use another --encoder.")


def default_hang_seconds() -> float:
    """Twice the decoder's own time limit plus 30 s: past this a file's decoding is taken as hung."""
    return 2 * audio_mod.DECODE_TIME_LIMIT + 30


class LocalAnalysis:
    """Analyse songs in this process: a pool of decoding threads ahead of the encoder on the scan's thread.

    Parameters
    ----------
    workers : int
        Threads decoding and computing features ahead of inference.
    prefetch : int
        How many files may wait, prepared, for the encoder (bounds memory).
    hang_seconds : float or None
        A file whose preparation takes longer than this is skipped as hung
        (default: :func:`default_hang_seconds`); the next scan tries it again.
    """

    def __init__(self, *, workers: int = 2, prefetch: int = 4, hang_seconds: float | None = None):
        self.workers = max(1, workers)
        self.prefetch = max(0, prefetch)
        self.hang_seconds = default_hang_seconds() if hang_seconds is None else hang_seconds

    def __call__(self, todo: Sequence[Track], *, encoder: SongEncoder, settings: AnalysisSettings,
                 cancel: threading.Event, stages: dict[str, float]) -> Iterator[AnalysisOutcome]:
        """Analyse ``todo`` in order; see :class:`AnalysisSource`."""
        config = encoder.features
        pending: collections.deque[tuple[Track, Future]] = collections.deque()
        queue = iter(todo)
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="musicrec-decode")
        # Set when the scan ends for any reason (finished, cancelled, Ctrl-C in the consumer, closed): decodes
        # still running in the pool stop within a block, so neither the pool's shutdown nor the interpreter's
        # exit (which joins pool threads) waits for the rest of a long song.
        stop = threading.Event()
        stop_or_cancel = _AnySet(stop, cancel)
        hung = 0
        # Parallelism comes from the file-level pool and TensorFlow's own threads; a multi-threaded BLAS
        # inside each feature job would only fight them for the same cores.
        blas_limit = threadpoolctl.threadpool_limits(limits=1, user_api="blas")

        def _fill() -> None:
            while len(pending) < self.workers + self.prefetch:
                track = next(queue, None)
                if track is None:
                    return
                pending.append((track, pool.submit(prepare_track, track.path, settings=settings, config=config,
                                                   identity=(track.size, track.mtime_ns), cancel=stop_or_cancel)))

        try:
            if todo:
                features_mod.load_backend()
            _fill()
            while pending:
                if cancel.is_set():
                    yield AnalysisStopped()
                    return
                track, future = pending.popleft()
                _fill()
                try:
                    prepared, reason, kind = _await_prepared(future, self.hang_seconds)
                except audio_mod.DecodeCancelled:
                    yield AnalysisStopped()  # the file is left pending, not failed: the next scan does it
                    return
                hung += kind is FailureKind.TIMED_OUT
                if prepared is None:
                    yield NotAnalysed(track, reason, kind)
                    continue
                stages["decode"] += prepared.decode_seconds
                stages["features"] += prepared.feature_seconds
                t0 = time.perf_counter()
                try:
                    embeddings, tag_probabilities = embed(encoder, prepared.slices)
                except Exception as err:  # noqa: BLE001
                    # A fault of the encoder, not of the song: nothing is recorded against the file,
                    # and the scan stops instead of marking every song as bad.
                    yield AnalysisStopped(encoder_failed_message(encoder.key, track.path, err))
                    return
                stages["inference"] += time.perf_counter() - t0
                yield Analysed(track, embeddings, tag_probabilities, prepared.offset, prepared.tags, prepared.note)
        finally:  # also when the scan stops iterating (GeneratorExit): the pool never outlives the scan
            stop.set()
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=not hung, cancel_futures=True)
            blas_limit.restore_original_limits()


def scan(
    folder: str | os.PathLike | None,
    *,
    library: Library,
    encoder: SongEncoder,
    settings: AnalysisSettings = AnalysisSettings(),
    workers: int = 2,
    prefetch: int = 4,
    cancel: threading.Event | None = None,
    hang_seconds: float | None = None,
    prune: bool = False,
    retry_failed: bool = False,
    files: Sequence[str | os.PathLike] | None = None,
    analysis: AnalysisSource | None = None,
) -> Iterator[ScanEvent]:
    """Analyse every new or changed audio file below ``folder`` (or in ``files``).

    Parameters
    ----------
    folder : str, PathLike or None
        None when ``files`` are given.
    library : Library
        The cache; only this generator's thread writes to it during the scan.
    encoder : SongEncoder
        Used from this generator's thread only.
    settings : AnalysisSettings
        Excerpt or full track.
    workers : int
        Threads decoding and computing features ahead of inference.
    prefetch : int
        How many files may wait, prepared, for the encoder (bounds memory).
    cancel : threading.Event or None
        Set it from any thread to stop: the file in hand is finished, decodes under way in
        the pool stop within a block and are not recorded (they are redone next time).
    hang_seconds : float or None
        A file whose preparation takes longer than this is skipped as hung (default: twice
        the decoder's own time limit plus 30 s); the next scan tries it again.
    prune : bool
        Forget songs that were not found even where their folder is gone or empty (by default
        they are kept as missing: an unplugged drive must not erase its cache).
    retry_failed : bool
        Analyse again the songs that failed before under this encoder and analysis.
    files : sequence of str or PathLike, optional
        Analyse exactly these files (the items another program lists, such as a beets query)
        instead of walking ``folder``. Nothing is then forgotten or marked missing, whatever
        ``prune`` says: a list of files says nothing about the songs it leaves out.
    analysis : AnalysisSource or None
        Where the songs are analysed; None: in this process (:class:`LocalAnalysis` with
        ``workers``, ``prefetch`` and ``hang_seconds``). ``core.cluster.RayAnalysis`` sends
        them to a Ray cluster; the listing, the plan, the library and the events stay here.

    A library that cannot be written (a full disk, a lock held too long) or an encoder that
    fails stops the scan: ``ScanFinished.error`` says why, and what was finished is kept.

    Yields
    ------
    ListingProgress, ScanStarted, TrackDone, TrackFailed, ScanFinished
    """
    started = time.perf_counter()
    cancel = cancel or threading.Event()
    if files is None:
        if folder is None:
            raise ValueError("scan() needs a folder to walk or a list of files.")
        folder = real_path(folder)
        root: str | None = folder
    else:
        root = None  # a list of files: nothing below any folder is forgotten
        files = [real_path(f) for f in files]
        folder = os.path.commonpath(files) if files else ""
    walk_errors: list[tuple[str, str]] = []
    found: list[FileIdentity] = []
    unreadable: list[tuple[str, str]] = []
    if files is None:
        listing = audio_mod.find_audio_files(folder, on_error=lambda p, r: walk_errors.append((p, r)))
    else:
        listing = iter([f for f in files if os.path.lexists(f)])
        unreadable.extend((f, "there is no such file: the list names a file that is not there (moved or deleted "
                              "since it was listed?)") for f in files if not os.path.lexists(f))
    for item in iter_identities(listing):
        if isinstance(item, FileIdentity):
            found.append(item)
        else:
            unreadable.append(item)
        if (len(found) + len(unreadable)) % 500 == 0:
            yield ListingProgress(found=len(found))
            if cancel.is_set():
                yield ScanFinished(0, 0, 0, True, time.perf_counter() - started)
                return

    try:
        plan = library.plan_scan(
            found, encoder_key=encoder.key, analysis_key=settings.key, root=root,
            keep_under=[path for path, _ in walk_errors], prune=prune, retry_failed=retry_failed,
            dimension=getattr(encoder, "embedding_size", None),
        )
    except LibraryError as err:
        yield ScanFinished(0, 0, 0, False, time.perf_counter() - started, error=str(err))
        return
    todo, cached = plan.todo, plan.cached
    problems = unreadable + walk_errors
    total_work = len(todo) + len(problems)
    yield ScanStarted(folder=folder, total=len(found) + len(unreadable), to_analyse=total_work,
                      cached=cached, pruned=plan.pruned, missing=plan.missing, failed_before=plan.failed)
    completed = failed = analysed = 0
    for path, reason in unreadable:  # reasons are sentences already
        completed += 1
        failed += 1
        yield TrackFailed(path, reason, completed, total_work, kind=FailureKind.UNREADABLE)
    for path, reason in walk_errors:  # the OS's words for a folder
        completed += 1
        failed += 1
        yield TrackFailed(path, f"the folder cannot be read: {reason[:1].lower()}{reason[1:]}", completed, total_work,
                          kind=FailureKind.UNREADABLE)

    stages = {"decode": 0.0, "features": 0.0, "inference": 0.0, "database": 0.0}
    if analysis is None:
        analysis = LocalAnalysis(workers=workers, prefetch=prefetch, hang_seconds=hang_seconds)
    cancelled = False
    error = ""
    outcomes = analysis(todo, encoder=encoder, settings=settings, cancel=cancel, stages=stages) if todo else iter(())
    try:
        for outcome in outcomes:
            if isinstance(outcome, AnalysisStopped):
                cancelled, error = not outcome.error, outcome.error
                break
            track = outcome.track
            completed += 1
            t1 = time.perf_counter()
            try:
                if isinstance(outcome, NotAnalysed):
                    library.record_failure(track.id, outcome.reason, encoder_key=encoder.key,
                                           analysis_key=settings.key, kind=outcome.kind)
                else:
                    tags = outcome.tags
                    vector = song_vector(outcome.embeddings)
                    library.record_result(
                        track.id, encoder_key=encoder.key, analysis_key=settings.key,
                        vector=vector, slice_vectors=outcome.embeddings, offset_seconds=outcome.offset,
                        title=tags.title, artist=tags.artist, album=tags.album, duration=tags.duration,
                        tag_probabilities=outcome.tag_probabilities,
                    )
            except LibraryError as err:
                error = str(err)
                break
            stages["database"] += time.perf_counter() - t1
            if isinstance(outcome, NotAnalysed):
                failed += 1
                yield TrackFailed(track.path, outcome.reason, completed, total_work, kind=outcome.kind)
                continue
            analysed += 1
            # The row as just written, without reading it back.
            done_track = dataclasses.replace(track, title=tags.title, artist=tags.artist, album=tags.album,
                                             duration=tags.duration, status="done", error="", missing=False,
                                             error_kind=None)
            yield TrackDone(done_track, len(outcome.embeddings), completed, total_work, vector, outcome.note)
    finally:  # also when the consumer stops iterating (GeneratorExit): the analysis never outlives the scan
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
    yield ScanFinished(analysed, failed, cached, cancelled, time.perf_counter() - started, stages, error)


def reanalyse(
    tracks: Sequence[Track],
    *,
    library: Library,
    encoder: SongEncoder,
    settings: AnalysisSettings = AnalysisSettings(),
    cancel: threading.Event | None = None,
    hang_seconds: float | None = None,
) -> Iterator[TrackDone | TrackFailed]:
    """Analyse these songs again now, even where their cache entry looks valid.

    For a result the user doubts, or a file changed in a way its size and mtime do not show.
    Each file's identity is stored as found now (a changed file loses its stale entries, as in
    a scan); the new analysis replaces the old one, and a file that now fails is recorded as
    failed and loses its vector under this encoder and analysis. A file that is not there is
    reported and nothing is written (the next scan decides whether it is gone or missing).
    Files are only read.

    Parameters
    ----------
    tracks : sequence of Track
        Songs the library knows.
    library : Library
        Written from this generator's thread only.
    encoder : SongEncoder
    settings : AnalysisSettings
    cancel : threading.Event or None
        Set it to stop after the song in hand (a decode under way stops within a block; its
        song keeps its old analysis).
    hang_seconds : float or None
        As in :func:`scan`.

    Yields
    ------
    TrackDone or TrackFailed
        One per song, ``completed`` counting within these songs.

    Raises
    ------
    MusicrecError
        The encoder failed (nothing is recorded against the song), or the library cannot be written.
    """
    from musicrec_gui.core.errors import MusicrecError

    cancel = cancel or threading.Event()
    if hang_seconds is None:
        hang_seconds = default_hang_seconds()
    total = len(tracks)
    # One decode thread: a file stuck inside a decoder's C code is given up on, as in a scan.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musicrec-reanalyse")
    hung = False
    try:
        if tracks:
            features_mod.load_backend()
        for completed, track in enumerate(tracks, 1):
            if cancel.is_set():
                return
            found = next(iter_identities([track.path]))
            if not isinstance(found, FileIdentity):
                yield TrackFailed(track.path, found[1], completed, total, kind=FailureKind.VANISHED)
                continue
            current = library.update_identity(found)
            if current is None:
                yield TrackFailed(track.path, "the library no longer knows this file; rescan its folder",
                                  completed, total, kind=FailureKind.VANISHED)
                continue
            future = pool.submit(prepare_track, current.path, settings=settings, config=encoder.features,
                                 identity=(current.size, current.mtime_ns), cancel=cancel)
            try:
                prepared, reason, kind = _await_prepared(future, hang_seconds)
            except audio_mod.DecodeCancelled:
                return
            hung = hung or kind is FailureKind.TIMED_OUT
            if prepared is not None:
                try:
                    embeddings, tag_probabilities = embed(encoder, prepared.slices)
                except Exception as err:  # noqa: BLE001 - the encoder's fault: nothing recorded against the song
                    raise MusicrecError(f"the encoder {encoder.key} failed on {display_text(current.path)}: {err}") \
                        from err
            if reason is not None:
                library.record_failure(current.id, reason, encoder_key=encoder.key, analysis_key=settings.key,
                                       kind=kind, forget_vector=True)
                yield TrackFailed(current.path, reason, completed, total, kind=kind)
                continue
            tags, vector = prepared.tags, song_vector(embeddings)
            library.record_result(
                current.id, encoder_key=encoder.key, analysis_key=settings.key, vector=vector,
                slice_vectors=embeddings, offset_seconds=prepared.offset, title=tags.title, artist=tags.artist,
                album=tags.album, duration=tags.duration, tag_probabilities=tag_probabilities)
            done = dataclasses.replace(current, title=tags.title, artist=tags.artist, album=tags.album,
                                       duration=tags.duration, status="done", error="", missing=False,
                                       error_kind=None)
            yield TrackDone(done, len(embeddings), completed, total, vector, prepared.note)
    finally:
        pool.shutdown(wait=not hung, cancel_futures=True)
