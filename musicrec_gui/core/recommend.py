"""Nearest songs by cosine similarity."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from musicrec_gui.core.ann_store import GraphStore, content_digest
from musicrec_gui.core.library import Library, LibraryError, Track
from musicrec_gui.core.songtable import SongTable, positions_in, with_room

# Two files whose vectors agree this closely are taken to be the same recording.
DUPLICATE_SIMILARITY = 0.9995


class StoredVectorsError(LibraryError):
    """The library's song vectors for one encoder do not all have the encoder's length."""


# Below this many songs the library's mean is too noisy to centre on.
CENTRE_MIN_SONGS = 10
# Up to this many songs an added song re-centres the whole index (≈ 1 ms), so a growing index answers
# exactly as one built at once; above it, when it has grown by a quarter since the last centring.
EXACT_CENTRE_BELOW = 5000
# Pairs of songs sampled to tell how close a pair is compared with the rest of the library.
PAIR_SAMPLE = 20_000
# From this many songs on the index keeps no copy of the raw vectors (the unit vectors only: the raw
# copy is 800 MB at a million 200-d songs); the mean stays the one of the build.
LARGE_INDEX_SONGS = 50_000
# From this many songs on, queries go through an approximate (HNSW) index once it is built (or
# loaded from ``<library>.ann/``). Exact top-10 with exclusions costs ~5.4 ms of CPU per 100 000
# songs; on the 2-core machine under heavy load (load average 6–7) its p95 was 16 ms at 100 000
# songs and 24 ms at 150 000, so below this exact search meets the 20 ms p95 target with margin.
# Measured in docs/benchmarks.md, "A million songs".
ANN_MIN_SONGS = 100_000
# The HNSW graph's parameters (usearch): recall@10 ≥ 0.98 against exact search on 200-d vectors.
ANN_CONNECTIVITY = 16
ANN_EXPANSION_ADD = 128
ANN_EXPANSION_SEARCH = 128
# A saved graph is used while the songs it was built on are at least this share of the index (the
# rest are searched exactly beside it); beyond, it is rebuilt and saved again, as :meth:`VectorIndex.add`
# re-centres a growing index at a quarter more songs.
ANN_REUSE_GROWTH = 1.25
# Neighbours fetched per wanted result: exclusions (artist, album, played songs, duplicates) are
# filtered afterwards; when too few survive, the query falls back to exact search.
ANN_OVERFETCH = 8
# Rows of room read after a large library's vectors, for songs a scan adds (untouched pages cost no memory).
SPARE_ROWS = 4096


@dataclass(frozen=True)
class Recommendation:
    track: Track
    score: float  # cosine similarity in [-1, 1]
    # Share of song pairs in this library that are less similar than this one, in [0, 1]:
    # raw cosines of most encoders bunch up near 1 and tell a person little.
    closeness: float = float("nan")

    @property
    def closeness_text(self) -> str:
        """"closer than 97 % of pairs" — the score shown to users, the same in the app and the CLI."""
        if self.closeness != self.closeness:
            return "similarity " + f"{self.score:.3f}"
        return f"closer than {closeness_percent(self.closeness)} % of song pairs"


def closeness_percent(closeness: float) -> int:
    """A percentage that reaches 100 only for a pair closer than every sampled pair."""
    return min(99, int(closeness * 100)) if closeness < 1 else 100


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, d)]

    Returns
    -------
    np.ndarray [shape=(n, d)], float32
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class VectorIndex:
    """Song vectors of one encoder + analysis, ready for top-k cosine queries.

    Parameters
    ----------
    tracks : sequence of Track
        Same order as ``vectors``.
    vectors : np.ndarray [shape=(n, d)]
    centre : bool
        Compare vectors after subtracting this library's mean vector (from
        :data:`CENTRE_MIN_SONGS` songs up; a mean of a handful of songs is mostly noise). What
        all songs share (a ReLU encoder's vectors all point into one orthant) then stops
        drowning what tells them apart; measured on held-out music in ``docs/model.md``.
    copy : bool
        False: ``vectors`` (float32) may become the index's own storage, changed in place.
    ann_min_songs : int, optional
        Songs from which :meth:`build_ann` builds a graph (default :data:`ANN_MIN_SONGS`).
    ann_store : GraphStore, optional
        Where graphs of these songs are saved and looked up (:meth:`from_library` gives the
        library's); None: the graph lives in memory only.

    Notes
    -----
    From :data:`LARGE_INDEX_SONGS` songs on the index keeps only the unit vectors (no raw copy; the
    mean stays the one of the build); from ``ann_min_songs``, once :meth:`build_ann` has run, it answers :meth:`similar`
    through an HNSW graph (usearch) with the same exclusions, falling back to exact search when
    they leave too few of the neighbours it fetched.

    Songs analysed while the index is open are added with :meth:`add`, without rebuilding it.
    Up to :data:`EXACT_CENTRE_BELOW` songs each addition re-centres the index, so it answers
    exactly as one built at once (what ``musicrec similar --folder`` builds); above, the mean is
    the one of the last centring, redone when the index has grown by a quarter: the mean of
    thousands of songs hardly moves with a few more.
    """

    def __init__(self, tracks: Sequence[Track], vectors: np.ndarray, *, centre: bool = True, copy: bool = True,
                 ann_min_songs: int | None = None, ann_store: GraphStore | None = None):
        if len(tracks) != len(vectors):
            raise ValueError(f"{len(tracks)} tracks but {len(vectors)} vectors; they must pair up one to one.")
        # The songs as columns (a million Tracks would take ~0.5 GB); a row of the index is a slot.
        self.songs = tracks if isinstance(tracks, SongTable) else SongTable(tracks, searchable=False)
        if len(self.songs) != len(tracks):
            raise ValueError("Two of the tracks have one id; each song is indexed once.")
        self.tracks = self.songs.tracks()
        copy = copy or not (isinstance(vectors, np.ndarray) and vectors.dtype == np.float32)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            vectors = vectors.reshape(len(self.tracks), -1)
        self._centre = centre
        self._row = _Rows(self.songs)
        self._pair_scores: np.ndarray | None = None
        # Artists and albums as integer codes so exclusions are one vectorised comparison per query.
        self._code_tables: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._artist = _codes(self.songs.folded("artist"), self._code_tables[0])
        self._album = _codes(self.songs.folded("album"), self._code_tables[1])
        self._ann = None  # usearch.index.Index over _unit's rows, once built (see build_ann)
        self._ann_lock = threading.Lock()
        self._ann_rows = 0  # rows of _unit the ANN index holds (songs added later are searched exactly)
        self.ann_min_songs = ANN_MIN_SONGS if ann_min_songs is None else int(ann_min_songs)
        self.ann_builds = 0  # graphs built (not loaded) by build_ann: what tells a load from a build
        self.ann_loaded = False  # whether the graph in use was loaded from the store
        self.ann_seconds: dict[str, float] = {}  # "load" (checksum + map), "build", "save": the last build_ann's
        self._ann_store = ann_store
        self._ann_saved = None  # (path, rows, sha256) of a saved graph over a prefix of these songs
        self._ann_digest = ""  # content_digest of all songs at the build: the name a new graph is saved under
        if ann_store is not None and len(self.tracks) >= self.ann_min_songs:
            # Before the vectors are centred in place: the digest covers the vectors as stored.
            ids = self.songs.ids.copy()
            self._ann_digest = content_digest(ids, vectors, len(self.tracks))
            self._ann_saved = ann_store.find(ids, vectors)
        if len(self.tracks) >= min(LARGE_INDEX_SONGS, self.ann_min_songs):
            # A large library: centre and normalise in place, keep no raw copy (``add`` then keeps
            # the mean of this build; the mean of 50 000 songs hardly moves with a few more).
            self._raw = None
            self.centred = bool(centre)
            unit = vectors if not copy else vectors.copy()
            base = unit.base
            # The library's rows are the start of a larger buffer (its spare rows): keep the whole
            # buffer, so songs added later fit without moving the rows the ANN index refers to.
            whole = base if (not copy and isinstance(base, np.ndarray) and base.ndim == 2 and base.dtype == np.float32
                             and base.shape[1] == unit.shape[1] and base.shape[0] >= len(unit)
                             and base.flags.c_contiguous and base.ctypes.data == unit.ctypes.data) else unit
            self._mean = unit.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32) if centre else None
            if centre:
                unit -= self._mean
            # einsum, not np.linalg.norm: that squares the whole matrix into a temporary (800 MB here).
            norms = np.sqrt(np.einsum("ij,ij->i", unit, unit))[:, np.newaxis]
            np.divide(unit, norms, out=unit, where=norms > 0)
            unit[(norms == 0).reshape(-1)] = 0
            self._unit = whole
            self._centred_at = len(self.tracks)
        else:
            self._raw = vectors.copy() if copy else vectors
            self._recentre()

    def _recentre(self) -> None:
        n = len(self.tracks)
        self.centred = bool(self._centre and n >= CENTRE_MIN_SONGS)
        vectors = self._raw[:n]
        self._mean = vectors.mean(axis=0, keepdims=True) if self.centred else None
        self._centred_at = n
        self._unit = normalise_rows(vectors - self._mean if self.centred else vectors) if n else \
            np.zeros((0, self._raw.shape[1] if self._raw.ndim == 2 and self._raw.shape[1] else 1), np.float32)
        self._pair_scores = None
        with self._ann_lock:
            self._ann, self._ann_rows = None, 0  # its rows were the old unit vectors

    @property
    def approximate(self) -> bool:
        """Whether queries go through the ANN index (built or loaded by :meth:`build_ann`)."""
        return self._ann is not None

    @property
    def wants_ann(self) -> bool:
        """Whether :meth:`build_ann` would give this index a graph (``ann_min_songs`` songs or more)."""
        return len(self.tracks) >= self.ann_min_songs and self._raw is None

    @property
    def ann_graph_path(self):
        """Where :meth:`build_ann` saves a graph of these songs (None without a store)."""
        if self._ann_store is None or not self._ann_digest:
            return None
        return self._ann_store.folder / self._ann_store.name(self._centred_at, self._ann_digest)

    def build_ann(self) -> bool:
        """Give the index its approximate nearest-neighbour graph: load the saved one when it was
        built on these songs (or on all but the last fifth of them, songs a scan added since, which
        are searched exactly beside it), else build it (slow: minutes at a million songs) and save
        it. Run it in a worker; queries are exact until it is done.

        Returns
        -------
        bool
            False if the library is below ``ann_min_songs`` songs (exact search is fast enough).

        Notes
        -----
        A built usearch index refers to this index's unit vectors without copying them
        (``copy=False``), so it costs only its graph (~270 MB at a million songs); a loaded one is
        memory-mapped from its file (graph and the vectors it was built on), so only the pages
        queries touch are read. Songs added after it was built are searched exactly beside it.
        The file is written from this worker, not the engine thread: it is not SQLite, and it is
        written under a temporary name in musicrec's own folder and renamed (see ``ann_store``).
        """
        from usearch.index import Index  # a few MB of native code, loaded only for large libraries

        n = len(self.tracks)
        if not self.wants_ann:
            return False
        options = {"connectivity": ANN_CONNECTIVITY, "expansion_add": ANN_EXPANSION_ADD,
                   "expansion_search": ANN_EXPANSION_SEARCH}
        unit = self._unit
        saved, store = self._ann_saved, self._ann_store
        if saved is not None and store is not None and n < ANN_REUSE_GROWTH * saved[1]:
            started = time.perf_counter()
            ann = store.load(saved, **options)
            self.ann_seconds["load"] = time.perf_counter() - started
            if ann is not None and ann.ndim == unit.shape[1]:
                ann.expansion_search = ANN_EXPANSION_SEARCH
                with self._ann_lock:
                    if unit is self._unit:
                        self._ann, self._ann_rows, self._ann_base = ann, saved[1], unit
                        self.ann_loaded = True
                return self._ann is ann
        rows = self._centred_at  # the songs of the build: their digest names the file
        started = time.perf_counter()
        ann = Index(ndim=unit.shape[1], metric="ip", dtype="f32", **options)
        # One core left to the rest of the app (the window, the scan) while the graph is built.
        ann.add(np.arange(rows, dtype=np.uint64), unit[:rows], copy=False,
                threads=max(1, (os.cpu_count() or 2) - 1))
        self.ann_builds += 1
        self.ann_seconds["build"] = time.perf_counter() - started
        with self._ann_lock:
            if unit is self._unit:  # not re-allocated by add() meanwhile (then the next build covers it)
                self._ann, self._ann_rows, self._ann_base = ann, rows, unit
                self.ann_loaded = False
        if store is not None and self._ann_digest:
            try:
                started = time.perf_counter()
                store.save(ann, rows, self._ann_digest)
                self.ann_seconds["save"] = time.perf_counter() - started
            except (OSError, ValueError, RuntimeError):
                pass  # not saved (disk full, read-only folder): the graph still serves this session
        return self._ann is ann

    @property
    def unit(self) -> np.ndarray:
        """Unit-length (centred) vectors [shape=(n, d)], one row per track."""
        return self._unit[: len(self.tracks)]

    def add(self, track: Track, vector: np.ndarray) -> None:
        """Add a song just analysed, or replace its vector (a changed file analysed again).

        Parameters
        ----------
        track : Track
        vector : np.ndarray [shape=(d,)]
            Same length as the index's vectors.
        """
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if not np.isfinite(vector).all():
            raise ValueError(f"The vector of {track.display_path} holds NaN or infinite numbers; an encoder that "
                             "gives such vectors is broken, and one would spoil every score of the index.")
        n = len(self.tracks)
        if n and vector.size != self.dimension:
            raise ValueError(f"A vector of {vector.size} numbers cannot join an index of {self.dimension}; "
                             "vectors of one encoder all have its embedding size.")
        row = self._row.get(track.id)
        if row is None:
            row = n
            if self._raw is None:  # a large index: unit vectors only, with room left by from_library
                if n == len(self._unit):
                    self._unit = np.concatenate([self._unit, np.zeros((max(1024, n // 4), vector.size), np.float32)])
                    with self._ann_lock:  # the ANN index referred to the old buffer: exact until rebuilt
                        self._ann, self._ann_rows, self._ann_base = None, 0, None
            elif not n:
                self._raw = np.zeros((16, vector.size), np.float32)
                self._unit = np.zeros((16, vector.size), np.float32)
            elif n == len(self._raw):  # room for twice as many: appends stay cheap
                self._raw = np.concatenate([self._raw, np.zeros_like(self._raw)])
                self._unit = np.concatenate([self._unit, np.zeros((len(self._unit), vector.size), np.float32)])
            elif len(self._unit) < len(self._raw):
                self._unit = np.concatenate([self._unit, np.zeros((len(self._raw) - len(self._unit), vector.size),
                                                                  np.float32)])
            self._artist, self._album = with_room(self._artist, row + 1), with_room(self._album, row + 1)
        self.songs.upsert(track)  # a new song's slot is ``row``
        self._artist[row] = _codes([track.artist.casefold()], self._code_tables[0])[0]
        self._album[row] = _codes([track.album.casefold()], self._code_tables[1])[0]
        size = len(self.tracks)
        if self._raw is None:
            # In place, also for a song the ANN graph holds: its edges are the old vector's, a
            # small loss of recall for that one song until the next build.
            self._unit[row] = normalise_rows((vector - self._mean[0] if self.centred else vector)[np.newaxis])[0]
            self._pair_scores = None
            return
        self._raw[row] = vector
        if (self._centre and not self.centred and size >= CENTRE_MIN_SONGS) or \
                (self.centred and (size < EXACT_CENTRE_BELOW or size >= 1.25 * self._centred_at)):
            self._recentre()
        else:
            centred = vector - self._mean[0] if self.centred else vector
            self._unit[row] = normalise_rows(centred[np.newaxis])[0]
            self._pair_scores = None

    @classmethod
    def from_library(
        cls,
        library: Library,
        *,
        encoder_key: str,
        analysis_key: str,
        tracks: Sequence[Track] | None = None,
        under: str | None = None,
        dimension: int | None = None,
        centre: bool = True,
        ann_min_songs: int | None = None,
    ) -> "VectorIndex":
        """Index every vector of one encoder + analysis (of the songs below one folder).

        Parameters
        ----------
        library : Library
        encoder_key, analysis_key : str
            Which vectors.
        tracks : sequence of Track, optional
            The library's tracks, if already read (saves re-reading the list); only these are indexed.
        under : str, optional
            Only the songs below this folder: what the app shows for an open folder, and what
            ``musicrec similar --folder`` searches.
        dimension : int, optional
            The encoder's ``embedding_size``: stored vectors of another length are refused.
        centre, ann_min_songs : optional
            As for the constructor. A library kept in a file gets a :class:`GraphStore` in
            ``<library>.ann/`` for its approximate graph.

        Raises
        ------
        StoredVectorsError
            If the stored vectors do not all have one length (or not ``dimension``):
            the library file was damaged or edited. The message says how to start afresh.
        """
        try:
            ids, vectors = library.vectors(encoder_key=encoder_key, analysis_key=analysis_key, dimension=dimension,
                                           under=under, spare_rows=SPARE_ROWS)
        except ValueError as err:  # a row's bytes are not one vector of the expected length
            raise _bad_vectors(library, encoder_key, analysis_key, dimension, str(err)) from None
        if len(ids) and (vectors.ndim != 2 or vectors.shape[1] == 0
                         or (dimension is not None and vectors.shape[1] != dimension)):
            raise _bad_vectors(library, encoder_key, analysis_key, dimension,
                               f"{len(ids)} vectors of {vectors.shape[-1]} numbers each")
        songs, keep = _songs_of(library, ids, tracks=tracks, under=under)
        path = getattr(library, "path", None)
        store = None
        if path is not None and os.path.isfile(path) and len(keep) >= (ann_min_songs or ANN_MIN_SONGS):
            params = f"usearch-ip-f32-M{ANN_CONNECTIVITY}-ef{ANN_EXPANSION_ADD}"
            store = GraphStore.for_library(path, encoder_key=encoder_key, analysis_key=analysis_key, under=under,
                                           params=params)
        options = {"centre": centre, "ann_min_songs": ann_min_songs, "ann_store": store}
        if len(keep) == len(ids) and len(keep):
            # Every vector has its track (the usual case): the library's array, and the room it
            # leaves after its rows for songs a scan adds, becomes the index's without a copy.
            return cls(songs, vectors, copy=False, **options)
        return cls(songs, vectors[keep] if len(keep) else np.zeros((0, dimension or 1), np.float32), **options)

    def __len__(self) -> int:
        return len(self.tracks)

    def pair_scores(self) -> np.ndarray:
        """Sorted similarities of song pairs of this library (all pairs, or a fixed random sample).

        Returns
        -------
        np.ndarray [shape=(m,)], float32, ascending
        """
        if self._pair_scores is None:
            n = len(self.tracks)
            if n < 2:
                self._pair_scores = np.zeros(0, np.float32)
            elif n * (n - 1) // 2 <= PAIR_SAMPLE:
                first, second = np.triu_indices(n, k=1)
                self._pair_scores = np.sort(np.einsum("ij,ij->i", self.unit[first], self.unit[second]))
            else:
                rng = np.random.default_rng(0)  # the same library always gives the same numbers
                first = rng.integers(0, n, PAIR_SAMPLE)
                second = (first + rng.integers(1, n, PAIR_SAMPLE)) % n  # never a song with itself
                self._pair_scores = np.sort(np.einsum("ij,ij->i", self.unit[first], self.unit[second]))
        return self._pair_scores

    def closeness(self, score: float) -> float:
        """Share of this library's song pairs less similar than ``score`` (NaN with under two songs)."""
        pairs = self.pair_scores()
        if not len(pairs):
            return float("nan")
        return float(np.searchsorted(pairs, score, side="left")) / len(pairs)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._row

    @property
    def dimension(self) -> int:
        """Numbers per vector."""
        stored = self._unit if self._raw is None else self._raw
        return int(stored.shape[1]) if stored.ndim == 2 else 0

    def row_of(self, track_id: int) -> int:
        """The row of ``unit`` that holds a song (KeyError if it is not indexed)."""
        return self._row[track_id]

    def query_units(self, vectors: np.ndarray) -> np.ndarray:
        """Raw vectors of this encoder (a passage's, a moment's) in the index's space: centred like it, unit length.

        Parameters
        ----------
        vectors : np.ndarray [shape=(m, d)]

        Returns
        -------
        np.ndarray [shape=(m, d)], float32
        """
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        return normalise_rows(vectors - self._mean if self.centred else vectors)

    def query_unit(self, vector: np.ndarray) -> np.ndarray:
        """One raw vector in the index's space [shape=(d,)] (see :meth:`query_units`)."""
        return self.query_units(np.asarray(vector).reshape(1, -1))[0]

    def allowed(self, track_id: int, *, exclude_same_artist: bool = False, exclude_same_album: bool = False,
                exclude_ids: Iterable[int] = ()) -> np.ndarray:
        """Which songs may be recommended for ``track_id`` [shape=(n,)], bool: not itself, not excluded."""
        row = self._row[track_id]
        allowed = np.ones(len(self.tracks), dtype=bool)
        allowed[row] = False
        anchor = self.tracks[row]
        if exclude_same_artist and anchor.artist:
            allowed &= self._artist != self._artist[row]
        if exclude_same_album and anchor.album:
            allowed &= self._album != self._album[row]
        for other in exclude_ids:
            position = self._row.get(other)
            if position is not None:
                allowed[position] = False
        return allowed

    def similar(
        self,
        track_id: int,
        *,
        k: int = 2,
        exclude_same_artist: bool = False,
        exclude_same_album: bool = False,
        drop_duplicates: bool = True,
        exclude_ids: Iterable[int] = (),
    ) -> list[Recommendation]:
        """The ``k`` songs nearest to ``track_id``, best first, the anchor excluded.

        ``exclude_ids`` are never recommended (songs a radio has played).

        Raises
        ------
        KeyError
            If the anchor has no vector (not analysed, or failed).
        """
        if track_id not in self._row:
            raise KeyError(f"Track {track_id} has no vector for this encoder; scan its folder first.")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        row = self._row[track_id]
        take = k * 4 if drop_duplicates else k
        with self._ann_lock:
            ann, ann_rows = self._ann, self._ann_rows
        if ann is not None:
            found = self._similar_approximate(ann, ann_rows, row, k=k, take=take, drop_duplicates=drop_duplicates,
                                              exclude_same_artist=exclude_same_artist,
                                              exclude_same_album=exclude_same_album, exclude_ids=exclude_ids)
            if found is not None:
                return found
        # einsum, not BLAS: a multi-threaded sgemv on a busy 2-core machine is 10x slower than one thread.
        scores = np.einsum("ij,j->i", self.unit, self.unit[row])
        allowed = self.allowed(track_id, exclude_same_artist=exclude_same_artist,
                               exclude_same_album=exclude_same_album, exclude_ids=exclude_ids)
        if drop_duplicates:
            allowed &= scores < DUPLICATE_SIMILARITY
        candidates = np.flatnonzero(allowed)
        if candidates.size == 0:
            return []
        take = min(take, candidates.size)
        top = candidates[np.argpartition(-scores[candidates], take - 1)[:take]]
        return self._choose(top, scores[top], k, drop_duplicates)

    def distinct_rows(self, rows: Sequence[int], k: int) -> list[int]:
        """The first ``k`` of ``rows`` (best first) that are not near-copies of an earlier one kept.

        Parameters
        ----------
        rows : sequence of int
            Rows of :attr:`unit`, in order of preference.
        """
        chosen: list[int] = []
        for row in rows:
            if any(float(self.unit[row] @ self.unit[c]) >= DUPLICATE_SIMILARITY for c in chosen):
                continue
            chosen.append(int(row))
            if len(chosen) == k:
                break
        return chosen

    def _choose(self, top: np.ndarray, top_scores: np.ndarray, k: int, drop_duplicates: bool) -> list[Recommendation]:
        """The best ``k`` of candidate rows (their scores beside them), near-copies of a chosen one left out."""
        order = np.argsort(-top_scores, kind="stable")
        top, top_scores = top[order], top_scores[order]
        # Also drop results that duplicate an already chosen one (two copies of a third song).
        chosen = self.distinct_rows(top, k) if drop_duplicates else [int(i) for i in top[:k]]
        scores = dict(zip(top.tolist(), top_scores.tolist()))
        return [Recommendation(self.tracks[i], float(scores[i]), self.closeness(float(scores[i]))) for i in chosen]

    def _similar_approximate(self, ann, ann_rows: int, row: int, *, k: int, take: int, drop_duplicates: bool,
                             exclude_same_artist: bool, exclude_same_album: bool,
                             exclude_ids: Iterable[int]) -> list[Recommendation] | None:
        """:meth:`similar` through the ANN index: over-fetch, then the exclusions; None when too few
        survive them (the caller then searches exactly)."""
        query = self.unit[row]
        fetch = min(ann_rows, max(64, take * ANN_OVERFETCH))
        keys = np.asarray(ann.search(query, fetch, threads=1).keys, dtype=np.int64)
        # Songs added since the ANN index was built are compared exactly (a scan adds them one by one).
        candidates = np.concatenate([keys, np.arange(ann_rows, len(self.tracks), dtype=np.int64)])
        scores = np.einsum("ij,j->i", self.unit[candidates], query)
        allowed = candidates != row
        anchor = self.tracks[row]
        if exclude_same_artist and anchor.artist:
            allowed &= self._artist[candidates] != self._artist[row]
        if exclude_same_album and anchor.album:
            allowed &= self._album[candidates] != self._album[row]
        excluded = {self._row[i] for i in exclude_ids if i in self._row}
        if excluded:
            allowed &= ~np.isin(candidates, np.fromiter(excluded, np.int64, len(excluded)))
        if drop_duplicates:
            allowed &= scores < DUPLICATE_SIMILARITY
        if np.count_nonzero(allowed) < take and len(keys) == fetch < ann_rows:
            return None  # the exclusions removed most of the neighbourhood: exact search finds the rest
        candidates, scores = candidates[allowed], scores[allowed]
        if not len(candidates):
            return []
        top = np.argpartition(-scores, min(take, len(scores)) - 1)[:take]
        return self._choose(candidates[top], scores[top], k, drop_duplicates)


def _bad_vectors(library: Library, encoder_key: str, analysis_key: str, dimension: int | None,
                 found: str) -> StoredVectorsError:
    expected = f"{dimension} numbers each" if dimension is not None else "vectors of one length"
    path = getattr(library, "path", "the library file")
    return StoredVectorsError(
        f"The song vectors stored in {path} for encoder {encoder_key} ({analysis_key}) are damaged: "
        f"found {found}; expected {expected}. Run 'musicrec scan FOLDER' to analyse those songs again; "
        "your music files are not touched."
    )


def _songs_of(library: Library, ids: np.ndarray, *, tracks: Sequence[Track] | None,
              under: str | None) -> tuple[SongTable, np.ndarray]:
    """The songs of ``ids`` (ascending) that are tracks (of ``tracks``, or the library's below ``under``),
    in the order of ``ids``, and which rows of ``ids`` they are."""
    if tracks is not None:
        by_id = {t.id: t for t in tracks}
        keep = np.fromiter((i for i, track_id in enumerate(ids.tolist()) if track_id in by_id), np.int64)
        return SongTable((by_id[int(ids[i])] for i in keep), searchable=False), keep
    songs = SongTable(searchable=False)
    songs.reserve(len(ids))
    for chunk in library.iter_tracks(under=under):  # by id, as ``ids`` are: read in chunks, never all as Tracks
        chunk_ids = np.fromiter((t.id for t in chunk), np.int64, len(chunk))
        songs.extend([t for t, has in zip(chunk, (positions_in(ids, chunk_ids) >= 0).tolist()) if has])
    songs.trim()
    return songs, np.flatnonzero(positions_in(songs.ids, ids) >= 0)


class _Rows:
    """Track id → row of the index (its songs' slots), read like a dict."""

    def __init__(self, songs: SongTable):
        self._songs = songs

    def get(self, track_id: int, default=None):
        slot = self._songs.slot_of(track_id)
        return default if slot is None else slot

    def __contains__(self, track_id: int) -> bool:
        return self._songs.slot_of(track_id) is not None

    def __getitem__(self, track_id: int) -> int:
        slot = self._songs.slot_of(track_id)
        if slot is None:
            raise KeyError(track_id)
        return slot


def _codes(values: list[str], table: dict[str, int]) -> np.ndarray:
    """Integer code per value; equal strings share a code (``table`` keeps the codes given so far)."""
    return np.fromiter((table.setdefault(v, len(table)) for v in values), dtype=np.int64, count=len(values))
