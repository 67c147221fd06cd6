"""The approximate index of large libraries: recall against exact search, exclusions, songs added later.

A real usearch index on generated vectors; ``ann_min_songs`` is lowered so a few thousand songs
take that path (the code is the same at a million). Graphs saved beside a real library file in
``tmp_path`` are re-used, invalidated, and never written over files musicrec did not write.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from musicrec_gui.core import recommend
from musicrec_gui.core.ann_store import GraphStore, graph_folder
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


def _spare(vectors):
    """As from_library reads them: rows at the start of a buffer with room for songs added later."""
    buffer = np.zeros((len(vectors) + recommend.SPARE_ROWS, vectors.shape[1]), np.float32)
    buffer[:len(vectors)] = vectors
    return buffer[:len(vectors)]


@pytest.fixture
def large():
    tracks, vectors = _songs()
    approximate = VectorIndex(tracks, _spare(vectors), copy=False, ann_min_songs=1000)
    assert approximate.build_ann() and approximate.approximate
    exact = VectorIndex(tracks, vectors)  # never given an ANN index
    return approximate, exact


def test_small_libraries_stay_exact():
    tracks, vectors = _songs(500)
    index = VectorIndex(tracks, vectors, ann_min_songs=1000)
    assert not index.build_ann() and not index.approximate and not index.wants_ann
    assert recommend.ANN_MIN_SONGS >= recommend.LARGE_INDEX_SONGS


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


# Graphs saved beside the library -------------------------------------------------------------------

def _store(tmp_path, folder="/music"):
    library = tmp_path / "library.sqlite3"
    library.write_bytes(b"")
    return GraphStore.for_library(library, encoder_key="enc", analysis_key="an", under=folder, params="test")


def _index(store, tracks, vectors):
    return VectorIndex(tracks, _spare(vectors), copy=False, ann_min_songs=1000, ann_store=store)


def _answers(index):
    return [[r.track.id for r in index.similar(t, k=10, exclude_same_artist=True)] for t in (1, 500, 3000)]


def test_graph_is_saved_and_reused_by_the_next_build(tmp_path):
    tracks, vectors = _songs()
    store = _store(tmp_path)
    first = _index(store, tracks, vectors)
    assert first.build_ann() and first.ann_builds == 1 and not first.ann_loaded
    path = first.ann_graph_path
    assert path.is_file() and path.parent == graph_folder(tmp_path / "library.sqlite3")
    manifest = json.loads((path.parent / "musicrec-ann.json").read_text())
    assert list(manifest["files"]) == [path.name]
    second = _index(store, tracks, vectors)  # the next start
    assert second.build_ann() and second.approximate
    assert second.ann_builds == 0 and second.ann_loaded  # loaded, not built
    assert _answers(second) == _answers(first)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, "musicrec-ann.json"])


def test_a_few_songs_more_reuse_the_graph_a_quarter_more_rebuild_it(tmp_path):
    tracks, vectors = _songs(5200)
    store = _store(tmp_path)
    first = _index(store, tracks[:4000], vectors[:4000])
    assert first.build_ann() and first.ann_builds == 1
    grown = _index(store, tracks[:4800], vectors[:4800])  # a scan added 800 (< a quarter)
    assert grown.build_ann() and grown.ann_loaded and grown.ann_builds == 0
    # The 800 songs past the graph are searched exactly beside it: answers as good as exact search.
    exact = VectorIndex(tracks[:4800], vectors[:4800], ann_min_songs=10**9)
    anchors = [t.id for t in tracks[3900:4800:30]]
    found = sum(len({r.track.id for r in grown.similar(a, k=10, exclude_same_artist=True)}
                    & {r.track.id for r in exact.similar(a, k=10, exclude_same_artist=True)}) for a in anchors)
    assert found / (10 * len(anchors)) >= 0.98
    more = _index(store, tracks[:5200], vectors[:5200])  # 1 200 more: a quarter and beyond
    assert more.build_ann() and more.ann_builds == 1 and not more.ann_loaded
    assert more.ann_graph_path.is_file() and first.ann_graph_path.is_file()  # both kept (at most 4)


def test_a_changed_set_invalidates_the_graph(tmp_path):
    tracks, vectors = _songs()
    store = _store(tmp_path)
    assert _index(store, tracks, vectors).build_ann()
    changed = vectors.copy()
    changed[0] += 1  # a sampled song analysed again
    index = _index(store, tracks, changed)
    assert index.build_ann() and index.ann_builds == 1
    reordered = _index(store, tracks[::-1], vectors[::-1])  # other row order: keys would point elsewhere
    assert reordered.build_ann() and reordered.ann_builds == 1
    other_folder = _index(_store(tmp_path, folder="/music/Jazz"), tracks, vectors)
    assert other_folder.build_ann() and other_folder.ann_builds == 1


def test_a_foreign_file_at_the_graph_path_is_never_overwritten(tmp_path):
    tracks, vectors = _songs()
    store = _store(tmp_path)
    warm = _index(store, tracks, vectors)
    warm.build_ann()  # our folder with our manifest
    tracks2 = [dataclasses.replace(t, title=t.title + "!") for t in tracks]
    other = _index(store, tracks2, vectors[::-1].copy())
    path = other.ann_graph_path
    path.write_bytes(b"someone else's file")
    assert other.build_ann() and other.approximate  # built, used in memory, not saved
    assert path.read_bytes() == b"someone else's file"
    again = _index(store, tracks2, vectors[::-1].copy())
    assert again.build_ann() and again.ann_builds == 1  # a foreign file is not loaded either
    assert path.read_bytes() == b"someone else's file"
    # Pruning keeps at most KEEP graphs and deletes only ours.
    for seed in range(1, 7):
        t, v = _songs(1500, seed=seed)
        _index(store, t, v).build_ann()
    names = set(os.listdir(path.parent))
    assert path.name in names and path.read_bytes() == b"someone else's file"
    assert len([n for n in names if n.endswith(".usearch")]) == store.keep + 1
    assert not [n for n in names if n.startswith(".tmp-")]


def test_a_folder_musicrec_did_not_create_is_left_alone(tmp_path):
    tracks, vectors = _songs()
    store = _store(tmp_path)
    store.folder.mkdir()
    (store.folder / "notes.txt").write_text("mine")
    index = _index(store, tracks, vectors)
    assert index.build_ann() and index.approximate
    assert os.listdir(store.folder) == ["notes.txt"]


def test_a_damaged_graph_is_rebuilt(tmp_path):
    tracks, vectors = _songs()
    store = _store(tmp_path)
    first = _index(store, tracks, vectors)
    first.build_ann()
    path = first.ann_graph_path
    size = path.stat().st_size
    with open(path, "r+b") as f:  # damaged in place (same file), past the header and in the header
        f.seek(size // 2)
        f.write(os.urandom(4096))
        f.seek(8)
        f.write(b"\xff" * 32)
    damaged = _index(store, tracks, vectors)
    assert damaged.build_ann() and damaged.ann_builds == 1 and not damaged.ann_loaded
    assert _answers(damaged) == _answers(first)
    with open(path, "r+b") as f:  # cut short
        f.truncate(size // 3)
    cut = _index(store, tracks, vectors)
    assert cut.build_ann() and cut.ann_builds == 1
    healed = _index(store, tracks, vectors)  # the rebuilt graph was saved over ours
    assert healed.build_ann() and healed.ann_loaded and healed.ann_builds == 0

