"""The approximate index of large libraries: recall against exact search, exclusions, songs added later.

A real usearch index on generated vectors; ``ANN_MIN_SONGS`` is lowered so a few thousand songs
take that path (the code is the same at a million).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from musicrec_gui.core import recommend
from musicrec_gui.core.library import Track
from musicrec_gui.core.recommend import VectorIndex

pytest.importorskip("usearch")

N = 4000


def _songs(n: int = N, seed: int = 0):
    """Vectors in 40 styles with a few directions of variation each; an artist's songs share a style."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, (40, 64))
    directions = 0.4 * rng.standard_normal((40, 6, 64))
    style = rng.integers(0, 40, n)
    vectors = centres[style] + np.einsum("nk,nkd->nd", rng.standard_normal((n, 6)), directions[style])
    vectors = np.maximum(vectors + 0.05 * rng.standard_normal(vectors.shape), 0).astype(np.float32)
    tracks = [Track(i + 1, f"/music/{i}.flac", 1, 1, f"Song {i}", f"Artist {style[i]}-{i % 12}",
                    f"Album {style[i]}-{i % 12}-{i % 2}", 100.0, "done", "") for i in range(n)]
    return tracks, vectors


@pytest.fixture
def large(monkeypatch):
    monkeypatch.setattr(recommend, "ANN_MIN_SONGS", 1000)
    tracks, vectors = _songs()
    # As from_library reads them: rows at the start of a buffer with room for songs added later.
    buffer = np.zeros((N + recommend.SPARE_ROWS, vectors.shape[1]), np.float32)
    buffer[:N] = vectors
    approximate = VectorIndex(tracks, buffer[:N], copy=False)
    assert approximate.build_ann() and approximate.approximate
    exact = VectorIndex(tracks, vectors)  # never given an ANN index
    return approximate, exact


def test_small_libraries_stay_exact():
    tracks, vectors = _songs(500)
    index = VectorIndex(tracks, vectors)
    assert not index.build_ann() and not index.approximate


def test_recall_at_10_with_exclusions_against_exact(large):
    approximate, exact = large
    found = 0
    for track_id in range(1, N + 1, 40):
        options = {"k": 10, "exclude_same_artist": True, "exclude_same_album": True}
        a = {r.track.id for r in approximate.similar(track_id, **options)}
        e = {r.track.id for r in exact.similar(track_id, **options)}
        found += len(a & e)
    assert found / (10 * len(range(1, N + 1, 40))) >= 0.98


def test_exclusions_are_honoured(large):
    approximate, _ = large
    for track_id in range(1, N + 1, 97):
        anchor = approximate.tracks[approximate.row_of(track_id)]
        played = [r.track.id for r in approximate.similar(track_id, k=5)]
        results = approximate.similar(track_id, k=10, exclude_same_artist=True, exclude_same_album=True,
                                      exclude_ids=played)
        assert len(results) == 10
        for r in results:
            assert r.track.id != track_id and r.track.id not in played
            assert r.track.artist.casefold() != anchor.artist.casefold()
            assert r.track.album.casefold() != anchor.album.casefold()


def test_falls_back_to_exact_when_exclusions_empty_the_neighbourhood(large):
    approximate, exact = large
    track_id = 7
    # Exclude every song the ANN index would fetch: only exact search can still answer.
    fetched = [r.track.id for r in exact.similar(track_id, k=600, drop_duplicates=False)]
    a = approximate.similar(track_id, k=10, exclude_ids=fetched)
    e = exact.similar(track_id, k=10, exclude_ids=fetched)
    assert [r.track.id for r in a] == [r.track.id for r in e]


def test_songs_added_after_the_build_are_found(large):
    approximate, _ = large
    anchor_row = approximate.row_of(11)
    twin = Track(N + 1, "/music/new.flac", 1, 1, "New", "Someone", "New album", 100.0, "done", "")
    # Raw vector close to song 11's: the index's mean plus a slightly moved unit vector.
    vector = approximate.unit[anchor_row] * 3 + approximate._mean[0] + 0.001
    approximate.add(twin, vector)
    assert approximate.approximate  # the room left after the rows took it: the graph still holds
    assert approximate.similar(11, k=1, drop_duplicates=False)[0].track.id == N + 1


def test_outgrowing_the_room_drops_to_exact_search(large):
    approximate, exact = large
    room = len(approximate._unit) - len(approximate)
    tracks, vectors = _songs(room + 1, seed=3)
    for track, vector in zip(tracks, vectors):
        approximate.add(dataclasses.replace(track, id=track.id + 10 * N), vector)
    assert not approximate.approximate
    assert len(approximate.similar(5, k=10, exclude_same_artist=True)) == 10
