"""A 2-D map of song vectors: PCA of the vectors as the recommendations compare them.

The map's basis (the library's mean vector and two axes) is kept while songs are added, so a
song stays where it was drawn: new songs are placed with one matrix product, and the basis is
fitted again only when the set has grown by a quarter (the policy of ``VectorIndex.add``). The
basis is cached in the library's ``meta`` table per encoder, analysis and folder, so the map
opens where it was left. Why PCA and not t-SNE or UMAP: ``docs/benchmarks.md``, "Library map".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from musicrec_gui.core.library import Library, LibraryError
from musicrec_gui.core.recommend import CENTRE_MIN_SONGS, normalise_rows
from musicrec_gui.core.songtable import positions_in

# Fit again once the set has grown by this factor since the last fit (as VectorIndex re-centres).
REFIT_GROWTH = 1.25
# The axes are fitted on at most this many songs (a fixed sample): two principal axes of
# 20 000 songs are those of 100 000 to a fraction of a degree, at a fifth of the cost.
FIT_SAMPLE = 20_000
# From this many songs the map keeps no copy of their vectors (800 MB at a million): it is built
# from the library a chunk at a time, and built again from it when it outgrows its basis.
STREAM_FROM = 100_000
CACHE_VERSION = 1
_META_PREFIX = "map-basis"


@dataclass(frozen=True, eq=False)
class MapBasis:
    """Where the map's two axes lie in the vector space.

    Attributes
    ----------
    mean : np.ndarray [shape=(d,)], float32
        Subtracted from each vector before it is made unit length (zeros: not centred, as
        ``VectorIndex`` does not centre fewer than ``CENTRE_MIN_SONGS`` songs).
    axes : np.ndarray [shape=(d, 2)], float32
        The first two principal axes of the centred unit vectors, orthonormal columns.
    fitted_on : int
        How many songs the basis was fitted on: it is fitted again at ``REFIT_GROWTH`` times as many.
    """

    mean: np.ndarray
    axes: np.ndarray
    fitted_on: int

    @property
    def dimension(self) -> int:
        return int(self.axes.shape[0])

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Map positions of song vectors.

        Parameters
        ----------
        vectors : np.ndarray [shape=(n, d) or (d,)]

        Returns
        -------
        np.ndarray [shape=(n, 2)], float32
        """
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        # einsum, not BLAS: see VectorIndex.similar (a threaded sgemv is slow on a busy 2-core machine).
        return np.einsum("ij,jk->ik", normalise_rows(vectors - self.mean), self.axes).astype(np.float32)

    def needs_refit(self, count: int) -> bool:
        """Whether a set of ``count`` songs should get a new basis (it grew by a quarter, or was too small)."""
        return count >= REFIT_GROWTH * self.fitted_on or (self.fitted_on < CENTRE_MIN_SONGS <= count)

    # -- the cache's text form (the meta table holds TEXT) ------------------------------------
    def to_text(self) -> str:
        return json.dumps({
            "version": CACHE_VERSION, "dimension": self.dimension, "fitted_on": int(self.fitted_on),
            "mean": base64.b64encode(self.mean.astype("<f4").tobytes()).decode("ascii"),
            "axes": base64.b64encode(self.axes.astype("<f4").tobytes()).decode("ascii"),
        })

    @classmethod
    def from_text(cls, text: str) -> "MapBasis | None":
        """The basis :meth:`to_text` wrote; None for anything else (another version, damaged)."""
        try:
            data = json.loads(text)
            if data.get("version") != CACHE_VERSION:
                return None
            d, fitted_on = int(data["dimension"]), int(data["fitted_on"])
            mean = np.frombuffer(base64.b64decode(data["mean"], validate=True), dtype="<f4").astype(np.float32)
            axes = np.frombuffer(base64.b64decode(data["axes"], validate=True), dtype="<f4").astype(np.float32)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if d < 2 or fitted_on < 1 or mean.size != d or axes.size != 2 * d \
                or not (np.isfinite(mean).all() and np.isfinite(axes).all()):
            return None
        return cls(mean, axes.reshape(d, 2), fitted_on)


def fit_basis(vectors: np.ndarray, *, previous: MapBasis | None = None, sample: int = FIT_SAMPLE) -> MapBasis:
    """The first two principal axes of the songs' centred unit vectors.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, d)]
        Raw song vectors, as the library stores them.
    previous : MapBasis, optional
        The basis this one replaces: each new axis takes the sign that keeps it closest to the
        old one, so a refit does not mirror the map.
    sample : int
        Fit the axes on at most this many songs (a fixed random sample); the mean uses them all.

    Returns
    -------
    MapBasis
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] < 2:
        raise ValueError(f"A map needs vectors of at least 2 numbers, got an array of shape {vectors.shape}.")
    n, d = vectors.shape
    # The same centring as VectorIndex: the map shows the geometry the recommendations use.
    mean = vectors.mean(axis=0) if n >= CENTRE_MIN_SONGS else np.zeros(d, np.float32)
    return _fitted(vectors[_sample_rows(n, sample)] if n > sample else vectors, mean, n=n, previous=previous)


def fit_basis_from_chunks(chunks: Iterable[tuple[np.ndarray, np.ndarray]], *, n: int,
                          previous: MapBasis | None = None, sample: int = FIT_SAMPLE) -> MapBasis:
    """:func:`fit_basis` of ``n`` songs read a chunk at a time (``(ids, vectors [shape=(m, d)])``):
    the same basis, holding only the sample."""
    picks = _sample_rows(n, sample) if n > sample else np.arange(n)
    total, rows, seen = None, [], 0
    for _ids, vectors in chunks:
        vectors = np.asarray(vectors, dtype=np.float32)
        part = vectors.sum(axis=0, dtype=np.float64)
        total = part if total is None else total + part
        lo, hi = np.searchsorted(picks, [seen, seen + len(vectors)])
        rows.append(vectors[picks[lo:hi] - seen])
        seen += len(vectors)
    if seen < 2 or total is None or len(total) < 2:
        raise ValueError(f"A map needs at least 2 songs with vectors of at least 2 numbers, got {seen}.")
    d = len(total)  # ``seen`` may differ from ``n`` if a scan wrote since the count: the songs read count
    mean = (total / seen).astype(np.float32) if seen >= CENTRE_MIN_SONGS else np.zeros(d, np.float32)
    return _fitted(np.concatenate(rows), mean, n=seen, previous=previous)


def _sample_rows(n: int, sample: int) -> np.ndarray:
    """The fixed random rows a basis of ``n`` songs is fitted on, ascending."""
    return np.sort(np.random.default_rng(0).choice(n, sample, replace=False))


def _fitted(rows: np.ndarray, mean: np.ndarray, *, n: int, previous: MapBasis | None) -> MapBasis:
    """The basis whose axes are the principal axes of ``rows`` [shape=(m, d)] centred on ``mean``."""
    d = rows.shape[1]
    unit = normalise_rows(rows - mean)
    unit = unit - unit.mean(axis=0)
    # Eigenvectors of the d×d scatter matrix: n·d² work, against n·d² + more for an SVD of the rows.
    scatter = np.einsum("ni,nj->ij", unit, unit, optimize=True) if len(unit) else np.eye(d, dtype=np.float32)
    _values, vecs = np.linalg.eigh(scatter.astype(np.float64))
    axes = vecs[:, ::-1][:, :2].astype(np.float32)  # eigh sorts ascending
    for k in range(2):
        reference = previous.axes[:, k] if previous is not None and previous.dimension == d else axes[:, k]
        if previous is None or previous.dimension != d:
            # No earlier map: the largest component positive, so one set of songs always looks the same.
            flip = reference[np.argmax(np.abs(reference))] < 0
        else:
            flip = float(axes[:, k] @ reference) < 0
        if flip:
            axes[:, k] = -axes[:, k]
    return MapBasis(mean.astype(np.float32), np.ascontiguousarray(axes), n)


def cache_key(*, encoder_key: str, analysis_key: str, folder: str | os.PathLike) -> str:
    """The meta key of one folder's basis under one encoder and analysis.

    The folder goes in as a hash of its bytes: a path need not be valid UTF-8, a meta value must.
    """
    digest = hashlib.sha256(os.fsencode(os.fspath(folder))).hexdigest()[:24]
    return f"{_META_PREFIX}/{encoder_key}/{analysis_key}/{digest}"


def load_basis(library: Library, *, encoder_key: str, analysis_key: str, folder: str | os.PathLike) -> MapBasis | None:
    """The cached basis, or None if there is none (or it cannot be read)."""
    text = library.get_meta(cache_key(encoder_key=encoder_key, analysis_key=analysis_key, folder=folder))
    return MapBasis.from_text(text) if text else None


def store_basis(library: Library, basis: MapBasis, *, encoder_key: str, analysis_key: str,
                folder: str | os.PathLike) -> bool:
    """Cache ``basis``; False if the library cannot be written (a read-only one): the map works without."""
    try:
        library.set_meta(cache_key(encoder_key=encoder_key, analysis_key=analysis_key, folder=folder),
                         basis.to_text())
    except LibraryError:
        return False
    return True


class LibraryMap:
    """Map positions of one folder's analysed songs, kept as songs are added.

    Parameters
    ----------
    track_ids : np.ndarray [shape=(n,)], int
    vectors : np.ndarray [shape=(n, d)]
    basis : MapBasis, optional
        A basis to keep (the cached one); fitted here if None, or if the set has outgrown it.

    Attributes
    ----------
    ids : np.ndarray [shape=(n,)], int64
    points : np.ndarray [shape=(n, 2)], float32
    basis : MapBasis
    fitted : bool
        Whether the basis was fitted here (and so is worth caching) rather than given.
    """

    def __init__(self, track_ids: np.ndarray, vectors: np.ndarray, *, basis: MapBasis | None = None):
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} track ids but {len(vectors)} vectors; they must pair up one to one.")
        if len(ids) and (vectors.ndim != 2 or vectors.shape[1] < 2):
            raise ValueError(f"A map needs vectors of at least 2 numbers, got an array of shape {vectors.shape}.")
        dimension = vectors.shape[1] if len(ids) else (basis.dimension if basis is not None else 0)
        if basis is not None and basis.dimension != dimension:
            basis = None  # another encoder's size: a stale cache entry
        self._ids = ids.copy()
        self._raw = vectors.reshape(len(ids), -1).copy() if len(ids) else np.zeros((0, dimension), np.float32)
        self._row = {int(t): i for i, t in enumerate(self._ids)}
        self._n = len(ids)
        self.fitted = False
        self.outgrown = False  # a map kept without its vectors has grown past its basis: build it again
        self.basis: MapBasis | None = basis
        if basis is None or basis.needs_refit(len(ids)):
            self._fit()
        else:
            self._points = basis.project(self._raw) if len(ids) else np.zeros((0, 2), np.float32)

    def _fit(self) -> None:
        n = self._n
        self._points = np.zeros((len(self._raw), 2), np.float32)  # as much room as the vectors have
        if n < 2:
            self.basis = None  # one song: the centre of the map
            return
        self.basis = fit_basis(self._raw[:n], previous=self.basis)
        self.fitted = True
        self._points[:n] = self.basis.project(self._raw[:n])

    @classmethod
    def _of_points(cls, ids: np.ndarray, points: np.ndarray, basis: MapBasis, *, fitted: bool) -> "LibraryMap":
        """A map of positions already projected on ``basis``, kept without the songs' vectors."""
        made = cls.__new__(cls)
        made._ids, made._points, made._raw = ids, points, None
        made._row = _AscendingRows(ids)
        made._n, made.basis, made.fitted, made.outgrown = len(ids), basis, fitted, False
        return made

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self._n]

    @property
    def points(self) -> np.ndarray:
        return self._points[: self._n]

    def __len__(self) -> int:
        return self._n

    def __contains__(self, track_id: int) -> bool:
        return int(track_id) in self._row

    def row_of(self, track_id: int) -> int | None:
        return self._row.get(int(track_id))

    def add(self, track_id: int, vector: np.ndarray) -> bool:
        """Place a song just analysed (or move one analysed again).

        Parameters
        ----------
        track_id : int
        vector : np.ndarray [shape=(d,)]

        Returns
        -------
        bool
            True if the basis was fitted again, so every point moved (the caller redraws all of
            them and caches the new basis); False if only this song's point is new.
        """
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if not np.isfinite(vector).all():
            raise ValueError("A song vector with NaN or infinite numbers cannot be placed on the map.")
        dimension = self._raw.shape[1] if self._raw is not None else self.basis.dimension
        if self._n and vector.size != dimension:
            raise ValueError(f"A vector of {vector.size} numbers cannot join a map of {dimension}.")
        row = self._row.get(int(track_id))
        if row is None:
            row = self._n
            if row == len(self._ids):  # room for more: adding stays cheap
                grow = max(16, len(self._ids) // (4 if self._raw is None else 1))
                if self._raw is not None:
                    self._raw = np.concatenate([self._raw.reshape(len(self._raw), vector.size),
                                                np.zeros((grow, vector.size), np.float32)])
                self._ids = np.concatenate([self._ids, np.zeros(grow, np.int64)])
                self._points = np.concatenate([self._points, np.zeros((grow, 2), np.float32)])
            self._ids[row] = int(track_id)
            self._row[int(track_id)] = row
            self._n += 1
        if self._raw is None:  # no vectors kept: placed on the basis it has until it is built again
            self.outgrown = self.outgrown or self.basis.needs_refit(self._n)
            self._points[row] = self.basis.project(vector)[0]
            return False
        self._raw[row] = vector
        if self.basis is None or self.basis.needs_refit(self._n):
            self._fit()
            return True
        self._points[row] = self.basis.project(vector)[0]
        return False

    @classmethod
    def from_library(cls, library: Library, *, encoder_key: str, analysis_key: str, under: str | os.PathLike,
                     use_cache: bool = True, store: bool = True) -> "LibraryMap":
        """The map of the analysed songs below ``under``, on the cached basis when there is one.

        A basis fitted here (no cache, another encoder's size, or the folder outgrew it) is
        stored for the next time (unless ``store`` is False: the app has its engine thread, the one
        writer, store it); a library that cannot be written just is not cached.

        Parameters
        ----------
        library : Library
        encoder_key, analysis_key : str
            Which vectors (the encoder and analysis in use).
        under : str or PathLike
            The open folder.
        use_cache : bool
            Read and write the cached basis (False: always fit, store nothing).
        """
        keys = {"encoder_key": encoder_key, "analysis_key": analysis_key, "folder": under}
        basis = load_basis(library, **keys) if use_cache else None
        read = {"encoder_key": encoder_key, "analysis_key": analysis_key, "under": under}
        n = library.vector_count(**read)
        if n >= STREAM_FROM:
            result = cls._streamed(library, n, basis, read)
        else:
            result = cls(*library.vectors(**read), basis=basis)
        if use_cache and store and result.fitted and result.basis is not None:
            store_basis(library, result.basis, **keys)
        return result

    @classmethod
    def _streamed(cls, library: Library, n: int, basis: MapBasis | None, read: dict) -> "LibraryMap":
        """The map of many songs, read a chunk at a time (twice when the basis is fitted here)."""
        fitted = basis is None or basis.needs_refit(n)
        if fitted:
            basis = fit_basis_from_chunks(library.iter_vectors(**read), n=n, previous=basis)
        # Every song read is kept, not the first ``n``: a scan may have written vectors since the count,
        # and one of an old song (a changed file analysed again) comes in the middle of the ids.
        ids, points = [], []
        for chunk_ids, vectors in library.iter_vectors(**read):
            if vectors.shape[1] != basis.dimension:  # a cached basis of another encoder's size
                return cls._streamed(library, n, None, read)
            ids.append(chunk_ids)
            points.append(basis.project(vectors))
        if not ids:
            return cls._of_points(np.zeros(0, np.int64), np.zeros((0, 2), np.float32), basis, fitted=fitted)
        return cls._of_points(np.concatenate(ids), np.concatenate(points), basis, fitted=fitted)


class _AscendingRows:
    """Track id → row for ids read in ascending order (a searchsorted; a million-entry dict is ~0.1 GB),
    with the rows of songs added later in a dict."""

    def __init__(self, ascending: np.ndarray):
        self._ids, self._added = ascending, {}

    def get(self, track_id: int, default=None):
        row = self._added.get(track_id)
        if row is None:
            at = int(positions_in(self._ids, [track_id])[0])
            row = at if at >= 0 else None
        return default if row is None else row

    def __contains__(self, track_id: int) -> bool:
        return self.get(track_id) is not None

    def __setitem__(self, track_id: int, row: int) -> None:
        self._added[track_id] = row


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which points lie inside a polygon (even-odd rule), vectorised over the points.

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
    polygon : np.ndarray [shape=(m, 2)]
        Its corners in order; closed implicitly.

    Returns
    -------
    np.ndarray [shape=(n,)], bool
    """
    points = np.asarray(points, dtype=np.float64)
    polygon = np.asarray(polygon, dtype=np.float64)
    inside = np.zeros(len(points), dtype=bool)
    if len(polygon) < 3 or not len(points):
        return inside
    x, y = points[:, 0], points[:, 1]
    # Only points inside the polygon's bounding box need the edge tests.
    (x0, y0), (x1, y1) = polygon.min(axis=0), polygon.max(axis=0)
    box = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    bx, by = x[box], y[box]
    hit = np.zeros(len(box), dtype=bool)
    for (ax, ay), (cx, cy) in zip(polygon, np.roll(polygon, -1, axis=0)):
        if ay == cy:
            continue
        crosses = (ay > by) != (cy > by)
        at_x = ax + (by - ay) * (cx - ax) / (cy - ay)
        hit ^= crosses & (bx < at_x)
    inside[box] = hit
    return inside
