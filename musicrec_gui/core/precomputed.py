"""Analyses shipped with musicrec: the demo songs' vectors, so a first start needs no encoder.

A precomputed file is an ``.npz`` (read with ``allow_pickle=False``: arrays only) holding, for
each song, what a scan would have stored — keyed like any cache entry:

- the file: its name (relative to the folder), size and the sha256 of its content (its mtime
  changes when it is installed, so content, not mtime, says it is the same file);
- per encoder and analysis (``keys``: encoder key, analysis key): the song vector, the slice
  vectors, the offset of the first slice and the tag probabilities;
- its tags: title, artist, album, duration.

:func:`seed_library` writes those entries into a library for the files of a folder whose
content matches, as if a scan had just analysed them; a file that differs is left to the scan.

Arrays of the file (``n`` songs, ``m`` keys; ``j`` in ``0 … m-1``)::

    format            ()        str    FORMAT
    files, sha256     (n,)      str
    sizes             (n,)      int64
    titles, artists, albums (n,) str
    durations         (n,)      float64
    keys              (m, 2)    str    encoder key, analysis key
    present_j         (n,)      bool   the song has an entry under key j
    vectors_j         (n, d)    float32
    slice_counts_j    (n,)      int64
    slices_j          (Σ counts, d) float32
    offsets_j         (n,)      float64
    tags_j            (n, t)    float32 (t = 0: the encoder has no tag head)
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.library import FileIdentity, Library, Track, iter_identities

FORMAT = "musicrec precomputed vectors 1"
DEMO_VECTORS = "vectors.npz"  # the demo's precomputed file, in resources/demo/
MAX_FILE_BYTES = 64 << 20  # a shipped file is small; anything larger is not one of ours


class PrecomputedError(MusicrecError):
    """A precomputed file that cannot be used (missing, damaged, another format); the scan does the work."""


@dataclass(frozen=True)
class PrecomputedSong:
    """One song's analysis under one encoder and analysis, and the file it belongs to."""

    file: str
    size: int
    sha256: str
    title: str
    artist: str
    album: str
    duration: float
    vector: np.ndarray
    slice_vectors: np.ndarray
    offset_seconds: float
    tag_probabilities: np.ndarray | None


class PrecomputedVectors:
    """The songs of a precomputed file, by (encoder key, analysis key) and file name."""

    def __init__(self, songs: Mapping[tuple[str, str], Mapping[str, PrecomputedSong]]):
        self._songs = {key: dict(by_file) for key, by_file in songs.items()}

    @property
    def keys(self) -> list[tuple[str, str]]:
        return list(self._songs)

    def songs(self, *, encoder_key: str, analysis_key: str) -> dict[str, PrecomputedSong]:
        """File name → song for one encoder and analysis (empty if the file has none)."""
        return dict(self._songs.get((encoder_key, analysis_key), {}))


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's content (read in blocks, never written)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_precomputed(path: str | os.PathLike, songs: Mapping[tuple[str, str], Sequence[PrecomputedSong]]) -> Path:
    """Write ``songs`` (per encoder and analysis key) as a precomputed file, atomically.

    An existing file is replaced only if it is a precomputed file (``core.output`` rules).

    Parameters
    ----------
    path : str or PathLike
        Ends in ``.npz``.
    songs : mapping of (encoder key, analysis key) to sequence of PrecomputedSong
        The same file under several keys must have the same size, hash and tags.

    Returns
    -------
    Path
    """
    from musicrec_gui.core.output import check_output_path, write_atomically

    target = check_output_path(path, suffixes=(".npz",), what="precomputed vectors", is_ours=is_precomputed_file)
    files: dict[str, PrecomputedSong] = {}
    for key_songs in songs.values():
        for song in key_songs:
            first = files.setdefault(song.file, song)
            if (first.size, first.sha256) != (song.size, song.sha256):
                raise ValueError(f"{song.file} has two identities in the songs to write")
    names = sorted(files)
    row = {name: i for i, name in enumerate(names)}
    n = len(names)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "files": np.array(names, dtype=str).reshape(n),
        "sha256": np.array([files[f].sha256 for f in names], dtype=str).reshape(n),
        "sizes": np.array([files[f].size for f in names], dtype=np.int64),
        "titles": np.array([files[f].title for f in names], dtype=str).reshape(n),
        "artists": np.array([files[f].artist for f in names], dtype=str).reshape(n),
        "albums": np.array([files[f].album for f in names], dtype=str).reshape(n),
        "durations": np.array([files[f].duration for f in names], dtype=np.float64),
        "keys": np.array([list(key) for key in songs], dtype=str).reshape(len(songs), 2),
    }
    for j, key_songs in enumerate(songs.values()):
        by_file = {song.file: song for song in key_songs}
        d = next(iter(by_file.values())).vector.size if by_file else 0
        t = max((0 if s.tag_probabilities is None else s.tag_probabilities.size for s in by_file.values()), default=0)
        present = np.zeros(n, dtype=bool)
        vectors = np.zeros((n, d), np.float32)
        counts = np.zeros(n, np.int64)
        offsets = np.zeros(n, np.float64)
        tags = np.zeros((n, t), np.float32)
        slices = []
        for name in names:  # slices are stored in file order, so counts locate them
            song = by_file.get(name)
            if song is None:
                continue
            i = row[name]
            present[i], vectors[i], offsets[i] = True, song.vector, song.offset_seconds
            counts[i] = len(song.slice_vectors)
            slices.append(np.asarray(song.slice_vectors, np.float32).reshape(-1, d))
            if t:
                tags[i] = song.tag_probabilities
        arrays.update({f"present_{j}": present, f"vectors_{j}": vectors, f"slice_counts_{j}": counts,
                       f"slices_{j}": np.concatenate(slices) if slices else np.zeros((0, d), np.float32),
                       f"offsets_{j}": offsets, f"tags_{j}": tags})
    write_atomically(target, lambda handle: np.savez_compressed(handle, **arrays))
    return target


def is_precomputed_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is an ``.npz`` that says it is a precomputed file (nothing is unpickled)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return "format" in data.files and str(data["format"]) == FORMAT
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return False


def load_precomputed(path: str | os.PathLike) -> PrecomputedVectors:
    """Read a precomputed file, checking every shape and value.

    Raises
    ------
    PrecomputedError
        The file is missing, too large, not a precomputed file, or inconsistent.
    """
    try:
        if os.stat(path).st_size > MAX_FILE_BYTES:
            raise PrecomputedError(f"{path} is larger than a precomputed file can be")
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except PrecomputedError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise PrecomputedError(f"{path} cannot be read as precomputed vectors: {err}") from None
    try:
        return _parse(arrays)
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise PrecomputedError(f"{path} is not a usable precomputed file: {err}") from None


def _parse(a: dict[str, np.ndarray]) -> PrecomputedVectors:
    if str(a["format"]) != FORMAT:
        raise ValueError(f"its format is {str(a['format'])!r}, not {FORMAT!r}")
    files = [str(f) for f in a["files"]]
    n = len(files)
    for name in ("sha256", "sizes", "titles", "artists", "albums", "durations"):
        if a[name].shape != (n,):
            raise ValueError(f"'{name}' has shape {a[name].shape}, expected ({n},)")
    if any(os.path.basename(f) != f or f in ("", ".", "..") for f in files):
        raise ValueError("a file name holds a folder")  # entries name files of the folder itself
    keys = a["keys"]
    if keys.ndim != 2 or keys.shape[1] != 2:
        raise ValueError(f"'keys' has shape {keys.shape}, expected (m, 2)")
    songs: dict[tuple[str, str], dict[str, PrecomputedSong]] = {}
    for j, (encoder_key, analysis_key) in enumerate(keys):
        present, vectors = a[f"present_{j}"].astype(bool), a[f"vectors_{j}"].astype(np.float32)
        counts, slices = a[f"slice_counts_{j}"].astype(np.int64), a[f"slices_{j}"].astype(np.float32)
        offsets, tags = a[f"offsets_{j}"].astype(np.float64), a[f"tags_{j}"].astype(np.float32)
        d = vectors.shape[1] if vectors.ndim == 2 else -1
        if present.shape != (n,) or vectors.shape != (n, d) or counts.shape != (n,) or offsets.shape != (n,) \
                or tags.ndim != 2 or len(tags) != n or slices.shape != (int(counts.sum()), d) or (counts < 0).any():
            raise ValueError(f"the arrays of key {j} do not fit together")
        if not (np.isfinite(vectors).all() and np.isfinite(slices).all() and np.isfinite(tags).all()):
            raise ValueError(f"key {j} holds numbers that are not finite")
        starts = np.concatenate([[0], np.cumsum(counts)])
        by_file = {}
        for i in np.flatnonzero(present):
            if counts[i] < 1:
                raise ValueError(f"{files[i]} has no slice vectors")
            by_file[files[i]] = PrecomputedSong(
                file=files[i], size=int(a["sizes"][i]), sha256=str(a["sha256"][i]), title=str(a["titles"][i]),
                artist=str(a["artists"][i]), album=str(a["albums"][i]), duration=float(a["durations"][i]),
                vector=vectors[i].copy(), slice_vectors=slices[starts[i]:starts[i + 1]].copy(),
                offset_seconds=float(offsets[i]), tag_probabilities=tags[i].copy() if tags.shape[1] else None)
        songs[(str(encoder_key), str(analysis_key))] = by_file
    return PrecomputedVectors(songs)


def seed_library(
    library: Library,
    folder: str | os.PathLike,
    source: PrecomputedVectors,
    *,
    encoder_key: str,
    analysis_key: str,
    dimension: int | None = None,
) -> list[tuple[Track, np.ndarray]]:
    """Store the precomputed analyses of ``folder``'s files whose content matches, as a scan would.

    Only files not yet analysed under this key are looked at; each is hashed, and seeded only
    when its size and sha256 are the precomputed ones (a changed file is left to the scan). The
    files are only read. Runs where the library is written (the engine's thread in the app).

    Parameters
    ----------
    library : Library
    folder : str or PathLike
        The folder the precomputed file describes (its files are named relative to it).
    source : PrecomputedVectors
    encoder_key, analysis_key : str
        The cache key in use: entries of other keys are not seeded.
    dimension : int or None
        The encoder's vector size; entries of another size are not seeded.

    Returns
    -------
    list of (Track, np.ndarray)
        The songs seeded, as stored now, with their song vectors.
    """
    songs = source.songs(encoder_key=encoder_key, analysis_key=analysis_key)
    if not songs:
        return []
    paths = [os.path.join(folder, name) for name in sorted(songs)]
    found = [item for item in iter_identities(p for p in paths if os.path.lexists(p))
             if isinstance(item, FileIdentity)]
    # Adds the files (as the scan would) and says which still need an analysis under this key.
    plan = library.plan_scan(found, encoder_key=encoder_key, analysis_key=analysis_key, dimension=dimension)
    seeded = []
    for track in plan.todo:
        song = songs.get(os.path.basename(track.path))
        if song is None or track.size != song.size or (dimension is not None and song.vector.size != dimension):
            continue
        try:
            same = file_sha256(track.path) == song.sha256
            st = os.stat(track.path)
        except OSError:
            continue
        if not same or (st.st_size, st.st_mtime_ns) != (track.size, track.mtime_ns):
            continue  # another content (or rewritten while hashed): the scan analyses it
        library.record_result(
            track.id, encoder_key=encoder_key, analysis_key=analysis_key, vector=song.vector,
            slice_vectors=song.slice_vectors, offset_seconds=song.offset_seconds, title=song.title,
            artist=song.artist, album=song.album, duration=song.duration, tag_probabilities=song.tag_probabilities)
        done = Track(id=track.id, path=track.path, size=track.size, mtime_ns=track.mtime_ns, title=song.title,
                     artist=song.artist, album=song.album, duration=song.duration, status="done", error="")
        seeded.append((done, song.vector))
    return seeded
