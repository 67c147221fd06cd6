"""Exploring a real library file: moments, songs like a passage, matching moments, paths and radio."""

from __future__ import annotations

import numpy as np
import pytest

from musicrec_gui.core import explore
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.features import spread_window_starts
from musicrec_gui.core.library import FileIdentity, Library
from musicrec_gui.core.recommend import VectorIndex

KEY, ANALYSIS = "enc", "spread8"
D = 24


def _library(tmp_path, songs: list[dict]) -> tuple[Library, VectorIndex]:
    """A real library file: one analysed song per entry (``patches`` (m, D), ``artist``, ``duration``)."""
    library = Library(tmp_path / "lib.sqlite3")
    found = [FileIdentity(str(tmp_path / f"song{i:03d}.ogg"), 1, 1) for i in range(len(songs))]
    todo = library.plan_scan(found, encoder_key=KEY, analysis_key=ANALYSIS).todo
    for track, song in zip(todo, songs):
        patches = np.asarray(song["patches"], np.float32)
        library.record_result(track.id, encoder_key=KEY, analysis_key=ANALYSIS, vector=patches.mean(axis=0),
                              slice_vectors=patches, offset_seconds=0.0, title=track.title,
                              artist=song.get("artist", ""), album="", duration=song.get("duration", 200.0))
    return library, VectorIndex.from_library(library, encoder_key=KEY, analysis_key=ANALYSIS)


def _clustered(rng, n: int, *, patches: int = 8) -> list[dict]:
    centres = rng.normal(size=(6, D)) * 3
    return [{"patches": centres[i % 6] + rng.normal(size=(patches, D))} for i in range(n)]


def test_patch_spans_are_where_spread_analysis_cut_its_windows():
    features, settings = FeatureConfig(), AnalysisSettings()
    spans = explore.patch_spans(n_patches=8, duration=200.0, offset_seconds=0.0, settings=settings, features=features)
    starts = (spread_window_starts(200 * 22050, config=features, patches=8) + features.n_fft // 2) / 22050
    assert spans.shape == (8, 2)
    assert np.allclose(spans[:, 0], starts)
    assert np.allclose(spans[:, 1] - spans[:, 0], features.slice_seconds)
    assert spans[0, 0] == pytest.approx(10.0, abs=0.1)  # the first 5 % is left out
    excerpt = explore.patch_spans(n_patches=3, duration=200.0, offset_seconds=85.0,
                                  settings=AnalysisSettings(mode="excerpt"), features=features)
    assert np.allclose(excerpt[:, 0], 85.0 + np.arange(3) * features.slice_seconds)
    # A count that does not match (a file cut short): spread evenly, never an error.
    odd = explore.patch_spans(n_patches=5, duration=30.0, offset_seconds=0.0, settings=settings, features=features)
    assert odd.shape == (5, 2) and odd[0, 0] == 0 and odd[-1, 1] == pytest.approx(30.0, abs=0.01)


def test_a_passage_between_analysed_moments_uses_the_nearest():
    spans = np.array([[10.0, 13.0], [40.0, 43.0], [70.0, 73.0]])
    assert explore.patches_in(spans, 9.0, 45.0).tolist() == [0, 1]
    assert explore.patches_in(spans, 50.0, 60.0).tolist() == [1]  # middle 55 is nearest 41.5
    assert explore.patches_in(spans, 72.0, 100.0).tolist() == [2] and explore.patches_in(spans, 72.5, 100.0).tolist() == [2]


def test_songs_like_a_passage_have_a_moment_like_it(tmp_path):
    rng = np.random.default_rng(3)
    songs = _clustered(rng, 60)
    # Song 1 is like song 0 only in one moment; on average it belongs elsewhere.
    special = rng.normal(size=D) * 6
    songs[0]["patches"][2] = special
    songs[1]["patches"][5] = special + rng.normal(size=D) * 0.1
    library, index = _library(tmp_path, songs)
    anchor = index.tracks[0]
    whole = [r.track.id for r in index.similar(anchor.id, k=5)]
    assert index.tracks[1].id not in whole
    stored, _ = library.slice_vectors(anchor.id, encoder_key=KEY, analysis_key=ANALYSIS)
    found = explore.passage_neighbours(index, library, anchor_id=anchor.id, passage=stored[2:3], k=5,
                                       encoder_key=KEY, analysis_key=ANALYSIS, settings=AnalysisSettings(),
                                       features=FeatureConfig())
    assert found[0].track.id == index.tracks[1].id
    assert anchor.id not in [m.track.id for m in found] and len(found) == 5
    spans = explore.patch_spans(n_patches=8, duration=200.0, offset_seconds=0.0, settings=AnalysisSettings(),
                                features=FeatureConfig())
    assert found[0].moment == pytest.approx(spans[5, 0])
    assert all(a.score >= b.score for a, b in zip(found, found[1:]))


def test_closest_moments_pair_each_moment_once(tmp_path):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(6, D))
    b = rng.normal(size=(5, D))
    b[3] = a[1] + 0.01
    b[0] = a[4] * 2  # cosine ignores loudness
    pairs = explore.closest_moments(a, b, count=3)
    assert [(p.first, p.second) for p in pairs[:2]] in ([(1, 3), (4, 0)], [(4, 0), (1, 3)])
    assert len({p.first for p in pairs}) == 3 and len({p.second for p in pairs}) == 3
    with pytest.raises(explore.ExploreError, match="different encoders"):
        explore.closest_moments(a, rng.normal(size=(2, D + 1)))


def test_a_path_moves_step_by_step_from_start_to_end(tmp_path):
    rng = np.random.default_rng(5)
    # Songs along a line from A to B, plus noise songs far from it.
    a, b = rng.normal(size=D) * 4, rng.normal(size=D) * 4
    songs = [{"patches": (a + (b - a) * t) + rng.normal(size=(4, D)) * 0.3} for t in np.linspace(0, 1, 21)]
    songs += [{"patches": rng.normal(size=(4, D)) * 4} for _ in range(40)]
    library, index = _library(tmp_path, songs)
    start, end = index.tracks[0].id, index.tracks[20].id
    path = explore.song_path(index, start_id=start, end_id=end, length=6)
    assert len(path) == 6 and path[0].track.id == start and path[-1].track.id == end
    assert len({s.track.id for s in path}) == 6
    to_end = [s.to_end for s in path]
    assert all(x < y for x, y in zip(to_end, to_end[1:]))
    assert all(s.track.id <= index.tracks[20].id for s in path)  # it stays on the line
    jump = float(index.unit[index.row_of(start)] @ index.unit[index.row_of(end)])
    assert min(s.from_previous for s in path[1:]) > jump
    excluded = {path[2].track.id}
    again = explore.song_path(index, start_id=start, end_id=end, length=6, exclude_ids=excluded)
    assert excluded.isdisjoint(s.track.id for s in again)
    with pytest.raises(explore.ExploreError, match="same song"):
        explore.song_path(index, start_id=start, end_id=start, length=4)
    with pytest.raises(explore.ExploreError, match="no vector"):
        explore.song_path(index, start_id=start, end_id=10_000, length=4)


def test_radio_plays_the_nearest_song_not_played_yet(tmp_path):
    rng = np.random.default_rng(6)
    library, index = _library(tmp_path, _clustered(rng, 12))
    current = index.tracks[0].id
    first = index.similar(current, k=3)
    assert explore.radio_next(index, current_id=current, played=[]).track.id == first[0].track.id
    played = [first[0].track.id, first[1].track.id]
    assert explore.radio_next(index, current_id=current, played=played).track.id == first[2].track.id
    everyone = [t.id for t in index.tracks]
    assert explore.radio_next(index, current_id=current, played=everyone) is None


def test_tag_table_and_bulk_patch_reads(tmp_path):
    library = Library(tmp_path / "lib.sqlite3")
    found = [FileIdentity(str(tmp_path / f"s{i}.ogg"), 1, 1) for i in range(3)]
    todo = library.plan_scan(found, encoder_key=KEY, analysis_key=ANALYSIS).todo
    for i, track in enumerate(todo):
        library.record_result(track.id, encoder_key=KEY, analysis_key=ANALYSIS, vector=np.ones(4) * i,
                              slice_vectors=np.ones((i + 1, 4)), offset_seconds=float(i), title="", artist="",
                              album="", duration=10.0, tag_probabilities=None if i == 1 else np.full(3, i / 10))
    ids, table = library.tag_table(encoder_key=KEY, analysis_key=ANALYSIS)
    assert ids.tolist() == [todo[0].id, todo[2].id] and np.allclose(table[1], 0.2)
    assert library.tag_table(encoder_key="other", analysis_key=ANALYSIS)[1].shape == (0, 0)
    stored = library.slice_vectors_of([t.id for t in todo] + [999], encoder_key=KEY, analysis_key=ANALYSIS)
    assert sorted(stored) == [t.id for t in todo]
    assert stored[todo[2].id][0].shape == (3, 4) and stored[todo[2].id][1] == 2.0


def test_songs_like_a_passage_leave_out_copies_of_the_anchor(tmp_path):
    # A second file of the same recording has every moment of the passage: it is not a song "like" it
    # (the whole-song list leaves copies out too).
    rng = np.random.default_rng(7)
    songs = _clustered(rng, 20)
    songs.append({"patches": songs[0]["patches"].copy()})
    library, index = _library(tmp_path, songs)
    anchor, copy = index.tracks[0], index.tracks[20]
    assert copy.id not in [r.track.id for r in index.similar(anchor.id, k=5)]
    stored, _ = library.slice_vectors(anchor.id, encoder_key=KEY, analysis_key=ANALYSIS)
    found = explore.passage_neighbours(index, library, anchor_id=anchor.id, passage=stored[2:3], k=5,
                                       encoder_key=KEY, analysis_key=ANALYSIS)
    assert copy.id not in [m.track.id for m in found] and len(found) == 5


def test_the_radio_never_plays_a_copy_of_a_song_it_played(tmp_path):
    rng = np.random.default_rng(8)
    songs = _clustered(rng, 20)
    songs[1]["patches"] = songs[0]["patches"] + rng.normal(size=(8, D)) * 1.5  # near song 0, not a copy
    songs.append({"patches": songs[0]["patches"].copy()})  # song 20 is song 0 again
    library, index = _library(tmp_path, songs)
    first, second, copy = index.tracks[0], index.tracks[1], index.tracks[20]
    # After the first, the second played: its nearest unplayed song is the first's copy.
    assert index.similar(second.id, k=1, exclude_ids=[first.id])[0].track.id == copy.id
    following = explore.radio_next(index, current_id=second.id, played=[first.id, second.id])
    assert following is not None and following.track.id not in (first.id, second.id, copy.id)
