"""Tag probabilities: stored beside each vector by an encoder with a tag head, shown by the CLI and the app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musicrec_gui import cli
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.encoder import LazyEncoder
from musicrec_gui.core.library import Library
from musicrec_gui.core.tags import tags_text, top_tags

from conftest import TAGS


def test_top_tags_are_ordered_and_match_their_names():
    assert top_tags(np.array([0.1, 0.7, 0.4]), TAGS, count=2) == [("noise", pytest.approx(0.7)),
                                                                 ("chord", pytest.approx(0.4))]
    assert top_tags(np.array([0.1, 0.7]), TAGS) == [] and top_tags(None, TAGS) == []
    assert top_tags(np.array([0.1, 0.7, 0.4]), TAGS, minimum=0.2) == [("noise", pytest.approx(0.7)),
                                                                     ("chord", pytest.approx(0.4))]
    assert tags_text([("ambient", 0.414), ("rock", 0.05)]) == "ambient 41 %, rock 5 %"


def test_a_scan_stores_tags_and_info_shows_them(good_library_dir, tmp_path, tagging_encoder_path, capsys):
    library = Library(tmp_path / "lib.sqlite3")
    encoder = LazyEncoder(tagging_encoder_path)
    assert not encoder.loaded  # reading the JSON and checking the file imports no model
    events = list(scan_mod.scan(good_library_dir, library=library, encoder=encoder))
    assert events[-1].analysed == 8 and events[-1].failed == 0 and encoder.loaded
    key = AnalysisSettings().key
    stored = {}
    for track in library.tracks(status="done"):
        probabilities = library.tag_probabilities(track.id, encoder_key=encoder.key, analysis_key=key)
        assert probabilities.shape == (3,) and np.all((probabilities >= 0) & (probabilities <= 1))
        stored[Path(track.path).name] = probabilities
    assert len({p.tobytes() for p in stored.values()}) > 1, "different songs, different tags"
    # The stored tags are the mean of the head over the song's patches.
    track = library.track_by_path(str(good_library_dir / "low_drone.wav"))
    slices_tags = encoder.load().embed_slices_with_tags(
        scan_mod.prepare_track(track.path, settings=AnalysisSettings(), config=encoder.features).slices)[1]
    assert np.allclose(stored["low_drone.wav"], slices_tags.mean(axis=0), atol=1e-5)
    library.close()
    assert cli.main(["--library", str(tmp_path / "lib.sqlite3"), "--encoder", str(tagging_encoder_path),
                     "info", str(good_library_dir / "low_drone.wav")]) == 0
    out = capsys.readouterr().out
    expected = tags_text(top_tags(stored["low_drone.wav"], TAGS))
    assert f"tags:     {expected}" in out and "title:" in out


def test_info_says_when_the_encoder_has_no_tag_head(good_library_dir, tmp_path, tiny_encoder_path, capsys):
    base = ["--library", str(tmp_path / "lib.sqlite3"), "--encoder", str(tiny_encoder_path), "-q"]
    assert cli.main(base + ["scan", str(good_library_dir)]) == 0
    assert cli.main(base + ["info", "low_drone_2"]) == 0
    assert "no tag head" in capsys.readouterr().out


def test_song_tags_as_codes_match_the_tag_names_rule(tmp_path):
    """SongTags from the library's tag table: each song's tags as top_tags gives them (its chips), ``tag:``
    words matched against any of a song's tag names, songs analysed later overriding the table."""
    from musicrec_gui.core.library import FileIdentity, Library
    from musicrec_gui.core.tags import SongTags, top_tags

    names = ("Ambient", "hard rock", "rock", "électro", "jazz")
    rng = np.random.default_rng(5)
    library = Library(tmp_path / "lib.sqlite3")
    found = [FileIdentity(str(tmp_path / f"s{i}.ogg"), 1, 1) for i in range(60)]
    todo = library.plan_scan(found, encoder_key="k", analysis_key="a").todo
    for i, track in enumerate(todo):
        probabilities = rng.dirichlet(np.ones(len(names))).astype(np.float32)
        library.record_result(track.id, encoder_key="k", analysis_key="a", vector=np.ones(4, np.float32),
                              slice_vectors=np.ones((1, 4), np.float32), offset_seconds=0.0, title="", artist="",
                              album="", duration=1.0,
                              tag_probabilities=probabilities if i % 10 else probabilities[:3])  # 6 damaged
    ids, table = library.tag_table(encoder_key="k", analysis_key="a")
    assert len(ids) == 54 and table.shape == (54, len(names))
    tags = SongTags.from_chunks(library.iter_tags(encoder_key="k", analysis_key="a", chunk=7), names)
    assert np.array_equal(tags.ids, ids) and np.array_equal(tags.codes, SongTags.from_probabilities(ids, table, names).codes)
    expected = {int(i): tuple(name for name, _ in top_tags(row, names, count=4, minimum=0.05))
                for i, row in zip(ids, table)}
    assert {i: tags.names_of(i) for i in ids.tolist()} == expected
    later = int(ids[0])
    tags.set(later, ["jazz"])
    expected[later] = ("jazz",)
    for words in (["rock"], ["amb"], ["hard rock"], ["é"], ["rock", "hard"], ["jazz"], ["nothing"]):
        want = [all(any(w in n.casefold() for n in expected[i]) for w in words) for i in ids.tolist()]
        assert tags.having_all(ids, words).tolist() == want, words
    assert tags.having_all(np.array([10**9]), ["rock"]).tolist() == [False]  # a song without tags
    assert tags.top(ids[:3]).tolist() == [names.index(expected[int(i)][0]) if expected[int(i)] else -1
                                          for i in ids[:3]]
