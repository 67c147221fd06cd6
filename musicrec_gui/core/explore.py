"""Exploring beyond one song's neighbours: where a song's analysed moments lie, songs like a
passage, why two songs match, a path from one song to another, and a radio's next song.

Everything here works on vectors the library already holds (each song's per-patch vectors are
stored beside its song vector), so none of it analyses audio again. No Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from musicrec_gui.core import features as features_mod
from musicrec_gui.core.audio import MAX_DECODE_SECONDS
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.errors import MusicrecError
from musicrec_gui.core.library import Library, Track
from musicrec_gui.core.recommend import DUPLICATE_SIMILARITY, Recommendation, VectorIndex, normalise_rows

# Songs ranked by their song vector before their moments are compared with a passage: enough that a
# song with one matching moment but a different whole is still found, few enough to stay < 100 ms.
PASSAGE_SHORTLIST = 300
# Songs nearest each waypoint of a path that may be its step there.
PATH_SHORTLIST = 512


class ExploreError(MusicrecError):
    """A passage, match or path was asked of songs that cannot give one (not analysed, too few songs)."""


# -- where a song's analysed moments lie --------------------------------------------------------
def patch_spans(*, n_patches: int, duration: float, offset_seconds: float, settings: AnalysisSettings,
                features: FeatureConfig) -> np.ndarray:
    """Start and end (seconds into the song) of each stored patch vector of a song.

    The positions are those the scan analysed (``features.spread_window_starts`` for spread
    analysis, ``window_starts`` for whole songs, consecutive slices from ``offset_seconds`` for
    an excerpt), recomputed from the song's length. Where the count does not match what was
    stored (a file cut short, decoded as a stream), the patches are spread evenly instead.

    Parameters
    ----------
    n_patches : int
        How many patch vectors the library holds for the song.
    duration : float
        The song's length (``Track.duration``).
    offset_seconds : float
        Where the analysed audio began (excerpt analysis).
    settings : AnalysisSettings
    features : FeatureConfig
        The encoder's front end (its sample rate and slice length).

    Returns
    -------
    np.ndarray [shape=(n_patches, 2)], float64
    """
    sr, length = features.sample_rate, features.slice_seconds
    n_samples = int(round(min(max(duration, 0.0), MAX_DECODE_SECONDS) * sr))
    starts = None
    if settings.mode == "spread" and n_samples:
        starts = (features_mod.spread_window_starts(n_samples, config=features, patches=settings.patches)
                  + features.n_fft // 2) / sr
    elif settings.mode == "full" and n_samples:
        starts = (features_mod.window_starts(n_samples, config=features, max_slices=settings.max_slices)
                  + features.n_fft // 2) / sr
    elif settings.mode == "excerpt":
        starts = offset_seconds + np.arange(n_patches) * length
    if starts is None or len(starts) != n_patches:
        last = max(duration - length, 0.0)
        starts = np.linspace(0.0, last, n_patches) if n_patches > 1 else np.zeros(n_patches)
    starts = np.maximum(np.asarray(starts, dtype=np.float64), 0.0)
    return np.stack([starts, starts + length], axis=1) if n_patches else np.zeros((0, 2))


def patches_in(spans: np.ndarray, start: float, end: float) -> np.ndarray:
    """Indices of the patches that a passage ``start``–``end`` (seconds) covers.

    A patch counts when at least half of it lies in the passage; when none does, the patch
    nearest to the passage's middle stands for it (the passage fell between analysed moments).

    Returns
    -------
    np.ndarray [shape=(m,)], int64, m >= 1 when there are spans
    """
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    if not len(spans):
        return np.zeros(0, np.int64)
    start, end = min(start, end), max(start, end)
    overlap = np.clip(np.minimum(spans[:, 1], end) - np.maximum(spans[:, 0], start), 0.0, None)
    inside = np.flatnonzero(overlap >= 0.5 * (spans[:, 1] - spans[:, 0]))
    if inside.size:
        return inside
    middle = 0.5 * (start + end)
    return np.array([int(np.argmin(np.abs(spans.mean(axis=1) - middle)))], dtype=np.int64)


# -- songs like a passage ------------------------------------------------------------------------
@dataclass(frozen=True)
class PassageMatch(Recommendation):
    """A song with a moment like the passage: ``moment`` is where (seconds into that song)."""

    moment: float = 0.0


def passage_neighbours(index: VectorIndex, library: Library, *, anchor_id: int, passage: np.ndarray, k: int,
                       encoder_key: str, analysis_key: str, exclude_same_artist: bool = False,
                       exclude_same_album: bool = False, shortlist: int = PASSAGE_SHORTLIST,
                       settings: AnalysisSettings | None = None,
                       features: FeatureConfig | None = None) -> list[PassageMatch]:
    """Songs with a moment most like a passage of the anchor, best first.

    The passage's vector (the mean of its patch vectors) is compared with every song vector to
    shortlist ``shortlist`` songs; each of those is then scored by its single best patch, so a
    song that has a moment like the passage ranks above one that is only alike on average.

    Parameters
    ----------
    index : VectorIndex
        The songs searched (the anchor is left out).
    library : Library
        Where the shortlisted songs' patch vectors are read.
    anchor_id : int
    passage : np.ndarray [shape=(m, d)]
        Raw patch vectors of the passage (``Library.slice_vectors`` rows).
    k : int
    encoder_key, analysis_key : str
    exclude_same_artist, exclude_same_album : bool
        As for :meth:`VectorIndex.similar`.
    shortlist : int
    settings, features : optional
        Given both, each match says where its best moment is (``PassageMatch.moment``).

    Returns
    -------
    list of PassageMatch
        ``score`` is the cosine of the passage and the song's best moment (centred like the index).
    """
    passage = np.asarray(passage, dtype=np.float32).reshape(-1, index.dimension)
    if not len(passage):
        raise ExploreError("The passage holds no analysed moment; select part of an analysed song.")
    query = index.query_unit(passage.mean(axis=0))
    allowed = index.allowed(anchor_id, exclude_same_artist=exclude_same_artist, exclude_same_album=exclude_same_album)
    # Copies of the anchor (another file of the same recording) hold the passage itself: not songs like it.
    allowed &= np.einsum("ij,j->i", index.unit, index.unit[index.row_of(anchor_id)]) < DUPLICATE_SIMILARITY
    scores = np.einsum("ij,j->i", index.unit, query)
    candidates = np.flatnonzero(allowed)
    if not candidates.size:
        return []
    take = min(max(shortlist, k), candidates.size)
    short = candidates[np.argpartition(-scores[candidates], take - 1)[:take]]
    ids = [index.tracks[i].id for i in short]
    stored = library.slice_vectors_of(ids, encoder_key=encoder_key, analysis_key=analysis_key)
    best_score = np.full(len(short), -np.inf, np.float32)
    best_patch = np.zeros(len(short), np.int64)
    for j, track_id in enumerate(ids):
        found = stored.get(track_id)
        if found is None or found[0].shape[1] != index.dimension:
            best_score[j] = scores[short[j]]  # no patches stored: fall back on the whole song
            continue
        cos = index.query_units(found[0]) @ query
        best_patch[j] = int(np.argmax(cos))
        best_score[j] = cos[best_patch[j]]
    order = np.argsort(-best_score, kind="stable")
    position = {int(short[j]): int(j) for j in order}
    results: list[PassageMatch] = []
    for row in index.distinct_rows(short[order], k):  # copies of one recording: the first only
        j = position[row]
        track = index.tracks[row]
        moment = 0.0
        found = stored.get(track.id)
        if settings is not None and features is not None and found is not None:
            spans = patch_spans(n_patches=len(found[0]), duration=track.duration, offset_seconds=found[1],
                                settings=settings, features=features)
            moment = float(spans[best_patch[j], 0]) if len(spans) else 0.0
        results.append(PassageMatch(track, float(best_score[j]), float("nan"), moment))
    return results


# -- why two songs are alike ---------------------------------------------------------------------
@dataclass(frozen=True)
class MomentPair:
    """A moment of one song and the moment of another most like it."""

    first: int  # patch index in the first song
    second: int  # patch index in the second song
    similarity: float  # cosine of the two patch vectors, centred like the index


def closest_moments(first: np.ndarray, second: np.ndarray, *, index: VectorIndex | None = None,
                    count: int = 3) -> list[MomentPair]:
    """The ``count`` best-matching pairs of moments of two songs, best first.

    Each moment of either song is used at most once, so the pairs show different places rather
    than one loud chorus matched against everything.

    Parameters
    ----------
    first : np.ndarray [shape=(m, d)]
    second : np.ndarray [shape=(n, d)]
        Raw patch vectors of the two songs.
    index : VectorIndex or None
        Compare after centring on this library's mean, as recommendations are; None: raw cosine.
    count : int

    Returns
    -------
    list of MomentPair
    """
    first = np.asarray(first, dtype=np.float32)
    second = np.asarray(second, dtype=np.float32)
    if first.ndim != 2 or second.ndim != 2 or not len(first) or not len(second):
        return []
    if first.shape[1] != second.shape[1]:
        raise ExploreError(f"The two songs' moments have {first.shape[1]} and {second.shape[1]} numbers; "
                           "they were analysed by different encoders. Scan the folder again.")
    if index is not None:
        a, b = index.query_units(first), index.query_units(second)
    else:
        a, b = normalise_rows(first), normalise_rows(second)
    similarity = a @ b.T
    pairs: list[MomentPair] = []
    used_first, used_second = set(), set()
    for flat in np.argsort(-similarity, axis=None, kind="stable"):
        i, j = divmod(int(flat), similarity.shape[1])
        if i in used_first or j in used_second:
            continue
        used_first.add(i)
        used_second.add(j)
        pairs.append(MomentPair(i, j, float(similarity[i, j])))
        if len(pairs) == count:
            break
    return pairs


# -- a path from one song to another -------------------------------------------------------------
@dataclass(frozen=True)
class PathStep:
    track: Track
    from_previous: float  # cosine to the song before it (centred); NaN for the first
    to_end: float  # cosine to the end song


def song_path(index: VectorIndex, *, start_id: int, end_id: int, length: int,
              exclude_ids: Iterable[int] = (), smoothness: float = 1.0) -> list[PathStep]:
    """A playlist of ``length`` songs that moves step by step from one song to another.

    The straight way from the start's vector to the end's (spherical interpolation of the
    centred unit vectors) gives one waypoint per step; each step takes the unused song that is
    nearest to its waypoint and to the song before it (``smoothness`` weighs the second), so
    every step is near the previous one while the path keeps moving toward the end: where the
    library has such a song, each step is nearer the end than the one before.

    Parameters
    ----------
    index : VectorIndex
    start_id, end_id : int
        Track ids of the first and last songs; both must be in ``index``.
    length : int
        Songs in the path, start and end included (2 to 100).
    exclude_ids : iterable of int
        Songs never to use (already played, hidden).
    smoothness : float
        0: each step only follows the straight way; higher: each step also stays near the one before.

    Returns
    -------
    list of PathStep [length]
        Fewer when the library holds fewer usable songs.

    Raises
    ------
    ExploreError
        If either song is not analysed, they are the same song, or ``length`` is out of range.
    """
    for name, track_id in (("start", start_id), ("end", end_id)):
        if track_id not in index:
            raise ExploreError(f"The {name} song has no vector for the current encoder and analysis; "
                               "wait until the scan has analysed it, or pick another song.")
    if start_id == end_id:
        raise ExploreError("The start and the end are the same song; pick two different songs.")
    if not 2 <= length <= 100:
        raise ExploreError(f"A path holds 2 to 100 songs, not {length}.")
    unit = index.unit
    first, last = index.row_of(start_id), index.row_of(end_id)
    # Every waypoint lies in the plane of the start and the end, so its similarity to each song is
    # a mix of the song's similarity to those two: two products for the whole path, not one per step.
    to_start = np.einsum("ij,j->i", unit, unit[first])
    to_end = np.einsum("ij,j->i", unit, unit[last])
    angle = float(np.arccos(np.clip(to_start[last], -1.0, 1.0)))
    fractions = np.linspace(0.0, 1.0, length)[1:-1]
    if angle < 1e-6:
        mix = np.stack([np.ones_like(fractions), np.zeros_like(fractions)], axis=1)
    else:
        mix = np.stack([np.sin((1 - fractions) * angle), np.sin(fractions * angle)], axis=1) / np.sin(angle)
    free = (to_start < DUPLICATE_SIMILARITY) & (to_end < DUPLICATE_SIMILARITY)  # copies are not steps
    free[[first, last]] = False
    for track_id in exclude_ids:
        if track_id in index:
            free[index.row_of(track_id)] = False
    # Each step chooses among the songs nearest its waypoint: the rest could only win on nearness
    # to the step before, and the shortlist keeps a path of 100 000 songs well under 100 ms.
    allowed = np.flatnonzero(free)
    shortlist: set[int] = set()
    for c_start, c_end in mix:
        to_waypoint = c_start * to_start[allowed] + c_end * to_end[allowed]
        take = min(PATH_SHORTLIST, allowed.size)
        if take:
            shortlist.update(allowed[np.argpartition(-to_waypoint, take - 1)[:take]].tolist())
    rows_of = np.array(sorted(shortlist), dtype=np.int64)
    near = unit[rows_of]
    usable = np.ones(len(rows_of), dtype=bool)
    rows = [first]
    for c_start, c_end in mix:
        candidates = np.flatnonzero(usable)
        if not candidates.size:
            break
        # Progress: a step is nearer the end than the song before it, wherever the library allows.
        onward = candidates[to_end[rows_of[candidates]] > to_end[rows[-1]]]
        if onward.size:
            candidates = onward
        picked = rows_of[candidates]
        score = c_start * to_start[picked] + c_end * to_end[picked] + smoothness * (near[candidates] @ unit[rows[-1]])
        local = int(candidates[int(np.argmax(score))])
        rows.append(int(rows_of[local]))
        usable[local] = False
        usable &= near @ near[local] < DUPLICATE_SIMILARITY
    rows.append(last)
    steps = []
    for position, row in enumerate(rows):
        before = float(unit[row] @ unit[rows[position - 1]]) if position else float("nan")
        steps.append(PathStep(index.tracks[row], before, float(to_end[row])))
    return steps


# -- radio ---------------------------------------------------------------------------------------
def next_songs(index: VectorIndex, *, current_id: int, avoid: Iterable[int], k: int,
               exclude_same_artist: bool = False, exclude_same_album: bool = False) -> list[Recommendation]:
    """The ``k`` songs nearest to ``current_id`` that a radio or a player's queue may play next.

    Songs in ``avoid`` (played or already queued) are never chosen, nor other files of the same
    recording as one of them (near-identical vectors); the same exclusions as the
    recommendations apply. Best first; fewer than ``k`` (or none) when the library runs out.
    """
    avoid = [i for i in avoid if i in index]
    excluded = set(avoid)
    if avoid:  # other files of a recording already played are that recording again
        rows = [index.row_of(i) for i in avoid]
        copies = (index.unit @ index.unit[rows].T >= DUPLICATE_SIMILARITY).any(axis=1)
        excluded.update(index.tracks[i].id for i in np.flatnonzero(copies))
    return index.similar(current_id, k=k, exclude_same_artist=exclude_same_artist,
                         exclude_same_album=exclude_same_album, exclude_ids=excluded)


def radio_next(index: VectorIndex, *, current_id: int, played: Sequence[int], exclude_same_artist: bool = False,
               exclude_same_album: bool = False) -> Recommendation | None:
    """The song a radio plays after ``current_id``: its nearest song not played yet.

    The same exclusions as the recommendations apply. None when every song has been played.
    """
    found = next_songs(index, current_id=current_id, avoid=played, k=1, exclude_same_artist=exclude_same_artist,
                       exclude_same_album=exclude_same_album)
    return found[0] if found else None
