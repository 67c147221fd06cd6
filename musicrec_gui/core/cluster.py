"""Analysing a scan's songs on a Ray cluster (``musicrec scan FOLDER --ray [ADDRESS]``).

Only the analysis moves: the listing, the plan against the library, every library write and
every event stay in :func:`core.scan.scan` on this machine, so cache keys, failures-as-data,
the progress bar, cancelling and resuming are those of a local scan. Ray is imported here
only, and only when a scan uses it (``pip install 'musicrec[cluster]'``).

::

    scan's todo (index, path, size, mtime_ns) ── ray.data.from_items (small blocks)
        │  files "ship": read here, on this machine's node (a task pinned to it), as bytes
        ▼
    map_batches(SongAnalyser): a fixed pool of actors, one per CPU of the cluster; each loads
        the encoder once (shipped as bytes) and runs core.scan.prepare_track and core.scan.embed
        on one song after another: the encoder's graph always sees one batch shape (8 patches,
        the last batch of a song padded), so its memory stays flat
        ▼
    iter_rows on this process ── Analysed / NotAnalysed ──▶ scan() records them, yields events

Where the files are read (``files``):

- ``shared``: every node reads the paths itself (one shared mount, the same path everywhere);
- ``ship``: this machine reads each file and Ray carries its bytes to a worker, which
  decodes a private temporary copy (named as the file: the title falls back to its name)
  and deletes it;
- ``auto`` (the default) decides before the scan: a small task on every node stats a sample
  of the files to analyse (up to :data:`PROBE_FILES`, spread over the list); if every node
  sees every one under the same path with the same size and mtime, ``shared``, else ``ship``.

Either way a file the workers cannot take as planned — one that a node does not see (a
node that joined later, a mount missing there), that changed, vanished or could not be read
there, or that is too big to ship (over :data:`SHIP_LIMIT_BYTES`) — is analysed on this
machine after the cluster's share, by the same code as a local scan: its failure, if it
fails, reads exactly as a local scan's. Nothing on any node ever writes to a music file.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from musicrec_gui.core import audio as audio_mod
from musicrec_gui.core import features as features_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.errors import FailureKind, MusicrecError
from musicrec_gui.core.library import Track
from musicrec_gui.core.names import display_text
from musicrec_gui.core.scan import (Analysed, AnalysisOutcome, AnalysisStopped, LocalAnalysis, NotAnalysed,
                                    SongEncoder, _await_prepared, default_hang_seconds, embed,
                                    encoder_failed_message, prepare_track)

INSTALL_HINT = "pip install 'musicrec[cluster]'"
FILE_MODES = ("auto", "shared", "ship")
# Files checked on every node to tell a shared mount (enough to catch a mount missing on one node or
# mounted elsewhere; each is one stat per node).
PROBE_FILES = 16
# A file larger than this is analysed here instead of being shipped: a spread analysis decodes only
# 8 patches, so carrying a whole hour-long WAV over the network would cost more than it saves.
SHIP_LIMIT_BYTES = 256 * 1024 * 1024
# Songs per Ray Data batch (and block): small, so results stream back and the progress bar moves.
SONGS_PER_BATCH = 4
# Kinds that, on a worker in "shared" mode, may only mean that node sees the file differently.
_LOCAL_RECHECK = frozenset({FailureKind.UNREADABLE, FailureKind.VANISHED, FailureKind.CHANGED})
# The modules whose code decides a song's vector: a node running other code would give other vectors.
_ANALYSIS_MODULES = ("audio", "features", "config", "encoder", "scan", "errors", "names", "cluster")
_CONNECT_SECONDS = 5.0
# How long the actors may take to start and load the encoder (TensorFlow's import on a busy node included).
ACTOR_START_SECONDS = 300


class ClusterError(MusicrecError):
    """Ray is missing, the cluster cannot be reached, or its nodes cannot run musicrec's analysis."""


def import_ray():
    """The ``ray`` module with Ray Data, or :class:`ClusterError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is what the analysis runs on
    except ImportError as err:
        raise ClusterError(
            f"--ray needs Ray (with Ray Data), which cannot be imported here ({err}). Install musicrec's "
            f"cluster extra on this machine and on every node of the cluster: {INSTALL_HINT}") from None
    return ray


def check_address(address: str | None) -> str:
    """The address to connect to, checked without Ray: ``auto`` (this machine's cluster) or ``HOST:PORT``.

    A ``HOST:PORT`` must accept a TCP connection within a few seconds, so a wrong address is
    told at once (Ray itself would wait and retry for a long time).

    Raises
    ------
    ClusterError
        The address is malformed, is a Ray Client address, or nothing answers there.
    """
    address = (address or "auto").strip()
    if address == "auto":
        return address
    if address.startswith("ray://"):
        raise ClusterError(
            f"--ray {address}: Ray Client addresses (ray://) are not supported; the machine that scans must be a "
            "node of the cluster: run 'ray start --address=HEAD:6379' on it, then 'musicrec scan FOLDER --ray "
            "HEAD:6379'.")
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ClusterError(f"--ray {address}: expected the head node's HOST:PORT (as 'ray start --head' prints it, "
                           "e.g. 10.0.0.5:6379), or no address for the cluster this machine is a node of.")
    try:
        with socket.create_connection((host, int(port_text)), timeout=_CONNECT_SECONDS):
            pass
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise ClusterError(
            f"cannot reach a Ray cluster at {address} ({reason}). Expected the head node's address as 'ray start "
            "--head' prints it; check that the cluster is running ('ray status --address "
            f"{address}') and that this machine can reach it.") from None
    return address


def code_fingerprint() -> str:
    """sha256 over the source of the modules that decide a song's vector (the same on every node, or refused)."""
    digest = hashlib.sha256()
    for name in _ANALYSIS_MODULES:
        module = sys.modules.get(f"musicrec_gui.core.{name}")
        if module is None:
            import importlib

            module = importlib.import_module(f"musicrec_gui.core.{name}")
        with open(module.__file__, "rb") as handle:
            digest.update(name.encode() + b"\0" + handle.read())
    return digest.hexdigest()


def probe_node(samples: Sequence[tuple[str, int, int]]) -> dict[str, Any]:
    """Run on one node: who it is, which code it runs, and how many of ``samples`` it sees as planned.

    Parameters
    ----------
    samples : sequence of (path, size, mtime_ns)
    """
    seen = 0
    for path, size, mtime_ns in samples:
        try:
            st = os.stat(path)
        except OSError:
            continue
        seen += (st.st_size, st.st_mtime_ns) == (size, mtime_ns)
    return {"host": socket.gethostname(), "pid": os.getpid(), "code": code_fingerprint(), "seen": seen,
            "python": sys.version.split()[0]}


def read_files(batch: dict[str, np.ndarray], *, limit: int = SHIP_LIMIT_BYTES) -> dict[str, np.ndarray]:
    """Ray Data stage on this machine's node ("ship"): each file's bytes, or empty and ``local`` set.

    A file is only opened for reading (non-blocking, so a FIFO put in its place cannot hang the
    read); one that cannot be read here, is not a regular file, is over ``limit`` bytes, or whose
    size or mtime is not the planned one before and after the read, is left to this machine's
    own analysis, which then says exactly what a local scan says.
    """
    data, local = [], []
    for path, size, mtime_ns in zip(batch["path"], batch["size"], batch["mtime_ns"]):
        blob = _read_as_planned(str(path), int(size), int(mtime_ns), limit)
        data.append(blob if blob is not None else b"")
        local.append(blob is None)
    out = dict(batch)
    out["data"] = np.array(data, dtype=object)
    out["local"] = np.array(local, dtype=bool)
    return out


def _read_as_planned(path: str, size: int, mtime_ns: int, limit: int) -> bytes | None:
    import stat

    if size > limit:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or (before.st_size, before.st_mtime_ns) != (size, mtime_ns):
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            blob = handle.read(size + 1)
        after = os.fstat(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(blob) != size or (after.st_size, after.st_mtime_ns) != (size, mtime_ns):
        return None  # rewritten while read: the local pass says "changed", or analyses the new file
    return blob


class SongAnalyser:
    """A Ray Data actor: loads the encoder once, then decodes, slices and embeds batches of songs.

    Parameters
    ----------
    model, config : ObjectRef of bytes
        The encoder's ``.keras`` and ``.json`` files (shipped: the nodes need not have them).
    model_name : str
        The ``.keras`` file's name.
    encoder_key : str
        The key of this machine's encoder; a different key on the node (another file) is refused.
    settings : AnalysisSettings
    files : {"shared", "ship"}
    hang_seconds : float
        As in a local scan: a file whose decoding takes longer is given up on (``timed_out``).
    """

    def __init__(self, *, model, config, model_name: str, encoder_key: str, settings: AnalysisSettings,
                 files: str, hang_seconds: float):
        import ray
        from concurrent.futures import ThreadPoolExecutor

        import threadpoolctl

        self.settings, self.files, self.hang_seconds = settings, files, hang_seconds
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        # One actor per CPU: TensorFlow and BLAS use this actor's share, not every core of the node.
        cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self._blas = threadpoolctl.threadpool_limits(limits=1, user_api="blas")
        from musicrec_gui.core.encoder import Encoder

        # The encoder's files, written where only this actor looks, are gone once the model is in memory.
        folder = tempfile.mkdtemp(prefix="musicrec-encoder-")
        try:
            model_path = os.path.join(folder, os.path.basename(model_name))
            with open(model_path, "wb") as handle:
                handle.write(ray.get(model))
            with open(os.path.splitext(model_path)[0] + ".json", "wb") as handle:
                handle.write(ray.get(config))
            self.encoder = Encoder(model_path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if self.encoder.key != encoder_key:
            raise ClusterError(f"the encoder shipped to {self.where} has key {self.encoder.key}, not {encoder_key}")
        features_mod.load_backend()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musicrec-decode")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self._one(str(batch["path"][j]), int(batch["size"][j]), int(batch["mtime_ns"][j]),
                          batch["data"][j] if "data" in batch else None,
                          bool(batch["local"][j]) if "local" in batch else False)
                for j in range(len(batch["index"]))]
        out = {"index": np.asarray(batch["index"], dtype=np.int64)}
        for name in _RESULT_FIELDS:
            values = [row.get(name, _RESULT_FIELDS[name]) for row in rows]
            out[name] = np.array(values, dtype=object if isinstance(_RESULT_FIELDS[name], (str, bytes)) else None)
        return out

    def _one(self, path: str, size: int, mtime_ns: int, data, local: bool) -> dict[str, Any]:
        from concurrent.futures import ThreadPoolExecutor

        if local:
            return {"status": "local"}
        copy_dir = None
        try:
            if self.files == "ship":
                copy_dir = tempfile.mkdtemp(prefix="musicrec-song-")  # removed after the song, whatever happens
                target = _private_copy(copy_dir, path, data)
                identity = None  # the bytes are a snapshot checked against the plan where they were read
            else:
                try:
                    st = os.stat(path)
                except OSError:
                    return {"status": "local"}
                if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                    return {"status": "local"}  # not this file here (another mount), or changed: decided there
                target, identity = path, (size, mtime_ns)
            future = self._pool.submit(prepare_track, target, settings=self.settings, config=self.encoder.features,
                                       identity=identity)
            prepared, reason, kind = _await_prepared(future, self.hang_seconds)
            if kind is FailureKind.TIMED_OUT:  # its thread is stuck in a decoder: decode on a new one
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musicrec-decode")
            if prepared is None:
                if self.files == "shared" and kind in _LOCAL_RECHECK:
                    return {"status": "local"}
                return {"status": "failed", "reason": reason, "kind": kind.value, "where": self.where}
            t0 = time.perf_counter()
            try:
                embeddings, tag_probabilities = embed(self.encoder, prepared.slices)
            except Exception as err:  # noqa: BLE001 - the encoder's fault, not the song's: the scan stops
                return {"status": "stop", "reason": encoder_failed_message(self.encoder.key, path, err)}
            inference = time.perf_counter() - t0
            tags = prepared.tags
            if self.files == "ship" and os.path.basename(target) != os.path.basename(path) \
                    and tags.title == os.path.splitext(os.path.basename(target))[0]:
                tags = audio_mod.Tags(display_text(os.path.splitext(os.path.basename(path))[0]),
                                      tags.artist, tags.album, tags.duration)
            return {
                "status": "done", "embeddings": embeddings.astype(np.float32).tobytes(),
                "n_slices": len(embeddings), "dim": embeddings.shape[1],
                "tags": b"" if tag_probabilities is None else np.asarray(tag_probabilities, np.float32).tobytes(),
                "has_tags": tag_probabilities is not None, "offset": float(prepared.offset),
                "title": tags.title, "artist": tags.artist, "album": tags.album, "duration": float(tags.duration),
                "note": prepared.note, "decode": prepared.decode_seconds, "features": prepared.feature_seconds,
                "inference": inference, "where": self.where,
            }
        finally:
            if copy_dir is not None:
                shutil.rmtree(copy_dir, ignore_errors=True)


# Every result column and its value when a row does not set it (Arrow needs one type per column).
_RESULT_FIELDS: dict[str, Any] = {
    "status": "", "reason": "", "kind": "", "embeddings": b"", "n_slices": 0, "dim": 0, "tags": b"",
    "has_tags": False, "offset": 0.0, "title": "", "artist": "", "album": "", "duration": 0.0, "note": "",
    "decode": 0.0, "features": 0.0, "inference": 0.0, "where": "",
}


def _private_copy(folder: str, path: str, data: bytes) -> str:
    """Write ``data`` to a new file in ``folder`` (made by the worker) named as ``path``, or "song" + its suffix."""
    name = os.path.basename(path)
    for candidate in (name, "song" + os.path.splitext(name)[1][:16]):
        target = os.path.join(folder, candidate)
        try:
            with open(target, "xb") as handle:
                handle.write(data)
            return target
        except (OSError, UnicodeEncodeError, ValueError):
            continue
    raise OSError(f"cannot write a temporary copy in {folder}")


@dataclass
class RunSummary:
    """What the last cluster run did, for the command line and the benchmark."""

    address: str = ""
    nodes: int = 0
    cpus: int = 0
    files: str = ""
    by_worker: dict[str, int] = field(default_factory=dict)
    here: int = 0  # songs analysed on this machine (not seen as planned by the workers)
    seconds_to_first: float = 0.0


class RayAnalysis:
    """Analyse a scan's songs on a Ray cluster; pass it to :func:`core.scan.scan` as ``analysis``.

    Parameters
    ----------
    address : str or None
        The head node's ``HOST:PORT``, or None / ``"auto"`` for the cluster this machine is a
        node of (``ray start`` was run here, or ``RAY_ADDRESS`` says where).
    files : {"auto", "shared", "ship"}
        Where the files are read (module docstring); ``auto`` probes the nodes.
    workers : int or None
        Actors analysing songs; default one per CPU of the cluster.
    hang_seconds : float or None
        As in a local scan.
    local_workers : int
        Decoding threads for the songs analysed on this machine.

    Raises
    ------
    ClusterError
        At once, without connecting: Ray is not installed, or the address is malformed or unreachable.
    """

    def __init__(self, address: str | None = None, *, files: str = "auto", workers: int | None = None,
                 hang_seconds: float | None = None, local_workers: int = 2):
        if files not in FILE_MODES:
            raise ClusterError(f"files must be one of {', '.join(FILE_MODES)}, got {files!r}")
        import_ray()
        self.address = check_address(address)
        self.files = files
        self.workers = workers
        self.hang_seconds = default_hang_seconds() if hang_seconds is None else hang_seconds
        self.local_workers = local_workers
        self.summary = RunSummary()

    def __call__(self, todo: Sequence[Track], *, encoder: SongEncoder, settings: AnalysisSettings,
                 cancel: threading.Event, stages: dict[str, float]) -> Iterator[AnalysisOutcome]:
        """Analyse ``todo`` on the cluster (see :class:`core.scan.AnalysisSource`)."""
        ray = import_ray()
        started = time.perf_counter()
        owns_connection = not ray.is_initialized()
        here: list[Track] = []
        rows = None
        try:
            if owns_connection:
                _connect(ray, self.address)
            files, cpus = self._inspect(ray, todo)
            stream = self._dataset(ray, todo, encoder=encoder, settings=settings, files=files, cpus=cpus)
            rows = iter(stream.iter_rows())
            while True:
                if cancel.is_set():
                    yield AnalysisStopped()
                    return
                try:
                    row = next(rows, None)
                except Exception as err:  # noqa: BLE001 - Ray's errors: the scan stops, finished songs are kept
                    yield AnalysisStopped(_stopped_message(self.address, err))
                    return
                if row is None:
                    break
                if not self.summary.seconds_to_first:
                    self.summary.seconds_to_first = time.perf_counter() - started
                track = todo[int(row["index"])]
                status = str(row["status"])
                if status == "local":
                    here.append(track)
                    continue
                if status == "stop":
                    yield AnalysisStopped(str(row["reason"]))
                    return
                where = str(row["where"])
                self.summary.by_worker[where] = self.summary.by_worker.get(where, 0) + 1
                if status == "failed":
                    yield NotAnalysed(track, str(row["reason"]), FailureKind.parse(str(row["kind"])))
                    continue
                for stage in ("decode", "features", "inference"):
                    stages[stage] += float(row[stage])
                embeddings = np.frombuffer(row["embeddings"], dtype=np.float32).reshape(
                    int(row["n_slices"]), int(row["dim"])).copy()
                tag_probabilities = np.frombuffer(row["tags"], dtype=np.float32).copy() if row["has_tags"] else None
                tags = audio_mod.Tags(str(row["title"]), str(row["artist"]), str(row["album"]), float(row["duration"]))
                yield Analysed(track, embeddings, tag_probabilities, float(row["offset"]), tags, str(row["note"]))
        except ClusterError as err:
            yield AnalysisStopped(str(err))
            return
        finally:
            if rows is not None:
                # Stops the dataset's executor on this thread now: one left running past ray.shutdown() would
                # start a Ray of its own on this machine (Ray's auto-init) to go on.
                rows.close()
            if owns_connection and ray.is_initialized():
                ray.shutdown()
        if here:
            # The workers could not take these as planned: this machine analyses them as a local scan would.
            self.summary.here = len(here)
            yield from LocalAnalysis(workers=self.local_workers, hang_seconds=self.hang_seconds)(
                here, encoder=encoder, settings=settings, cancel=cancel, stages=stages)

    def _inspect(self, ray, todo: Sequence[Track]) -> tuple[str, int]:
        """Check every node runs this musicrec, and decide where the files are read: (files, CPUs)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        cpus = int(sum(n["Resources"]["CPU"] for n in nodes))
        self.summary.address, self.summary.nodes, self.summary.cpus = self.address, len(nodes), cpus
        if not nodes:
            raise ClusterError(f"the Ray cluster at {self.address} has no node with a CPU to analyse on; add one "
                               "with 'ray start --address=HEAD:PORT'.")
        step = max(1, math.ceil(len(todo) / PROBE_FILES))
        samples = [(t.path, t.size, t.mtime_ns) for t in todo[::step]][:PROBE_FILES]
        probe = ray.remote(num_cpus=0, max_retries=0)(probe_node)
        refs = {n["NodeManagerAddress"]: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(samples) for n in nodes}
        mine = code_fingerprint()
        shared = True
        for node, ref in refs.items():
            try:
                answer = ray.get(ref, timeout=120)
            except Exception as err:  # noqa: BLE001 - any failure to run musicrec there, in the user's words
                raise ClusterError(
                    f"the Ray node {node} cannot run musicrec's analysis ({_first_line(err)}). Install the same "
                    f"musicrec as here on every node ({INSTALL_HINT}), with its cluster extra.") from None
            if answer["code"] != mine:
                raise ClusterError(
                    f"the Ray node {node} ({answer['host']}) runs another version of musicrec's analysis code than "
                    "this machine, so its vectors would not match the library's. Install the same musicrec on "
                    "every node of the cluster.")
            shared = shared and answer["seen"] == len(samples)
        files = self.files if self.files != "auto" else ("shared" if shared else "ship")
        self.summary.files = files
        return files, cpus

    def _dataset(self, ray, todo: Sequence[Track], *, encoder: SongEncoder, settings: AnalysisSettings,
                 files: str, cpus: int):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the scan's own progress bar tells
        context.verbose_stats_logs = False
        # Every actor loads the encoder before the first song is handed out: otherwise the first one ready
        # takes every block while the others still load (seconds of TensorFlow), and a small scan runs on one.
        context.wait_for_min_actors_s = ACTOR_START_SECONDS
        model_path, config_path = _encoder_files(encoder)
        with open(model_path, "rb") as handle:
            model = ray.put(handle.read())
        with open(config_path, "rb") as handle:
            config = ray.put(handle.read())
        items = [{"index": i, "path": t.path, "size": t.size, "mtime_ns": t.mtime_ns} for i, t in enumerate(todo)]
        ds = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / SONGS_PER_BATCH)))
        # CPUs other jobs hold now are not waited for (every actor must start before work is handed out).
        free = int(ray.available_resources().get("CPU", 0))
        size = max(1, min(self.workers or cpus, free or 1, len(todo)))
        # Ray 2.5x deprecates these as free keyword arguments without a named replacement for both (hence the
        # <2.64 pin in pyproject.toml); the warning says nothing to a musicrec user.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
            if files == "ship":
                here = ray.get_runtime_context().get_node_id()
                # Read where the files are (this machine's node), with no CPU reserved: it only waits on the disk.
                ds = ds.map_batches(read_files, batch_size=SONGS_PER_BATCH, num_cpus=0,
                                    compute=ray.data.TaskPoolStrategy(size=2),
                                    scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
            return ds.map_batches(
                SongAnalyser, batch_size=SONGS_PER_BATCH, num_cpus=1,
                compute=ray.data.ActorPoolStrategy(size=size),
                fn_constructor_kwargs={"model": model, "config": config, "model_name": os.path.basename(model_path),
                                       "encoder_key": encoder.key, "settings": settings, "files": files,
                                       "hang_seconds": self.hang_seconds},
                # A worker that died (a decoder crashed on a file, a node was lost) ends the scan with a
                # message instead of retrying the same file for ever; a rerun goes on from there.
                max_restarts=0,
            )


def _encoder_files(encoder: SongEncoder) -> tuple[str, str]:
    model_path = getattr(encoder, "model_path", None)
    config_path = getattr(encoder, "config_path", None)
    if model_path is None or config_path is None:
        raise ClusterError("this encoder has no .keras file to send to the cluster; use a saved encoder (--encoder).")
    return os.fspath(model_path), os.fspath(config_path)


def _connect(ray, address: str) -> None:
    """``ray.init`` quietly, keeping this process's SIGTERM handler (Ray's would end the scan without cleanup)."""
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, namespace="musicrec",
                 configure_logging=True)
    except Exception as err:  # noqa: BLE001 - ray.init raises many types; each becomes one sentence
        where = "on this machine" if address == "auto" else f"at {address}"
        hint = ("start one with 'ray start --head', or pass --ray HOST:PORT of a running cluster"
                if address == "auto" else "check it with 'ray status --address " + address + "'")
        if "auth" in str(err).lower():
            hint = ("the cluster uses token authentication: give this machine the cluster's token "
                    "(RAY_AUTH_TOKEN, or the file ~/.ray/auth_token) and RAY_AUTH_MODE=token")
        raise ClusterError(f"cannot connect to a Ray cluster {where} ({_first_line(err)}); {hint}.") from None
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _stopped_message(address: str, err: BaseException) -> str:
    return (f"the Ray cluster at {address} stopped the analysis ({_first_line(err)}). The songs finished so far "
            "are in the library; run the same command again to go on from there.")


def _first_line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split("\n")[0].split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
