"""Nearest songs by cosine similarity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from musicrec_gui.core.library import Library, LibraryError, Track

# Two files whose vectors agree this closely are taken to be the same recording.
DUPLICATE_SIMILARITY = 0.9995


class StoredVectorsError(LibraryError):
    """The library's song vectors for one encoder do not all have the encoder's length."""


# Below this many songs the library's mean is too noisy to centre on.
CENTRE_MIN_SONGS = 10
# Pairs of songs sampled to tell how close a pair is compared with the rest of the library.
PAIR_SAMPLE = 20_000


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
    """

    def __init__(self, tracks: Sequence[Track], vectors: np.ndarray, *, centre: bool = True):
        if len(tracks) != len(vectors):
            raise ValueError(f"{len(tracks)} tracks but {len(vectors)} vectors; they must pair up one to one.")
        self.tracks = list(tracks)
        vectors = np.asarray(vectors, dtype=np.float32)
        self.centred = bool(centre and len(vectors) >= CENTRE_MIN_SONGS)
        if self.centred:
            vectors = vectors - vectors.mean(axis=0, keepdims=True)
        self.unit = normalise_rows(vectors) if len(vectors) else np.zeros((0, 1), np.float32)
        self._row = {t.id: i for i, t in enumerate(self.tracks)}
        self._pair_scores: np.ndarray | None = None
        # Artists and albums as integer codes so exclusions are one vectorised comparison per query.
        self._artist = _codes([t.artist.casefold() for t in self.tracks])
        self._album = _codes([t.album.casefold() for t in self.tracks])

    @classmethod
    def from_library(
        cls,
        library: Library,
        *,
        encoder_key: str,
        analysis_key: str,
        tracks: Sequence[Track] | None = None,
        dimension: int | None = None,
        centre: bool = True,
    ) -> "VectorIndex":
        """Index every vector of one encoder + analysis.

        Parameters
        ----------
        library : Library
        encoder_key, analysis_key : str
            Which vectors.
        tracks : sequence of Track, optional
            The library's tracks, if already read (saves re-reading the list).
        dimension : int, optional
            The encoder's ``embedding_size``: stored vectors of another length are refused.
        centre : bool
            As for the constructor.

        Raises
        ------
        StoredVectorsError
            If the stored vectors do not all have one length (or not ``dimension``):
            the library file was damaged or edited. The message says how to start afresh.
        """
        try:
            ids, vectors = library.vectors(encoder_key=encoder_key, analysis_key=analysis_key, dimension=dimension)
        except ValueError as err:  # a row's bytes are not one vector of the expected length
            raise _bad_vectors(library, encoder_key, analysis_key, dimension, str(err)) from None
        if len(ids) and (vectors.ndim != 2 or vectors.shape[1] == 0
                         or (dimension is not None and vectors.shape[1] != dimension)):
            raise _bad_vectors(library, encoder_key, analysis_key, dimension,
                               f"{len(ids)} vectors of {vectors.shape[-1]} numbers each")
        by_id = {t.id: t for t in (library.tracks() if tracks is None else tracks)}
        keep = [i for i, track_id in enumerate(ids) if int(track_id) in by_id]
        return cls([by_id[int(ids[i])] for i in keep], vectors[keep] if len(keep) else np.zeros((0, 1)),
                   centre=centre)

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

    def similar(
        self,
        track_id: int,
        *,
        k: int = 2,
        exclude_same_artist: bool = False,
        exclude_same_album: bool = False,
        drop_duplicates: bool = True,
    ) -> list[Recommendation]:
        """The ``k`` songs nearest to ``track_id``, best first, the anchor excluded.

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
        # einsum, not BLAS: a multi-threaded sgemv on a busy 2-core machine is 10x slower than one thread.
        scores = np.einsum("ij,j->i", self.unit, self.unit[row])
        allowed = np.ones(len(scores), dtype=bool)
        allowed[row] = False
        anchor = self.tracks[row]
        if exclude_same_artist and anchor.artist:
            allowed &= self._artist != self._artist[row]
        if exclude_same_album and anchor.album:
            allowed &= self._album != self._album[row]
        if drop_duplicates:
            allowed &= scores < DUPLICATE_SIMILARITY
        candidates = np.flatnonzero(allowed)
        if candidates.size == 0:
            return []
        take = min(k * 4 if drop_duplicates else k, candidates.size)
        top = candidates[np.argpartition(-scores[candidates], take - 1)[:take]]
        top = top[np.argsort(-scores[top], kind="stable")]
        chosen: list[int] = []
        for index in top:
            # Also drop results that duplicate an already chosen one (two copies of a third song).
            if drop_duplicates and any(float(self.unit[index] @ self.unit[c]) >= DUPLICATE_SIMILARITY for c in chosen):
                continue
            chosen.append(int(index))
            if len(chosen) == k:
                break
        return [Recommendation(self.tracks[i], float(scores[i]), self.closeness(float(scores[i]))) for i in chosen]


def _bad_vectors(library: Library, encoder_key: str, analysis_key: str, dimension: int | None,
                 found: str) -> StoredVectorsError:
    expected = f"{dimension} numbers each" if dimension is not None else "vectors of one length"
    path = getattr(library, "path", "the library file")
    return StoredVectorsError(
        f"The song vectors stored in {path} for encoder {encoder_key} ({analysis_key}) are damaged: "
        f"found {found}; expected {expected}. Run 'musicrec scan FOLDER' to analyse those songs again; "
        "your music files are not touched."
    )


def _codes(values: list[str]) -> np.ndarray:
    """Integer code per value; equal strings share a code."""
    table: dict[str, int] = {}
    return np.fromiter((table.setdefault(v, len(table)) for v in values), dtype=np.int64, count=len(values))
