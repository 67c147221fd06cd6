"""The library cache: one SQLite file holding what is known about a user's songs.

What is stored, and why:

- ``tracks`` — one row per file, keyed by its path (as raw file-system bytes, so
  names that are not valid UTF-8 survive), with the file identity (size,
  mtime_ns) at analysis time, its tags, and its status (``pending``, ``done``,
  ``failed`` + the reason). A file whose size or mtime changed is re-analysed.
- ``vectors`` — song vectors and per-slice embeddings keyed by track, encoder key
  and analysis key. A new encoder adds vectors; it does not touch the file list.
- ``meta`` — free key/values; the schema version is SQLite's ``user_version``.

The database runs in WAL mode; every track's result is written in one
transaction, so a crash leaves either the whole result or none of it. Only one
thread writes (the scan's); reads may come from any thread. Music files are
only ever read.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from musicrec_gui.core.names import display_text

SCHEMA_VERSION = 1
APP_ID = 0x6D726563  # "mrec": tells our database from any other SQLite file

_SCHEMA = """
CREATE TABLE tracks (
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
    updated_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE vectors (
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    encoder_key TEXT NOT NULL,
    analysis_key TEXT NOT NULL,
    vector BLOB NOT NULL,
    slice_vectors BLOB NOT NULL,
    n_slices INTEGER NOT NULL,
    offset_seconds REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, encoder_key, analysis_key)
) WITHOUT ROWID;
CREATE INDEX vectors_by_key ON vectors (encoder_key, analysis_key);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Each entry upgrades a database from version i+1 to i+2; append, never edit.
_MIGRATIONS: list[str] = []


class LibraryError(Exception):
    """The library file cannot be used. The message says what to do."""


@dataclass(frozen=True)
class Track:
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

    @property
    def display_path(self) -> str:
        return display_text(self.path)


@dataclass(frozen=True)
class FileIdentity:
    path: str
    size: int
    mtime_ns: int


def default_library_path() -> Path:
    """``$MUSICREC_LIBRARY`` if set, else ``library.sqlite3`` in the user's data directory."""
    override = os.environ.get("MUSICREC_LIBRARY")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("musicrec", appauthor=False)) / "library.sqlite3"


def _key(path: str) -> bytes:
    return os.fsencode(path)


class Library:
    """A library cache file.

    Parameters
    ----------
    path : str, PathLike or None
        The SQLite file; ``None`` → :func:`default_library_path`.
    recover : bool
        If the file is not a musicrec library or is corrupt, move it aside
        (``NAME.broken-TIMESTAMP``) and start a new one; ``recovered_from`` then
        says where it went. With ``recover=False`` a :class:`LibraryError` is raised.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, recover: bool = True):
        self.path = Path(path) if path is not None else default_library_path()
        self.recovered_from: Path | None = None
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LibraryError(f"Cannot create the library folder {self.path.parent}: {err.strerror or err}.") from None
        try:
            self._conn = self._open()
        except LibraryError:
            if not recover or not self.path.exists():
                raise
            aside = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                source = Path(str(self.path) + suffix)
                if source.exists():
                    source.replace(Path(str(aside) + suffix))
            self.recovered_from = aside
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        except sqlite3.Error as err:
            raise LibraryError(f"Cannot open the library {self.path}: {err}.") from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            n_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if n_tables and application_id != APP_ID:
                raise LibraryError(f"{self.path} is an SQLite file but not a musicrec library.")
            if version > SCHEMA_VERSION:
                raise LibraryError(
                    f"The library {self.path} was written by a newer musicrec (schema {version}, this one "
                    f"knows {SCHEMA_VERSION}); upgrade musicrec or choose another library file."
                )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if not n_tables:
                # executescript() commits first, so the transaction lives inside the script.
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA application_id = {APP_ID};\n"
                    f"PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
                )
            else:
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{_MIGRATIONS[target - 2]}\nPRAGMA user_version = {target};\nCOMMIT;"
                    )
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise LibraryError(f"The library {self.path} is damaged ({check}).")
        except sqlite3.DatabaseError as err:
            conn.close()
            raise LibraryError(f"The library {self.path} is damaged or not a database ({err}).") from None
        except LibraryError:
            conn.close()
            raise
        return conn

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self):
        conn = self._conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")
                return conn

            def __exit__(self_inner, exc_type, exc, tb):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    # -- file list -----------------------------------------------------------
    def plan_scan(
        self,
        found: Sequence[FileIdentity],
        *,
        encoder_key: str,
        analysis_key: str,
        root: str | None = None,
        keep_under: Sequence[str] = (),
    ) -> tuple[list[Track], int, int]:
        """Reconcile the files just found with the cache.

        New files are added as ``pending``; files whose size or mtime changed go back to
        ``pending`` and lose their vectors; files under ``root`` that were not found are
        removed, except below ``keep_under`` (folders that could not be read this time: an
        unplugged drive must not erase its cache). Returns the found tracks that need
        analysis (no vector for this encoder/analysis and not a failure of the same file),
        the number of found tracks already analysed, and the number pruned.
        """
        with self._lock, self._transaction() as conn:
            known = {
                bytes(row[0]): (row[1], row[2], row[3])
                for row in conn.execute("SELECT path, size, mtime_ns, id FROM tracks")
            }
            seen: set[bytes] = set()
            for item in found:
                key = _key(item.path)
                seen.add(key)
                old = known.get(key)
                if old is None:
                    conn.execute(
                        "INSERT INTO tracks (path, size, mtime_ns, title, updated_at) VALUES (?, ?, ?, ?, ?)",
                        (key, item.size, item.mtime_ns, _stem(item.path), time.time()),
                    )
                elif (old[0], old[1]) != (item.size, item.mtime_ns):
                    conn.execute("DELETE FROM vectors WHERE track_id = ?", (old[2],))
                    conn.execute(
                        "UPDATE tracks SET size = ?, mtime_ns = ?, status = 'pending', error = '', updated_at = ? "
                        "WHERE id = ?",
                        (item.size, item.mtime_ns, time.time(), old[2]),
                    )
            pruned = 0
            if root is not None:
                prefix = _key(os.path.join(os.path.abspath(root), ""))
                kept = tuple(_key(os.path.join(os.path.abspath(k), "")) for k in keep_under)
                gone = [(old[2],) for key, old in known.items()
                        if key.startswith(prefix) and key not in seen and not key.startswith(kept)]
                conn.executemany("DELETE FROM tracks WHERE id = ?", gone)
                pruned = len(gone)
            # One pass over the tracks: analysed ones are counted, the rest (unless failed) are to do.
            rows = conn.execute(
                f"SELECT {_TRACK_COLUMNS}, EXISTS (SELECT 1 FROM vectors v WHERE v.track_id = t.id "
                "AND v.encoder_key = ? AND v.analysis_key = ?) FROM tracks t",
                (encoder_key, analysis_key),
            ).fetchall()
        todo: list[Track] = []
        done = 0
        for row in rows:
            if bytes(row[1]) not in seen:
                continue
            if row[-1]:
                done += 1
            elif row[8] != "failed":
                todo.append(_track(row))
        return todo, done, pruned

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
    ) -> None:
        """Store a finished track: tags, status and vectors in one transaction."""
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        slice_vectors = np.ascontiguousarray(slice_vectors, dtype=np.float32)
        with self._lock, self._transaction() as conn:
            conn.execute(
                "UPDATE tracks SET title = ?, artist = ?, album = ?, duration = ?, status = 'done', error = '', "
                "updated_at = ? WHERE id = ?",
                (title, artist, album, duration, time.time(), track_id),
            )
            conn.execute(
                "INSERT OR REPLACE INTO vectors (track_id, encoder_key, analysis_key, vector, slice_vectors, "
                "n_slices, offset_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (track_id, encoder_key, analysis_key, vector.tobytes(), slice_vectors.tobytes(),
                 len(slice_vectors), offset_seconds),
            )

    def record_failure(self, track_id: int, reason: str, *, title: str | None = None) -> None:
        with self._lock, self._transaction() as conn:
            conn.execute(
                "UPDATE tracks SET status = 'failed', error = ?, title = COALESCE(?, title), updated_at = ? "
                "WHERE id = ?",
                (reason, title, time.time(), track_id),
            )

    def remove(self, track_ids: Iterable[int]) -> None:
        with self._lock, self._transaction() as conn:
            conn.executemany("DELETE FROM tracks WHERE id = ?", [(i,) for i in track_ids])

    # -- reading -------------------------------------------------------------
    def tracks(self, *, status: str | None = None) -> list[Track]:
        query = f"SELECT {_TRACK_COLUMNS} FROM tracks t"
        args: tuple = ()
        if status is not None:
            query += " WHERE t.status = ?"
            args = (status,)
        with self._lock:
            return [_track(row) for row in self._conn.execute(query + " ORDER BY t.id", args)]

    def track(self, track_id: int) -> Track | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks t WHERE t.id = ?", (track_id,)).fetchone()
        return _track(row) if row else None

    def track_by_path(self, path: str) -> Track | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_TRACK_COLUMNS} FROM tracks t WHERE t.path = ?", (_key(os.path.abspath(path)),)
            ).fetchone()
        return _track(row) if row else None

    def vectors(self, *, encoder_key: str, analysis_key: str) -> tuple[np.ndarray, np.ndarray]:
        """All song vectors for one encoder and analysis.

        Returns
        -------
        track_ids : np.ndarray [shape=(n,)], int64
        vectors : np.ndarray [shape=(n, d)], float32
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT track_id, vector FROM vectors WHERE encoder_key = ? AND analysis_key = ? ORDER BY track_id",
                (encoder_key, analysis_key),
            ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.zeros((0, 0), dtype=np.float32)
        # One join and one reshape instead of 100 000 small arrays.
        flat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        return ids, flat.reshape(len(rows), -1).copy()

    def slice_vectors(self, track_id: int, *, encoder_key: str, analysis_key: str) -> tuple[np.ndarray, float] | None:
        """Per-slice embeddings of one track and the offset (s) of its first slice.

        Returns
        -------
        (np.ndarray [shape=(n_slices, d)], float) or None
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT slice_vectors, n_slices, offset_seconds FROM vectors "
                "WHERE track_id = ? AND encoder_key = ? AND analysis_key = ?",
                (track_id, encoder_key, analysis_key),
            ).fetchone()
        if row is None:
            return None
        return np.frombuffer(row[0], dtype=np.float32).reshape(row[1], -1), row[2]

    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._conn.execute("SELECT status, count(*) FROM tracks GROUP BY status").fetchall())
            keys = self._conn.execute(
                "SELECT encoder_key, analysis_key, count(*) FROM vectors GROUP BY encoder_key, analysis_key"
            ).fetchall()
        return {
            "tracks": sum(counts.values()),
            "done": counts.get("done", 0),
            "failed": counts.get("failed", 0),
            "pending": counts.get("pending", 0),
            "vector_sets": {f"{e} / {a}": n for e, a, n in keys},
        }

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


_TRACK_COLUMNS = "t.id, t.path, t.size, t.mtime_ns, t.title, t.artist, t.album, t.duration, t.status, t.error"


def _track(row: Sequence) -> Track:
    return Track(
        id=row[0], path=os.fsdecode(bytes(row[1])), size=row[2], mtime_ns=row[3], title=row[4],
        artist=row[5], album=row[6], duration=row[7], status=row[8], error=row[9],
    )


def _stem(path: str) -> str:
    name = os.path.splitext(os.path.basename(path))[0]
    return display_text(name)


def iter_identities(paths: Iterable[str]) -> Iterator[FileIdentity | tuple[str, str]]:
    """Stat each path: a :class:`FileIdentity`, or ``(path, reason)`` if it cannot be read."""
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as err:
            yield (path, err.strerror or str(err))
            continue
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device named like a song would block or never end.
            yield (path, "not a regular file")
            continue
        yield FileIdentity(os.path.abspath(path), st.st_size, st.st_mtime_ns)
