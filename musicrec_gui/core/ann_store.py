"""HNSW graphs of large libraries saved beside the library file, so the next start only loads them.

``<library>.ann/`` is a folder musicrec creates; ``musicrec-ann.json`` in it (the manifest) names
every graph file musicrec wrote there, with the file's identity (device and inode) and a SHA-256
of its bytes. A file is ours only if the manifest names it and its identity matches: anything
else in the folder (or a folder at that path that musicrec did not create) is never written,
overwritten, loaded or deleted. A graph whose bytes no longer match is rebuilt and replaced.

Writes are not SQLite, so they need not go through the engine thread: each file is written under
a temporary name in this folder and renamed over its final name (atomic on one file system), from
the background job that builds the graph.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

MANIFEST = "musicrec-ann.json"
FORMAT = "musicrec-ann"
# Graphs kept per library (other folders, encoders or older song sets); the oldest go first.
KEEP = 4
# One writer of a manifest at a time in this process (two folders' graphs may be saved by two workers).
_SAVING = threading.Lock()
_GRAPH_NAME = re.compile(r"[0-9a-f]+-[0-9]+-[0-9a-f]+\.usearch")
# Rows of the vectors hashed into a graph's digest, beside every song id and the count.
DIGEST_ROWS = 1024


def graph_folder(library_path: str | os.PathLike) -> Path:
    """``<library>.ann`` beside the library file."""
    path = Path(library_path)
    return path.with_name(path.name + ".ann")


def content_digest(ids: np.ndarray, vectors: np.ndarray, rows: int) -> str:
    """What a graph over the first ``rows`` songs was built on: their ids in order, a spread sample of
    their (raw) vectors and the count. Cheap: ~10 ms at a million songs."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{rows}:{vectors.shape[1] if vectors.ndim == 2 else 0}".encode())
    h.update(np.ascontiguousarray(ids[:rows], dtype=np.int64).tobytes())
    sample = np.unique(np.linspace(0, rows - 1, min(rows, DIGEST_ROWS)).astype(np.int64)) if rows else []
    h.update(np.ascontiguousarray(vectors[sample], dtype=np.float32).tobytes())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)  # releases the GIL for large buffers
    return h.hexdigest()


class GraphStore:
    """The saved graphs of one library for one encoder + analysis + folder (``key``).

    Parameters
    ----------
    folder : Path
        ``<library>.ann`` (see :func:`graph_folder`).
    key : str
        Hex digest of encoder key, analysis key, folder and the graph's parameters.
    keep : int
        Graphs kept in the folder, all keys together.
    """

    def __init__(self, folder: Path, key: str, *, keep: int = KEEP):
        self.folder = Path(folder)
        self.key = key
        self.keep = keep

    @classmethod
    def for_library(cls, library_path: str | os.PathLike, *, encoder_key: str, analysis_key: str,
                    under: str | None, params: str, keep: int = KEEP) -> "GraphStore":
        key = hashlib.blake2b(json.dumps([encoder_key, analysis_key, under, params]).encode(), digest_size=8)
        return cls(graph_folder(library_path), key.hexdigest(), keep=keep)

    def name(self, rows: int, digest: str) -> str:
        return f"{self.key}-{rows}-{digest}.usearch"

    # The manifest -------------------------------------------------------------------------------

    def _manifest(self, *, create: bool) -> dict | None:
        """The folder's manifest; None when the folder is not ours (or absent and ``create`` is False)."""
        folder = self.folder
        if folder.is_symlink():
            return None
        if not folder.exists():
            if not create:
                return None
            try:
                folder.mkdir()
            except FileExistsError:
                return None  # another process was first: its folder, read on the next start
            manifest = {"format": FORMAT, "version": 1, "files": {}}
            self._write_manifest(manifest)
            return manifest
        if not folder.is_dir():
            return None
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            if create and not any(folder.iterdir()):  # ours, left before its manifest was written
                manifest = {"format": FORMAT, "version": 1, "files": {}}
                self._write_manifest(manifest)
                return manifest
            return None
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
                or not isinstance(manifest.get("files"), dict):
            return None
        return manifest

    def _write_manifest(self, manifest: dict) -> None:
        self._atomic_write(MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1), encoding="utf-8"))

    def _atomic_write(self, name: str, write) -> Path:
        """Write ``name`` in our folder through a temporary file of our own, renamed over it."""
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=self.folder)
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, self.folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.folder / name

    @staticmethod
    def _identity(path: Path) -> list[int] | None:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        return [st.st_dev, st.st_ino]

    def _ours(self, manifest: dict, name: str) -> bool:
        """Whether the file ``name`` is the one musicrec wrote (same device and inode as recorded)."""
        entry = manifest["files"].get(name)
        if not _GRAPH_NAME.fullmatch(name):
            return False
        path = self.folder / name
        return isinstance(entry, dict) and not path.is_symlink() and self._identity(path) == entry.get("identity")

    # Graphs ---------------------------------------------------------------------------------------

    def find(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[Path, int, str] | None:
        """The saved graph built on the longest prefix of these songs (same ids in the same order, same
        sampled vectors), as ``(path, rows, sha256)``; None if there is none of ours."""
        manifest = self._manifest(create=False)
        if manifest is None:
            return None
        best = None
        for name, entry in manifest["files"].items():
            if not name.startswith(self.key + "-") or not isinstance(entry, dict):
                continue
            rows = entry.get("rows")
            if not isinstance(rows, int) or not 0 < rows <= len(ids) or (best and best[1] >= rows):
                continue
            if entry.get("digest") == content_digest(ids, vectors, rows) and self._ours(manifest, name):
                best = (self.folder / name, rows, str(entry.get("sha256")))
        return best

    def load(self, found: tuple[Path, int, str], **index_options):
        """The saved graph, memory-mapped (``Index.restore(view=True)``); None if its bytes changed
        (damaged: the caller rebuilds it) or usearch refuses it."""
        from usearch.index import Index

        path, rows, sha256 = found
        try:
            if _file_sha256(path) != sha256:
                return None
            index = Index.restore(str(path), view=True, **index_options)
        except (OSError, ValueError, RuntimeError):
            return None
        if index is None or len(index) != rows:
            return None
        return index

    def save(self, index, rows: int, digest: str) -> Path | None:
        """Save a graph over ``rows`` songs; None where the folder or a file at that name is not ours.
        Then keep the :attr:`keep` newest graphs, deleting only files of ours."""
        with _SAVING:
            return self._save(index, rows, digest)

    def _save(self, index, rows: int, digest: str) -> Path | None:
        manifest = self._manifest(create=True)
        if manifest is None:
            return None
        name = self.name(rows, digest)
        path = self.folder / name
        if (path.exists() or path.is_symlink()) and not self._ours(manifest, name):
            return None  # a file musicrec did not write: left alone
        self._atomic_write(name, lambda tmp: index.save(tmp))
        manifest["files"][name] = {"rows": rows, "digest": digest, "identity": self._identity(path),
                                   "sha256": _file_sha256(path), "saved": time.time()}
        self._prune(manifest, keep_name=name)
        self._write_manifest(manifest)
        return path

    def _prune(self, manifest: dict, *, keep_name: str) -> None:
        files = manifest["files"]
        for name in [n for n in files if not (self.folder / n).exists()]:
            del files[name]
        by_age = sorted(files, key=lambda n: files[n].get("saved", 0) if isinstance(files[n], dict) else 0,
                        reverse=True)
        for name in by_age[self.keep:]:
            if name == keep_name:
                continue
            if self._ours(manifest, name):
                (self.folder / name).unlink(missing_ok=True)
            del files[name]  # a foreign file there stays, no longer named as ours
