"""The library cache: one SQLite file holding what is known about a user's songs.

What is stored, and why:

- ``tracks`` — one row per file, keyed by its path (as raw file-system bytes, so
  names that are not valid UTF-8 survive), with the file identity (size,
  mtime_ns) at analysis time, its tags, and its status (``pending``, ``done``,
  ``failed`` + the reason and its :class:`~musicrec_gui.core.errors.FailureKind`).
  A file whose size or mtime changed is re-analysed.
- ``vectors`` — song vectors and per-slice embeddings keyed by track, encoder key
  and analysis key. A new encoder adds vectors; it does not touch the file list.
  :meth:`Library.prune_vectors` drops those of encoders no longer used.
- ``failures`` — why a file failed, keyed like vectors (reason and kind).
- ``meta`` — free key/values; the schema version is SQLite's ``user_version``.

The database runs in WAL mode; every track's result is written in one
transaction, so a crash leaves either the whole result or none of it. Writes go
through the connection opened with the library (one thread at a time, under a
lock); reads take a read-only connection of their own from a small pool, so a
read on the app's thread never waits behind a scan's write (WAL lets readers
and a writer work at once). Music files are only ever read.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from musicrec_gui.core import runtime
from musicrec_gui.core.errors import RETRIED_KINDS, FailureKind, MusicrecError, not_a_file_reason, os_error_reason
from musicrec_gui.core.names import display_text

SCHEMA_VERSION = 3
APP_ID = 0x6D726563  # "mrec": tells our database from any other SQLite file
BUSY_TIMEOUT = 30.0
# Names a library file may have when it already exists but is empty (a creation that died before
# its first commit): an empty file of any other name may be a user's, and is never written to.
LIBRARY_SUFFIXES = (".sqlite3", ".sqlite", ".db")
# Idle read connections kept for the next read (more are opened while more threads read at once).
MAX_IDLE_READERS = 4
# Files up to this size get SQLite's full quick_check when opened (≈ 0.75 s per GB).
FULL_CHECK_MAX_BYTES = 512 * 1024 * 1024
# Song vectors read per fetch: bounded memory for a million songs, few round trips for a thousand.
VECTOR_READ_CHUNK = 20_000
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    artist TEXT NOT NULL DEFAULT '',
    album TEXT NOT NULL DEFAULT '',
    duration REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    error_kind TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS vectors (
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    encoder_key TEXT NOT NULL,
    analysis_key TEXT NOT NULL,
    vector BLOB NOT NULL,
    slice_vectors BLOB NOT NULL,
    n_slices INTEGER NOT NULL,
    offset_seconds REAL NOT NULL DEFAULT 0,
    tags BLOB,
    PRIMARY KEY (track_id, encoder_key, analysis_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_by_key ON vectors (encoder_key, analysis_key);
CREATE TABLE IF NOT EXISTS failures (
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    encoder_key TEXT NOT NULL,
    analysis_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    updated_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, encoder_key, analysis_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Each entry upgrades a database from version i+1 to i+2; append, never edit.
_MIGRATIONS: list[str] = [
    # 1 → 2: failures are keyed like vectors (a failure under one encoder or analysis says nothing
    # of another), songs not found by a scan can be kept as missing, and an encoder with a tag head
    # stores each song's tag probabilities beside its vector. Version-1 failures carry no key, so
    # those songs are tried once more.
    """
    ALTER TABLE tracks ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE vectors ADD COLUMN tags BLOB;
    CREATE TABLE failures (
        track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        encoder_key TEXT NOT NULL,
        analysis_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        updated_at REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (track_id, encoder_key, analysis_key)
    ) WITHOUT ROWID;
    UPDATE tracks SET status = 'pending', error = '' WHERE status = 'failed';
    """,
    # 2 → 3: a failed track carries the kind of its failure beside the reason (``FailureKind``),
    # taken from its latest failure; schema 2's "timeout" is called "timed_out".
    """
    ALTER TABLE tracks ADD COLUMN error_kind TEXT NOT NULL DEFAULT '';
    UPDATE failures SET kind = 'timed_out' WHERE kind = 'timeout';
    UPDATE tracks SET error_kind = COALESCE(
        (SELECT f.kind FROM failures f WHERE f.track_id = tracks.id ORDER BY f.updated_at DESC LIMIT 1), 'other')
        WHERE status = 'failed';
    """,
]


class LibraryError(MusicrecError):
    """The library file cannot be used. The message says what happened and what to do."""


class LibraryBusyError(LibraryError):
    """Another program holds the library's write lock for longer than the busy timeout."""


class LibraryReadOnlyError(LibraryError):
    """The library file or its folder cannot be written."""


class LibraryFullError(LibraryError):
    """The disk holding the library is full (or the file hit a size limit)."""


class LibraryCorruptError(LibraryError):
    """SQLite reports the library file as damaged."""


class NotALibraryError(LibraryError):
    """The path names something that is not a musicrec library: never written to or moved."""


@dataclass(frozen=True, slots=True)  # slots: a million tracks without a dict each (≈ 100 MB less)
class Track:
    """One file of the library.

    Attributes
    ----------
    id : int
    path : str
        The real path (symbolic links resolved).
    size, mtime_ns : int
        The file's identity when it was last seen.
    title, artist, album : str
    duration : float
        Seconds; 0.0 when unknown.
    status : {"pending", "done", "failed"}
    error : str
        Why it failed, for the user; "" unless ``status == "failed"``.
    missing : bool
        Not found by the last scan of its folder, but kept (an unmounted drive).
    error_kind : FailureKind or None
        Why it failed, sorted (``empty``, ``truncated``, ``not_audio``, …); None unless
        ``status == "failed"``.
    """

    id: int
    path: str
    size: int
    mtime_ns: int
    title: str
    artist: str
    album: str
    duration: float
    status: str
    error: str
    missing: bool = False
    error_kind: FailureKind | None = None

    @property
    def display_path(self) -> str:
        return display_text(self.path)


@dataclass(frozen=True)
class FileIdentity:
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanPlan:
    """What :meth:`Library.plan_scan` decided.

    Attributes
    ----------
    todo : list of Track
        Found songs to analyse now.
    cached : int
        Found songs already analysed with this encoder and analysis.
    pruned : int
        Songs forgotten: gone from a folder that is otherwise present, or ``prune=True``.
    missing : int
        Songs not found but kept (their folder is gone or empty: an unmounted drive).
    failed : int
        Found songs that failed before under this encoder and analysis and are not retried.
    """

    todo: list
    cached: int
    pruned: int
    missing: int
    failed: int


@dataclass(frozen=True)
class VectorSetUsage:
    """What one encoder and analysis take in the library (:meth:`Library.vector_usage`).

    Attributes
    ----------
    encoder_key, analysis_key : str
    vectors : int
        Songs with a vector under this key.
    bytes : int
        Bytes of their song vectors, slice vectors and tag probabilities (SQLite's own
        overhead, a few per cent, is not counted).
    failures : int
        Songs that failed under this key.
    """

    encoder_key: str
    analysis_key: str
    vectors: int
    bytes: int
    failures: int


@dataclass(frozen=True)
class PruneResult:
    """What :meth:`Library.prune_vectors` deleted (or would delete, with ``dry_run``)."""

    vectors: int
    bytes: int
    failures: int
    encoder_keys: tuple[str, ...]


def default_library_path() -> Path:
    """``$MUSICREC_LIBRARY`` if set, else ``library.sqlite3`` in the user's data directory."""
    override = runtime.library_override()
    if override is not None:
        return override
    import platformdirs

    return Path(platformdirs.user_data_dir("musicrec", appauthor=False)) / "library.sqlite3"


def _key(path: str) -> bytes:
    return os.fsencode(path)


def real_path(path: str | os.PathLike) -> str:
    """The path a file is known by: absolute, with every symbolic link resolved.

    A folder reached through a link and through its own name is one folder, so its songs
    are stored once.
    """
    return os.path.realpath(os.fspath(path))


def _under_prefix(folder: str | os.PathLike) -> bytes:
    return _key(os.path.join(real_path(folder), ""))


def is_below(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` lies below ``folder`` (links resolved), as ``Library.tracks(under=folder)`` sees it."""
    return _key(real_path(path)).startswith(_under_prefix(folder))


def library_error(err: sqlite3.Error, path: Path, *, doing: str) -> LibraryError:
    """Turn an SQLite error into a :class:`LibraryError` a user can act on.

    Parameters
    ----------
    err : sqlite3.Error
    path : Path
        The library file.
    doing : str
        What musicrec was doing, e.g. ``"open"`` or ``"write to"``.
    """
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(err)
    if primary in (10, 14):  # SQLITE_IOERR, SQLITE_CANTOPEN: ask the file system what it is
        state = _disk_state(path)
        if state == "read-only":
            primary = 8
        elif state == "full":
            primary = 13
    if primary in (5, 6) or "locked" in text:  # SQLITE_BUSY, SQLITE_LOCKED
        return LibraryBusyError(
            f"The library {path} is in use by another program (its write lock was held for longer "
            "than musicrec waits); wait for the other musicrec to finish, or close it, then try again. "
            "The library was left as it is."
        )
    if primary == 8 or "readonly" in text.replace("-", "").replace(" ", ""):  # SQLITE_READONLY
        return LibraryReadOnlyError(
            f"Cannot {doing} the library {path}: the file or its folder is read-only. Make it writable "
            "or choose another file with --library. The library was left as it is."
        )
    if primary == 13 or "full" in text:  # SQLITE_FULL
        return LibraryFullError(
            f"Cannot {doing} the library {path}: the disk is full. Free some space and run again; "
            "what was finished is kept, and the song in hand will be analysed again."
        )
    if primary in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return LibraryCorruptError(f"The library {path} is damaged ({text}).")
    if primary == 10:  # SQLITE_IOERR: often a full disk while growing the WAL or its index
        return LibraryFullError(
            f"Cannot {doing} the library {path}: a disk error ({text}). Check that the disk has free "
            "space and is still mounted, then run again; what was finished is kept."
        )
    if primary == 14:  # SQLITE_CANTOPEN
        return LibraryError(
            f"Cannot open the library {path} ({text}): check that its folder exists and is writable, "
            "or choose another file with --library."
        )
    return LibraryError(f"Cannot {doing} the library {path}: {text}.")


def _disk_state(path: Path) -> str:
    """"read-only", "full" or "" for the file system holding ``path``."""
    folder = path.parent if path.parent.exists() else Path(".")
    try:
        info = os.statvfs(folder)
    except OSError:
        return ""
    if info.f_flag & os.ST_RDONLY or not os.access(folder, os.W_OK) or (
            path.exists() and not os.access(path, os.W_OK)):
        return "read-only"
    if info.f_bavail * info.f_frsize < 64 * 1024:
        return "full"
    return ""


def library_error_from_os(err: OSError, path: Path) -> LibraryError:
    """A LibraryError for an operating-system error on the library file."""
    state = _disk_state(path)
    kind = {"read-only": LibraryReadOnlyError, "full": LibraryFullError}.get(state, LibraryError)
    return kind(f"Cannot open the library {path}: {err.strerror or err}"
                + (f" (the disk is {state})" if state else "") + ".")


def _read_header(path: Path) -> bytes | None:
    """The first 100 bytes of an existing regular file (b"" if empty); None if it does not exist.

    Raises NotALibraryError for anything that is not a regular file.
    """
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise LibraryError(f"Cannot use {path} as the library: {err.strerror or err}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise NotALibraryError(
            f"{path} is a folder, not a library file. --library names the cache file musicrec keeps "
            "(for example library.sqlite3); the music folder is given to 'scan'."
        )
    if not stat.S_ISREG(info.st_mode):
        raise NotALibraryError(f"{path} is not a regular file (a device, pipe or socket); choose another --library.")
    if info.st_size == 0:
        return b""
    try:
        with open(path, "rb") as handle:
            return handle.read(100)
    except OSError as err:
        raise LibraryError(f"Cannot read the library {path}: {err.strerror or err}.") from None


def _check_ours(path: Path) -> None:
    """Refuse, before SQLite opens it, anything at ``path`` that is not a musicrec library.

    The checks look through symbolic links (a link named ``lib.sqlite3`` that points at a
    document is the document) and refuse dangling ones, which would create a file where the
    link points. An existing library must be an SQLite database carrying musicrec's
    application id; musicrec never creates an empty or half-made library file (see
    :meth:`Library._create`), so an empty file is accepted only where an older musicrec could
    have left it: named like a library, and not a hard link to some other name.
    """
    from musicrec_gui.core.audio import is_audio_path

    raw = os.fspath(path)
    if raw.endswith(os.sep) or (os.altsep and raw.endswith(os.altsep)):
        raise NotALibraryError(
            f"{raw} names a folder; --library names the cache file musicrec keeps, for example "
            f"{os.path.join(raw, 'library.sqlite3')}."
        )
    real = Path(real_path(path))
    for name in {path, real}:
        if is_audio_path(name):
            raise NotALibraryError(
                f"{name} has an audio file's name; a library is never written there. Choose a name such as "
                "library.sqlite3 for --library."
            )
    if os.path.islink(path) and not os.path.exists(path):
        raise NotALibraryError(
            f"{path} is a symbolic link to {real}, which does not exist; musicrec does not create files "
            "through links. Give the library's real path."
        )
    header = _read_header(real)
    if header is None:
        return
    if header == b"":
        if real.suffix.lower() not in LIBRARY_SUFFIXES or os.stat(real).st_nlink > 1:
            raise NotALibraryError(
                f"{path} exists, is empty and is not a musicrec library (not named like one: "
                f"{', '.join(LIBRARY_SUFFIXES)}, or linked under another name); musicrec does not write into "
                "files it did not create. Choose another --library."
            )
        return
    if not header.startswith(_SQLITE_MAGIC):
        raise NotALibraryError(
            f"{path} is not a musicrec library (it is not an SQLite database); it was left untouched. "
            "Check the --library path."
        )
    if len(header) < 72 or int.from_bytes(header[68:72], "big") != APP_ID:
        raise NotALibraryError(
            f"{path} is an SQLite database of another program, not a musicrec library; it was left "
            "untouched. Check the --library path."
        )


def _is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except OSError:
        return False
    return header.startswith(_SQLITE_MAGIC) and len(header) >= 72 and int.from_bytes(header[68:72], "big") == APP_ID


def _identity(path: Path | int) -> tuple[int, int] | None:
    """(device, inode) of a path or an open file descriptor."""
    try:
        info = os.fstat(path) if isinstance(path, int) else os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _set_aside(path: Path, damaged: int) -> Path | None:
    """Move a damaged library (and its WAL) to a fresh ``NAME.broken-…`` name; never onto an existing file.

    Only the very file found damaged is moved: ``damaged`` is a descriptor opened on it before
    it was checked (held open, its inode cannot be reused by a new file). If another process has
    replaced the file meanwhile, nothing is moved and None is returned.
    """
    identity = _identity(damaged)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        aside = path.with_name(f"{path.name}.broken-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        if any(Path(str(aside) + s).exists() for s in ("", "-wal", "-shm")):
            continue
        try:
            os.link(path, aside)  # fails if the name was taken meanwhile: nothing is overwritten
        except FileExistsError:
            continue
        except FileNotFoundError:
            return None
        except OSError as err:
            raise LibraryError(
                f"The library {path} is damaged and could not be set aside ({err.strerror or err}); "
                "move it away yourself and run again."
            ) from None
        if _identity(aside) != identity or _identity(path) != identity:
            os.unlink(aside)  # our own link to a file that is not the damaged one
            return None
        os.unlink(path)
        for suffix in ("-wal", "-shm"):
            source = Path(str(path) + suffix)
            try:
                os.link(source, Path(str(aside) + suffix))
                os.unlink(source)
            except OSError:
                pass
        return aside
    raise LibraryError(f"The library {path} is damaged and could not be set aside; move it away yourself.")


def _uri(path: Path, mode: str) -> str:
    return "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(path))) + f"?mode={mode}"


class Library:
    """A library cache file.

    Parameters
    ----------
    path : str, PathLike or None
        The SQLite file; ``None`` → :func:`default_library_path`.
    recover : bool
        If SQLite reports the file as damaged and it carries musicrec's application id, move it
        aside (``NAME.broken-TIMESTAMP``, never onto an existing file) and start a new one;
        ``recovered_from`` then says where it went. Anything else — a foreign file, a folder, a
        busy, read-only or full library, a newer schema — raises :class:`LibraryError` and is
        left exactly as it is.
    busy_timeout : float or None
        Seconds to wait for another process's write lock before giving up (default
        :data:`BUSY_TIMEOUT`).

    Notes
    -----
    Any thread may call any method. Writes use the connection opened here, one at a time;
    reads use read-only connections from a pool (one per concurrent reader, at most
    :data:`MAX_IDLE_READERS` kept idle), so they neither wait for a write in progress nor
    see it half done. :meth:`close` (idempotent, from any thread) waits for reads in
    progress, then closes every connection.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, recover: bool = True,
                 busy_timeout: float | None = None):
        given = path if path is not None else default_library_path()
        self.recovered_from: Path | None = None
        self.busy_timeout = BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        self._lock = threading.RLock()  # one writer at a time on the owner connection
        self._readers = threading.Condition()  # guards the fields below
        self._idle_readers: list[sqlite3.Connection] = []
        self._busy_readers = 0
        self._closed = False
        self._file_identity: tuple[int, int] | None = None
        _check_ours(given)
        self.path = Path(given)
        if not self.path.parent.is_dir():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise LibraryError(
                    f"Cannot create the library folder {self.path.parent}: {err.strerror or err}."
                ) from None
        for _ in range(5):  # another process may replace the file under us; look again
            if not self.path.exists():
                self._create()
            try:
                checked = os.open(self.path, os.O_RDONLY)  # pins the inode that is about to be checked
            except FileNotFoundError:
                continue
            except OSError as err:
                raise library_error_from_os(err, self.path) from None
            try:
                self._conn = self._open()
                self._file_identity = _identity(self.path)
                return
            except LibraryCorruptError:
                if not recover or not _is_ours(self.path):
                    raise
                aside = _set_aside(self.path, checked)
            finally:
                os.close(checked)
            if aside is None:
                continue
            self.recovered_from = aside
            try:
                self._create()
                self._conn = self._open()
                self._file_identity = _identity(self.path)
                return
            except LibraryError as err:
                raise type(err)(f"{err} (The damaged library was first moved to {aside}.)") from None
        raise LibraryError(f"The library {self.path} keeps changing under musicrec; is another program rewriting it?")

    def _create(self) -> None:
        """Make a new library in a file of our own, then link it into place.

        The library never exists half-made or empty: other processes see either no file or a
        complete one, and a creation that dies leaves only a temporary file of our own.
        """
        tmp = self.path.with_name(f".{self.path.name}.musicrec-new-{os.getpid()}-{threading.get_ident()}")
        try:
            conn = sqlite3.connect(tmp, isolation_level=None, timeout=self.busy_timeout)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APP_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
            try:
                os.link(tmp, self.path)  # never replaces a library another process made meanwhile
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links (FAT on a USB stick)
                if not self.path.exists():
                    os.rename(tmp, self.path)
        except sqlite3.Error as err:
            raise library_error(err, self.path, doing="create") from None
        except OSError as err:
            state = _disk_state(self.path)
            kind = {"read-only": LibraryReadOnlyError, "full": LibraryFullError}.get(state, LibraryError)
            raise kind(f"Cannot create the library {self.path}: {err.strerror or err}"
                       + (f" (the disk is {state})" if state else "") + ".") from None
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    os.unlink(str(tmp) + suffix)

    def _probe(self) -> None:
        """Check ownership and schema version through a read-only connection.

        A connection that cannot write cannot checkpoint a pending WAL when it closes, so a
        refused file (another program's, a newer musicrec's) is left exactly as it was. Without
        a WAL the file's header says it all, and no connection (which would leave ``-wal`` and
        ``-shm`` files beside it) is needed.
        """
        wal = Path(str(self.path) + "-wal")
        if not wal.exists() or wal.stat().st_size == 0:
            with open(self.path, "rb") as handle:
                header = handle.read(100)
            if len(header) == 100 and header.startswith(_SQLITE_MAGIC):
                application_id = int.from_bytes(header[68:72], "big")
                version = int.from_bytes(header[60:64], "big")
                self._refuse(application_id, version)
                return
        try:
            probe = sqlite3.connect(_uri(self.path, "ro"), uri=True, timeout=self.busy_timeout)
        except sqlite3.Error as err:
            raise library_error(err, self.path, doing="open") from None
        try:
            application_id = probe.execute("PRAGMA application_id").fetchone()[0]
            version = probe.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as err:
            raise library_error(err, self.path, doing="open") from None
        finally:
            probe.close()
        self._refuse(application_id, version)

    def _refuse(self, application_id: int, version: int) -> None:
        if application_id != APP_ID:
            raise NotALibraryError(f"{self.path} is an SQLite file but not a musicrec library; it was left untouched.")
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"The library {self.path} was written by a newer musicrec (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade musicrec or choose another library file. It was left as it is."
            )

    def _open(self) -> sqlite3.Connection:
        if os.path.getsize(self.path) > 0:
            self._probe()
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=self.busy_timeout)
        except sqlite3.Error as err:
            raise library_error(err, self.path, doing="open") from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            # Upgrades (and an empty file an older musicrec left) are handled inside one write
            # transaction, re-checked under the lock, so concurrent openers never see half a schema.
            conn.execute("BEGIN IMMEDIATE")
            try:
                application_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                n_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if n_tables and application_id != APP_ID:
                    raise NotALibraryError(
                        f"{self.path} is an SQLite file but not a musicrec library; it was left untouched."
                    )
                if version > SCHEMA_VERSION:
                    raise LibraryError(
                        f"The library {self.path} was written by a newer musicrec (schema {version}); "
                        "upgrade musicrec. It was left as it is."
                    )
                if not n_tables:
                    for statement in _statements(_SCHEMA):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APP_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                else:
                    for target in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in _statements(_MIGRATIONS[target - 2]):
                            conn.execute(statement)
                    if version < SCHEMA_VERSION:
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # quick_check reads the whole file: 3.6 s for a million songs (4.9 GB). A larger file
            # gets it for its small tables only; damage in the tracks or vectors is reported by the
            # read that meets it (LibraryCorruptError), not found in advance.
            if os.path.getsize(self.path) <= FULL_CHECK_MAX_BYTES:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
            else:
                check = next((c for c in (conn.execute(f"PRAGMA quick_check({table})").fetchone()[0]
                                          for table in ("meta", "failures")) if c != "ok"), "ok")
            if check != "ok":
                raise LibraryCorruptError(f"The library {self.path} is damaged ({check}).")
        except sqlite3.Error as err:
            conn.close()
            raise library_error(err, self.path, doing="open") from None
        except LibraryError:
            conn.close()
            raise
        return conn

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        """Close every connection; idempotent, and safe from any thread.

        Reads in progress on other threads are waited for (at most ``busy_timeout``); the
        connection that writes is closed last, so it checkpoints the WAL into the file.
        """
        with self._readers:
            if self._closed:
                return
            self._closed = True
            deadline = time.monotonic() + max(self.busy_timeout, 1.0)
            while self._busy_readers and time.monotonic() < deadline:
                self._readers.wait(deadline - time.monotonic())
            idle, self._idle_readers = self._idle_readers, []
        for conn in idle:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        with self._lock:
            self._conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction; SQLite errors become LibraryErrors with a message for the user."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise library_error(err, self.path, doing="write to") from None

    def _check_open(self) -> None:
        if self._closed:
            raise LibraryError(f"The library {self.path} was closed; open it again to use it.")

    @contextlib.contextmanager
    def _writing(self):
        """The owner connection in one write transaction, one thread at a time."""
        with self._lock:
            self._check_open()
            with self._transaction() as conn:
                yield conn

    @contextlib.contextmanager
    def _reading(self):
        """A read-only connection of the pool, inside one read transaction (one consistent snapshot).

        It never waits for the lock of the writing connection: a read on the app's thread
        goes on while a scan writes.
        """
        conn = self._take_reader()
        healthy = False
        try:
            try:
                conn.execute("BEGIN")
                yield conn
                conn.execute("COMMIT")
                healthy = True
            except sqlite3.Error as err:
                raise library_error(err, self.path, doing="read") from None
        finally:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    healthy = False
            self._give_back(conn, healthy)

    def _take_reader(self) -> sqlite3.Connection:
        with self._readers:
            self._check_open()
            self._busy_readers += 1
            if self._idle_readers:
                return self._idle_readers.pop()
        try:
            return self._open_reader()
        except BaseException:
            self._give_back(None, False)
            raise

    def _open_reader(self) -> sqlite3.Connection:
        """A new read-only connection to the very file the library opened.

        Read-only: it can neither write nor checkpoint. If another program has put a different
        file in the library's place meanwhile, reads from it would not match the writes, so
        that is an error.
        """
        if _identity(self.path) != self._file_identity:
            raise LibraryError(
                f"The library {self.path} was moved or replaced by another program while musicrec had it "
                "open; close musicrec and start it again."
            )
        try:
            return sqlite3.connect(_uri(self.path, "ro"), uri=True, check_same_thread=False,
                                   isolation_level=None, timeout=self.busy_timeout)
        except sqlite3.Error as err:
            raise library_error(err, self.path, doing="read") from None

    def _give_back(self, conn: sqlite3.Connection | None, healthy: bool) -> None:
        with self._readers:
            self._busy_readers -= 1
            if conn is not None and healthy and not self._closed and len(self._idle_readers) < MAX_IDLE_READERS:
                self._idle_readers.append(conn)
                conn = None
            self._readers.notify_all()
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # -- file list -----------------------------------------------------------
    def plan_scan(
        self,
        found: Sequence[FileIdentity],
        *,
        encoder_key: str,
        analysis_key: str,
        root: str | None = None,
        keep_under: Sequence[str] = (),
        prune: bool = False,
        retry_failed: bool = False,
        dimension: int | None = None,
    ) -> ScanPlan:
        """Reconcile the files just found with the cache.

        New files are added as ``pending``; files whose size or mtime changed go back to
        ``pending`` and lose their vectors and failures. Known files under ``root`` that were
        not found are forgotten only when their folder is otherwise present (it still holds
        songs found by this scan) or when ``prune`` is set; otherwise — a folder that is gone
        or empty, such as an unmounted drive — they are kept and marked missing. Nothing below
        ``keep_under`` (folders that could not be read) is touched.

        Parameters
        ----------
        found : sequence of FileIdentity
            Paths as given by :func:`iter_identities` (real paths).
        encoder_key, analysis_key : str
            The vector and failure cache key of this scan.
        root : str or None
            The scanned folder; None: nothing is forgotten or marked missing.
        keep_under : sequence of str
        prune : bool
            Forget every known song under ``root`` that was not found.
        retry_failed : bool
            Analyse again the found songs that failed under this key.
        dimension : int or None
            The encoder's vector size: a stored vector of another length (a damaged library)
            does not count as analysed, so the scan writes it again.

        Returns
        -------
        ScanPlan
        """
        with self._writing() as conn:
            known = {
                bytes(row[0]): (row[1], row[2], row[3], row[4])
                for row in conn.execute("SELECT path, size, mtime_ns, id, missing FROM tracks")
            }
            seen: set[bytes] = set()
            now = time.time()
            for item in found:
                key = _key(item.path)
                if key in seen:
                    continue
                seen.add(key)
                old = known.get(key)
                if old is None:
                    conn.execute(
                        "INSERT INTO tracks (path, size, mtime_ns, title, updated_at) VALUES (?, ?, ?, ?, ?)",
                        (key, item.size, item.mtime_ns, _stem(item.path), now),
                    )
                elif (old[0], old[1]) != (item.size, item.mtime_ns):
                    conn.execute("DELETE FROM vectors WHERE track_id = ?", (old[2],))
                    conn.execute("DELETE FROM failures WHERE track_id = ?", (old[2],))
                    conn.execute(
                        "UPDATE tracks SET size = ?, mtime_ns = ?, status = 'pending', error = '', error_kind = '', missing = 0, "
                        "updated_at = ? WHERE id = ?",
                        (item.size, item.mtime_ns, now, old[2]),
                    )
                elif old[3]:
                    conn.execute("UPDATE tracks SET missing = 0 WHERE id = ?", (old[2],))
            pruned = missing = 0
            if root is not None:
                prefix = _under_prefix(root)
                kept = tuple(_under_prefix(k) for k in keep_under)
                present_dirs = {os.path.dirname(key) for key in seen}
                gone, absent = [], []
                for key, old in known.items():
                    if not key.startswith(prefix) or key in seen or (kept and key.startswith(kept)):
                        continue
                    if prune or os.path.dirname(key) in present_dirs:
                        gone.append((old[2],))
                    else:
                        absent.append((old[2],))
                conn.executemany("DELETE FROM tracks WHERE id = ?", gone)
                conn.executemany("UPDATE tracks SET missing = 1 WHERE id = ?", absent)
                pruned, missing = len(gone), len(absent)
            if retry_failed and seen:
                conn.executemany(
                    "DELETE FROM failures WHERE encoder_key = ? AND analysis_key = ? "
                    "AND track_id = (SELECT id FROM tracks WHERE path = ?)",
                    [(encoder_key, analysis_key, key) for key in seen],
                )
            # One pass over the tracks: analysed ones are counted, failed ones (unless their failure
            # is worth another try) are skipped, the rest are to do.
            rows = conn.execute(
                f"SELECT {_TRACK_COLUMNS}, "
                "EXISTS (SELECT 1 FROM vectors v WHERE v.track_id = t.id AND v.encoder_key = ? AND v.analysis_key = ? "
                "AND (? IS NULL OR length(v.vector) = ?)), "
                "(SELECT kind FROM failures f WHERE f.track_id = t.id AND f.encoder_key = ? AND f.analysis_key = ?) "
                "FROM tracks t",
                (encoder_key, analysis_key, dimension, 4 * dimension if dimension else None, encoder_key, analysis_key),
            ).fetchall()
        todo: list[Track] = []
        done = failed = 0
        for row in rows:
            if bytes(row[1]) not in seen:
                continue
            if row[-2]:
                done += 1
            elif row[-1] is not None and row[-1] not in RETRIED_KINDS:
                failed += 1
            else:
                todo.append(_track(row))
        return ScanPlan(todo=todo, cached=done, pruned=pruned, missing=missing, failed=failed)

    def update_identity(self, item: FileIdentity) -> Track | None:
        """Store a known file's identity as found now, as :meth:`plan_scan` does for one file.

        A file whose size or mtime changed goes back to ``pending`` and loses its vectors and
        failures. Returns the track as stored now, or None if the library does not know the path.
        """
        key = _key(item.path)
        with self._writing() as conn:
            row = conn.execute("SELECT id, size, mtime_ns FROM tracks WHERE path = ?", (key,)).fetchone()
            if row is None:
                return None
            if (row[1], row[2]) != (item.size, item.mtime_ns):
                conn.execute("DELETE FROM vectors WHERE track_id = ?", (row[0],))
                conn.execute("DELETE FROM failures WHERE track_id = ?", (row[0],))
                conn.execute(
                    "UPDATE tracks SET size = ?, mtime_ns = ?, status = 'pending', error = '', error_kind = '', "
                    "missing = 0, updated_at = ? WHERE id = ?", (item.size, item.mtime_ns, time.time(), row[0]))
            stored = conn.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks t WHERE t.id = ?", (row[0],)).fetchone()
        return _track(stored)

    def record_result(
        self,
        track_id: int,
        *,
        encoder_key: str,
        analysis_key: str,
        vector: np.ndarray,
        slice_vectors: np.ndarray,
        offset_seconds: float,
        title: str,
        artist: str,
        album: str,
        duration: float,
        tag_probabilities: np.ndarray | None = None,
    ) -> None:
        """Store a finished track: file tags, status, vectors and tag probabilities in one transaction.

        Parameters
        ----------
        vector : np.ndarray [shape=(d,)]
        slice_vectors : np.ndarray [shape=(n_slices, d)]
        tag_probabilities : np.ndarray [shape=(n_tags,)] or None
            The mean over the song's patches of an encoder's tag head, if it has one.
        """
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        slice_vectors = np.ascontiguousarray(slice_vectors, dtype=np.float32)
        tag_blob = None if tag_probabilities is None else np.ascontiguousarray(tag_probabilities, np.float32).tobytes()
        with self._writing() as conn:
            conn.execute(
                "UPDATE tracks SET title = ?, artist = ?, album = ?, duration = ?, status = 'done', error = '', error_kind = '', "
                "missing = 0, updated_at = ? WHERE id = ?",
                (title, artist, album, duration, time.time(), track_id),
            )
            conn.execute(
                "INSERT OR REPLACE INTO vectors (track_id, encoder_key, analysis_key, vector, slice_vectors, "
                "n_slices, offset_seconds, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (track_id, encoder_key, analysis_key, vector.tobytes(), slice_vectors.tobytes(),
                 len(slice_vectors), offset_seconds, tag_blob),
            )
            conn.execute(
                "DELETE FROM failures WHERE track_id = ? AND encoder_key = ? AND analysis_key = ?",
                (track_id, encoder_key, analysis_key),
            )

    def record_failure(
        self,
        track_id: int,
        reason: str,
        *,
        encoder_key: str,
        analysis_key: str,
        kind: FailureKind | str = FailureKind.UNREADABLE,
        title: str | None = None,
        forget_vector: bool = False,
    ) -> None:
        """Store why a track could not be analysed under one encoder and analysis.

        Parameters
        ----------
        track_id : int
        reason : str
            What happened, for the user.
        encoder_key, analysis_key : str
        kind : FailureKind or str
            Why (a name :meth:`FailureKind.parse` knows; anything else is stored as ``other``).
            A kind in :data:`RETRIED_KINDS` (timed out, vanished, changed) is tried again by the
            next scan; other kinds wait until the file changes or the user asks to retry.
        title : str or None
        forget_vector : bool
            Also delete the track's vector under this key: a song analysed again on request whose
            file now fails no longer has a valid analysis (a scan never fails an analysed file).
        """
        kind = FailureKind.parse(kind).value
        with self._writing() as conn:
            if forget_vector:
                conn.execute("DELETE FROM vectors WHERE track_id = ? AND encoder_key = ? AND analysis_key = ?",
                             (track_id, encoder_key, analysis_key))
            conn.execute(
                "UPDATE tracks SET status = 'failed', error = ?, error_kind = ?, title = COALESCE(?, title), "
                "updated_at = ? WHERE id = ?",
                (reason, kind, title, time.time(), track_id),
            )
            conn.execute(
                "INSERT OR REPLACE INTO failures (track_id, encoder_key, analysis_key, kind, reason, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (track_id, encoder_key, analysis_key, kind, reason, time.time()),
            )

    # -- reading -------------------------------------------------------------
    def tracks(
        self,
        *,
        status: str | None = None,
        encoder_key: str | None = None,
        analysis_key: str | None = None,
        under: str | os.PathLike | None = None,
    ) -> list[Track]:
        """Tracks in the library, in the order they were added (see :meth:`iter_tracks` for the parameters)."""
        query, args = self._tracks_query(status, encoder_key, analysis_key, under)
        with self._reading() as conn:
            return [_track(row) for row in conn.execute(query, args)]

    def iter_tracks(
        self,
        *,
        chunk: int = 20_000,
        status: str | None = None,
        encoder_key: str | None = None,
        analysis_key: str | None = None,
        under: str | os.PathLike | None = None,
    ) -> Iterator[list[Track]]:
        """:meth:`tracks` in lists of at most ``chunk``, read from one snapshot as they are asked for.

        The first list comes at once, so a million songs can be shown while the rest are read;
        ``close()`` the iterator to stop early (the read ends then).
        """
        query, args = self._tracks_query(status, encoder_key, analysis_key, under)
        with self._reading() as conn:
            cursor = conn.execute(query, args)
            while rows := cursor.fetchmany(chunk):
                yield [_track(row) for row in rows]

    def _tracks_query(self, status, encoder_key, analysis_key, under) -> tuple[str, list]:
        """The query of :meth:`tracks`.

        Parameters
        ----------
        status : {"done", "failed", "pending"} or None
            Keep only tracks with this status.
        encoder_key, analysis_key : str or None
            Given both, a track's status and error are those under this key: ``done`` with a
            vector, ``failed`` with a failure, ``pending`` otherwise. Without them, the status of
            the track's last analysis, whatever its key.
        under : str, PathLike or None
            Keep only tracks below this folder (symbolic links resolved).
        """
        args: list = []
        if encoder_key is not None and analysis_key is not None:
            status_sql = (
                # IN (list), not EXISTS per row: the list comes from the covering index vectors_by_key
                # in one pass; EXISTS probed the vectors table's large rows (10 s for a million songs).
                "CASE WHEN t.id IN (SELECT v.track_id FROM vectors v WHERE v.encoder_key = ?1 "
                "AND v.analysis_key = ?2) THEN 'done' WHEN f.reason IS NOT NULL THEN 'failed' ELSE 'pending' END"
            )
            query = (
                f"SELECT * FROM (SELECT t.id, t.path, t.size, t.mtime_ns, t.title, t.artist, t.album, t.duration, "
                f"{status_sql} AS status, COALESCE(f.reason, '') AS error, t.missing, COALESCE(f.kind, '') AS error_kind "
                "FROM tracks t "
                "LEFT JOIN failures f ON f.track_id = t.id AND f.encoder_key = ?1 AND f.analysis_key = ?2) t"
            )
            args = [encoder_key, analysis_key]
        else:
            query = f"SELECT {_TRACK_COLUMNS} FROM tracks t"
        where = []
        if status is not None:
            where.append(f"t.status = ?{len(args) + 1}")
            args.append(status)
        if under is not None:
            prefix = _under_prefix(under)
            where.append(f"substr(t.path, 1, {len(prefix)}) = ?{len(args) + 1}")
            args.append(prefix)
        if where:
            query += " WHERE " + " AND ".join(where)
        return query + " ORDER BY t.id", args

    def track_by_path(self, path: str) -> Track | None:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {_TRACK_COLUMNS} FROM tracks t WHERE t.path = ?", (_key(real_path(path)),)
            ).fetchone()
        return _track(row) if row else None

    def vectors(
        self, *, encoder_key: str, analysis_key: str, dimension: int | None = None,
        under: str | os.PathLike | None = None, spare_rows: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """All song vectors for one encoder and analysis (of the songs below one folder).

        Parameters
        ----------
        encoder_key, analysis_key : str
        dimension : int or None
            The encoder's vector size; None: whatever size the vectors share.
        under : str, PathLike or None
            Keep only songs below this folder (links resolved), as :meth:`tracks` does.
        spare_rows : int
            Allocate this many rows of room after the last one (``vectors.base``): songs added
            later fit without moving the matrix (untouched rows cost no memory).

        Returns
        -------
        track_ids : np.ndarray [shape=(n,)], int64
        vectors : np.ndarray [shape=(n, d)], float32

        Raises
        ------
        ValueError
            If a stored vector has another length (a damaged or hand-edited library): each row is
            checked, so lengths that only add up are caught too. A scan analyses such songs again.
        """
        source, args = _vector_rows(encoder_key, analysis_key, under)
        with self._reading() as conn:
            n = conn.execute(f"SELECT count(*) {source}", args).fetchone()[0]
            cursor = conn.execute(f"SELECT v.track_id, v.vector {source} ORDER BY v.track_id", args)
            # Rows go straight into one preallocated matrix, a chunk at a time: a million vectors
            # read as one list of blobs, joined, then copied would need three times their size.
            ids = np.zeros(n, dtype=np.int64)
            vectors: np.ndarray | None = None
            size = 4 * dimension if dimension is not None else None
            filled, bad = 0, 0
            while rows := cursor.fetchmany(VECTOR_READ_CHUNK):
                if filled + len(rows) > n:  # a scan added songs between the count and the read
                    rows = rows[: n - filled]
                    if not rows:
                        break
                if size is None:
                    size = len(rows[0][1])
                if size == 0:
                    raise ValueError(f"{n} vectors that hold 0 numbers")
                bad += sum(len(r[1]) != size for r in rows)
                if bad:
                    continue  # counted to the end for the message
                if vectors is None:
                    vectors = np.empty((n + spare_rows, size // 4), dtype=np.float32)
                ids[filled:filled + len(rows)] = [r[0] for r in rows]
                vectors[filled:filled + len(rows)] = np.frombuffer(b"".join(r[1] for r in rows),
                                                                   dtype=np.float32).reshape(len(rows), -1)
                filled += len(rows)
        if bad:
            raise ValueError(f"{bad} of {n} vectors that are not {size // 4} float32 numbers long")
        if vectors is None:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return ids[:filled], vectors[:filled]

    def vector_count(self, *, encoder_key: str, analysis_key: str, under: str | os.PathLike | None = None) -> int:
        """How many songs (below ``under``) have a vector of this encoder and analysis."""
        source, args = _vector_rows(encoder_key, analysis_key, under)
        with self._reading() as conn:
            return int(conn.execute(f"SELECT count(*) {source}", args).fetchone()[0])

    def iter_vectors(self, *, encoder_key: str, analysis_key: str, under: str | os.PathLike | None = None,
                     chunk: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:meth:`vectors` a chunk at a time (``(track_ids [shape=(m,)], vectors [shape=(m, d)])``,
        ascending ids), from one snapshot: what needs each vector once need not hold them all.

        Raises
        ------
        ValueError
            If a stored vector's length differs from the first one's (a damaged or hand-edited library).
        """
        source, args = _vector_rows(encoder_key, analysis_key, under)
        size = None
        with self._reading() as conn:
            cursor = conn.execute(f"SELECT v.track_id, v.vector {source} ORDER BY v.track_id", args)
            while rows := cursor.fetchmany(chunk or VECTOR_READ_CHUNK):
                size = size or len(rows[0][1])
                bad = sum(len(r[1]) != size or size % 4 for r in rows)
                if bad or not size:
                    raise ValueError(f"{bad or len(rows)} vectors that are not {size // 4} float32 numbers long")
                yield (np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                       np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1))

    def slice_vectors(self, track_id: int, *, encoder_key: str, analysis_key: str) -> tuple[np.ndarray, float] | None:
        """Per-slice embeddings of one track and the offset (s) of its first slice.

        Returns
        -------
        (np.ndarray [shape=(n_slices, d)], float) or None
        """
        with self._reading() as conn:
            row = conn.execute(
                "SELECT slice_vectors, n_slices, offset_seconds FROM vectors "
                "WHERE track_id = ? AND encoder_key = ? AND analysis_key = ?",
                (track_id, encoder_key, analysis_key),
            ).fetchone()
        if row is None:
            return None
        blob, n_slices = row[0], row[1]
        if n_slices < 1 or len(blob) % (4 * n_slices):
            return None
        return np.frombuffer(blob, dtype=np.float32).reshape(n_slices, -1), row[2]

    def slice_vectors_of(self, track_ids: Sequence[int], *, encoder_key: str,
                         analysis_key: str) -> dict[int, tuple[np.ndarray, float]]:
        """:meth:`slice_vectors` of many songs in one read (damaged rows and songs without vectors left out).

        Returns
        -------
        dict of int to (np.ndarray [shape=(n_slices, d)], float)
        """
        found: dict[int, tuple[np.ndarray, float]] = {}
        ids = [int(i) for i in track_ids]
        with self._reading() as conn:
            for first in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[first:first + 500]
                rows = conn.execute(
                    "SELECT track_id, slice_vectors, n_slices, offset_seconds FROM vectors "
                    f"WHERE encoder_key = ? AND analysis_key = ? AND track_id IN ({','.join('?' * len(chunk))})",
                    (encoder_key, analysis_key, *chunk),
                ).fetchall()
                for track_id, blob, n_slices, offset in rows:
                    if n_slices >= 1 and blob and not len(blob) % (4 * n_slices):
                        found[track_id] = (np.frombuffer(blob, dtype=np.float32).reshape(n_slices, -1), offset)
        return found

    def tag_probabilities(self, track_id: int, *, encoder_key: str, analysis_key: str) -> np.ndarray | None:
        """A song's tag probabilities under one encoder and analysis (None if it has none).

        Returns
        -------
        np.ndarray [shape=(n_tags,)], float32 or None
        """
        with self._reading() as conn:
            row = conn.execute(
                "SELECT tags FROM vectors WHERE track_id = ? AND encoder_key = ? AND analysis_key = ?",
                (track_id, encoder_key, analysis_key),
            ).fetchone()
        if row is None or row[0] is None or len(row[0]) % 4:
            return None
        return np.frombuffer(row[0], dtype=np.float32).copy()

    def tag_table(
        self, *, encoder_key: str, analysis_key: str, under: str | os.PathLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every song's tag probabilities under one encoder and analysis, in one read.

        Songs without tags (an encoder with no tag head, a damaged row) are left out.

        Returns
        -------
        track_ids : np.ndarray [shape=(n,)], int64
        probabilities : np.ndarray [shape=(n, n_tags)], float32
            ``(0, 0)`` when no song has tags.
        """
        parts = list(self.iter_tags(encoder_key=encoder_key, analysis_key=analysis_key, under=under))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.concatenate([ids for ids, _ in parts]), np.concatenate([rows for _, rows in parts])

    def iter_tags(self, *, encoder_key: str, analysis_key: str, under: str | os.PathLike | None = None,
                  chunk: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:meth:`tag_table` a chunk at a time (``(track_ids [shape=(m,)], probabilities [shape=(m, n_tags)])``,
        ascending ids): a million songs' tags need not be held at once (0.2 GB, 0.7 GB as blobs)."""
        source, args = _vector_rows(encoder_key, analysis_key, under)
        source += " AND v.tags IS NOT NULL"
        with self._reading() as conn:
            # The common length first: a damaged row of another length is left out.
            size = conn.execute(f"SELECT max(length(v.tags)) {source}", args).fetchone()[0]
            if not size or size % 4:
                return
            cursor = conn.execute(f"SELECT v.track_id, v.tags {source} AND length(v.tags) = {int(size)} "
                                  "ORDER BY v.track_id", args)
            while rows := cursor.fetchmany(chunk or VECTOR_READ_CHUNK):
                yield (np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                       np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1))

    def stats(self) -> dict[str, int]:
        with self._reading() as conn:
            counts = dict(conn.execute("SELECT status, count(*) FROM tracks GROUP BY status").fetchall())
            missing = conn.execute("SELECT count(*) FROM tracks WHERE missing").fetchone()[0]
            keys = conn.execute(
                "SELECT encoder_key, analysis_key, count(*) FROM vectors GROUP BY encoder_key, analysis_key"
            ).fetchall()
        return {
            "tracks": sum(counts.values()),
            "done": counts.get("done", 0),
            "failed": counts.get("failed", 0),
            "pending": counts.get("pending", 0),
            "missing": missing,
            "vector_sets": {f"{e} / {a}": n for e, a, n in keys},
        }

    def vector_usage(self) -> list[VectorSetUsage]:
        """How many songs and bytes each encoder and analysis holds, and how many failed under it.

        Returns
        -------
        list of VectorSetUsage
            Sorted by encoder key, then analysis key. Keys with only failures are listed too.
        """
        with self._reading() as conn:
            sizes = conn.execute(
                "SELECT encoder_key, analysis_key, count(*), "
                "sum(length(vector) + length(slice_vectors) + COALESCE(length(tags), 0)) "
                "FROM vectors GROUP BY encoder_key, analysis_key"
            ).fetchall()
            failures = conn.execute(
                "SELECT encoder_key, analysis_key, count(*) FROM failures GROUP BY encoder_key, analysis_key"
            ).fetchall()
        usage = {(e, a): [n, b or 0, 0] for e, a, n, b in sizes}
        for e, a, n in failures:
            usage.setdefault((e, a), [0, 0, 0])[2] = n
        return [VectorSetUsage(e, a, n, b, f) for (e, a), (n, b, f) in sorted(usage.items())]

    def prune_vectors(self, *, keep_encoder_key: str, dry_run: bool = False) -> PruneResult:
        """Delete the vectors and failures of every encoder but one; the file list stays.

        Songs keep their ids, paths and tags. A song whose status came from a deleted analysis
        takes the status of what is left (``done`` if it still has a vector, ``failed`` if it
        still has a failure, else ``pending``). The file does not shrink by itself: SQLite reuses
        the freed pages for the next vectors; :meth:`compact` gives them back to the disk.

        Parameters
        ----------
        keep_encoder_key : str
            The encoder in use (``EncoderConfig.key``); its vectors under every analysis stay.
        dry_run : bool
            Count what would be deleted, delete nothing.

        Returns
        -------
        PruneResult
        """
        if not keep_encoder_key:
            raise ValueError("keep_encoder_key must name the encoder in use")
        counted = (
            "SELECT (SELECT count(*) FROM vectors WHERE encoder_key != ?1), "
            "(SELECT COALESCE(sum(length(vector) + length(slice_vectors) + COALESCE(length(tags), 0)), 0) "
            "FROM vectors WHERE encoder_key != ?1), "
            "(SELECT count(*) FROM failures WHERE encoder_key != ?1)"
        )
        keys_sql = ("SELECT encoder_key FROM vectors WHERE encoder_key != ?1 UNION "
                    "SELECT encoder_key FROM failures WHERE encoder_key != ?1 ORDER BY 1")
        if dry_run:
            with self._reading() as conn:
                n_vectors, n_bytes, n_failures = conn.execute(counted, (keep_encoder_key,)).fetchone()
                keys = tuple(row[0] for row in conn.execute(keys_sql, (keep_encoder_key,)))
            return PruneResult(n_vectors, n_bytes, n_failures, keys)
        with self._writing() as conn:
            n_vectors, n_bytes, n_failures = conn.execute(counted, (keep_encoder_key,)).fetchone()
            keys = tuple(row[0] for row in conn.execute(keys_sql, (keep_encoder_key,)))
            conn.execute("DELETE FROM vectors WHERE encoder_key != ?", (keep_encoder_key,))
            conn.execute("DELETE FROM failures WHERE encoder_key != ?", (keep_encoder_key,))
            has_vector = "EXISTS (SELECT 1 FROM vectors v WHERE v.track_id = tracks.id)"
            has_failure = "EXISTS (SELECT 1 FROM failures f WHERE f.track_id = tracks.id)"
            latest = "(SELECT f.{} FROM failures f WHERE f.track_id = tracks.id ORDER BY f.updated_at DESC LIMIT 1)"
            conn.execute(
                f"UPDATE tracks SET "
                f"status = CASE WHEN {has_vector} THEN 'done' WHEN {has_failure} THEN 'failed' ELSE 'pending' END, "
                f"error = CASE WHEN {has_vector} THEN '' ELSE COALESCE({latest.format('reason')}, '') END, "
                f"error_kind = CASE WHEN {has_vector} THEN '' ELSE COALESCE({latest.format('kind')}, '') END "
                f"WHERE (status = 'done' AND NOT {has_vector}) OR (status = 'failed' AND NOT {has_failure})"
            )
        return PruneResult(n_vectors, n_bytes, n_failures, keys)

    def compact(self) -> None:
        """Give the space of deleted vectors back to the disk (SQLite's ``VACUUM``).

        Rewrites the whole file: it takes a while on a large library and needs about as much
        free disk space as the library takes. A full disk leaves the library as it was.
        """
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("VACUUM")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                raise library_error(err, self.path, doing="compact") from None

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._writing() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


_TRACK_COLUMNS = ("t.id, t.path, t.size, t.mtime_ns, t.title, t.artist, t.album, t.duration, t.status, t.error, "
                  "t.missing, t.error_kind")


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _vector_rows(encoder_key: str, analysis_key: str, under: str | os.PathLike | None) -> tuple[str, list]:
    """``FROM … WHERE …`` of the vectors rows of one encoder and analysis (of the songs below ``under``), and its arguments."""
    args: list = [encoder_key, analysis_key]
    source = "FROM vectors v WHERE v.encoder_key = ? AND v.analysis_key = ?"
    if under is not None:
        prefix = _under_prefix(under)
        source = ("FROM vectors v JOIN tracks t ON t.id = v.track_id WHERE v.encoder_key = ? AND v.analysis_key = ? "
                  f"AND substr(t.path, 1, {len(prefix)}) = ?")
        args.append(prefix)
    return source, args


def _track(row: Sequence) -> Track:
    failed = row[8] == "failed"
    return Track(  # the path decoded as os.fsdecode does, without its per-call checks (a million rows)
        id=row[0], path=bytes(row[1]).decode(_FS_ENCODING, _FS_ERRORS), size=row[2], mtime_ns=row[3], title=row[4],
        artist=row[5], album=row[6], duration=row[7], status=row[8], error=row[9], missing=bool(row[10]),
        error_kind=FailureKind.parse(row[11] or "other") if failed else None,
    )


def _statements(script: str) -> list[str]:
    """The statements of a schema script, for running one by one inside an open transaction."""
    return [part.strip() for part in script.split(";") if part.strip()]


def _stem(path: str) -> str:
    name = os.path.splitext(os.path.basename(path))[0]
    return display_text(name)


def iter_identities(paths: Iterable[str]) -> Iterator[FileIdentity | tuple[str, str]]:
    """Stat each path: a :class:`FileIdentity`, or ``(path, reason)`` if it cannot be read (a sentence for the user)."""
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as err:
            yield (path, os_error_reason(err, path))
            continue
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device named like a song would block or never end.
            yield (path, not_a_file_reason(st.st_mode))
            continue
        yield FileIdentity(real_path(path), st.st_size, st.st_mtime_ns)
