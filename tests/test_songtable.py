"""The song list's column store: every answer equals the one a plain list of ``Track``s gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from musicrec_gui.core.errors import FailureKind
from musicrec_gui.core.library import Track
from musicrec_gui.core.songtable import KEY_BYTES, SongTable

# Case-folding oddities, accents, CJK, a lone surrogate (undecodable bytes of a path) and texts
# sharing prefixes longer than the stored sort key, so ties are settled from the whole text.
LONG = "Symphony No. 5 in C minor, Op. 67: "
PIECES = ["a", "B", "é", "É", "ß", "SS", "日本", "\udcff", " ", LONG, LONG.upper(), "z", "Z", "0", "10", "9"]
text = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)
statuses = st.sampled_from(["done", "pending", "failed"])


@st.composite
def tracks(draw, *, first_id=1):
    n = draw(st.integers(0, 40))
    ids = draw(st.lists(st.integers(first_id, first_id + 10_000), min_size=n, max_size=n, unique=True))
    made = []
    for i in ids:
        status = draw(statuses)
        made.append(Track(i, f"/m/{draw(text)}/{i}.ogg", draw(st.integers(0, 9)), draw(st.integers(0, 9)),
                          draw(text), draw(text), draw(text), draw(st.sampled_from([0.0, 1.5, 60.0, 61.0])),
                          status, "it broke" if status == "failed" else "", draw(st.booleans()),
                          FailureKind.parse("truncated") if status == "failed" else None))
    return made


def _expected_order(items, field, descending):
    if field == "duration":
        def key(t):
            return t.duration
    else:
        def key(t):
            return getattr(t, field).casefold()
    return sorted(range(len(items)), key=lambda i: key(items[i]), reverse=descending)


@settings(max_examples=200, deadline=None)
@given(tracks(), st.sampled_from(["title", "artist", "album", "duration", "status"]), st.booleans())
def test_sorting_equals_pythons_stable_sort_of_the_casefolded_texts(items, field, descending):
    table = SongTable(items)
    assert list(table.tracks()) == items  # every field comes back as it went in
    assert table.sort_order(field, descending=descending).tolist() == _expected_order(items, field, descending)


def test_ties_beyond_the_stored_prefix_are_settled_by_the_whole_text():
    titles = [LONG + "III", LONG + "I", LONG.upper() + "II", LONG + "I", "x" * KEY_BYTES, "x" * (KEY_BYTES - 1)]
    items = [Track(i, f"/m/{i}", 1, 1, t, "", "", 1.0, "done", "") for i, t in enumerate(titles, 1)]
    table = SongTable(items)
    assert table.sort_order("title").tolist() == [1, 3, 2, 0, 5, 4]
    assert table.sort_order("title", descending=True).tolist() == [4, 5, 0, 2, 1, 3]


@settings(max_examples=150, deadline=None)
@given(tracks(), tracks(first_id=5000), st.lists(st.sampled_from(["a", "ss", "日", "é", "/", "\n", "op. 67",
                                                                    "symphony no. 5", "z"]), max_size=3),
       st.sampled_from([1, 10_000]))
def test_search_after_changes_and_additions_equals_the_per_row_rule(first, later, words, stale_limit):
    table = SongTable(first)
    table.STALE_LIMIT = stale_limit  # a new index at once, or the changed songs checked one by one
    table.search_index()
    current = {t.id: t for t in first}
    for track in later:  # new songs, and some changed (same id as one of the first)
        if first and track.id % 3 == 0:
            track = Track(first[track.id % len(first)].id, *[getattr(track, f) for f in Track.__slots__[1:]])
        table.upsert(track)
        current[track.id] = track
    slots = {int(table.slot_of(i)): t for i, t in current.items()}
    assert {s: table.track(s) for s in slots} == slots

    def hay(t):
        from musicrec_gui.core.names import display_text
        return f"{t.title}\n{t.artist}\n{t.album}\n{display_text(t.path)}".casefold()

    expected = [s for s in range(len(table)) if all(w in hay(slots[s]) for w in words)]
    table.SMALL = 0  # through the index, not one by one
    assert table.slots_matching(words).tolist() == expected
    within = np.arange(0, len(table), 2)
    assert table.slots_matching(words, within).tolist() == [s for s in expected if s % 2 == 0]
    table.SMALL = 50_000
    assert table.slots_matching(words, within).tolist() == [s for s in expected if s % 2 == 0]


def test_a_song_already_listed_is_not_added_again_and_lookups_survive_many_songs():
    items = [Track(i, f"/m/{i}.ogg", 1, 1, f"t{i}", "", "", 1.0, "pending", "") for i in range(120_000, 0, -1)]
    table = SongTable(items[:70_000])  # past the point where ids move from a dict to a sorted array
    newer = Track(120_000, "/m/120000.ogg", 1, 1, "analysed meanwhile", "", "", 1.0, "done", "")
    table.upsert(newer)
    added = table.extend(items[60_000:])
    assert len(added) == 50_000 and len(table) == 120_000
    assert table.track_by_id(120_000) == newer
    assert table.track_by_id(1).title == "t1" and table.track_by_id(0) is None
    assert table.slot_of(59_999) == 60_001 and table.slot_of(120_001) is None


@settings(max_examples=50, deadline=None)
@given(tracks(), tracks(first_id=20_000))
def test_a_table_without_search_keeps_the_songs_and_says_what_it_cannot_do(first, later):
    table = SongTable(first, searchable=False)
    table.trim()  # then grows again
    for track in later:
        table.upsert(track)
    assert list(table.tracks()) == first + later
    assert table.folded("artist") == [t.artist.casefold() for t in first + later]
    with pytest.raises(ValueError, match="searchable=True"):
        table.sort_order("title")
    with pytest.raises(ValueError, match="searchable=True"):
        table.slots_matching(["a"])


@settings(max_examples=50, deadline=None)
@given(tracks(), tracks(first_id=20_000), statuses)
def test_songs_of_one_status_are_those_a_walk_of_every_song_finds(first, later, status):
    table = SongTable(first)
    for track in later + [Track(t.id, t.path, 2, 2, t.title, "", "", 1.0, "pending", "") for t in first[::3]]:
        table.upsert(track)
    assert list(table.with_status(status)) == [t for t in table.tracks() if t.status == status]
    assert list(table.with_status("no such status")) == []


@settings(max_examples=50, deadline=None)
@given(tracks(), tracks(first_id=20_000), st.lists(st.integers(0, 30_000), max_size=20))
def test_slots_and_texts_of_many_ids_at_once_equal_one_by_one(first, later, asked):
    table = SongTable(first)
    for track in later:
        table.upsert(track)
    ids = np.array([t.id for t in first + later][::2] + asked, dtype=np.int64)
    slots = table.slots_of(ids)
    assert slots.tolist() == [-1 if table.slot_of(i) is None else table.slot_of(i) for i in ids.tolist()]
    here = slots[slots >= 0]
    for field in ("title", "artist", "album", "path"):
        assert table.texts(field, here) == [getattr(table.track(s), field) for s in here.tolist()]


def test_slots_of_ids_past_the_sorted_array():
    items = [Track(i, f"/m/{i}", 1, 1, f"t{i}", "", "", 1.0, "done", "") for i in range(60_000, 0, -1)]
    table = SongTable(items)  # past 50 000: ids looked up in a sorted array, later ones in a dict
    table.upsert(Track(70_000, "/m/new", 1, 1, "new", "", "", 1.0, "done", ""))
    assert table.slots_of(np.array([60_000, 1, 70_000, 0, 60_001])).tolist() == [0, 59_999, 60_000, -1, -1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["", "a", "\x00", "b", "é", "x" * (KEY_BYTES - 1)]), max_size=4).map("".join),
                max_size=12), st.booleans(), st.booleans())
def test_sorting_texts_holding_nul_equals_pythons_sort(titles, descending, changed):
    # NUL sorts below every other character, but a stored key's NUL reads as the key's padding.
    items = [Track(i, f"/m/{i}", 1, 1, "" if changed else t, "", "", 1.0, "done", "") for i, t in enumerate(titles, 1)]
    table = SongTable(items)
    if changed:  # the NULs come with a change, not with the first read
        for i, t in enumerate(titles, 1):
            table.upsert(Track(i, f"/m/{i}", 1, 1, t, "", "", 1.0, "done", ""))
    expected = sorted(range(len(titles)), key=lambda i: titles[i].casefold(), reverse=descending)
    assert table.sort_order("title", descending=descending).tolist() == expected


def test_ids_out_of_order_and_a_reserved_table_are_found_alike():
    """Ids the library lists in order skip the sort; ids out of order are sorted; reserving changes nothing."""
    for ids in (list(range(1, 60_001)), list(range(60_000, 0, -1)), [5, 1, 9] + list(range(10, 60_010))):
        table = SongTable(searchable=False)
        table.reserve(len(ids))
        for first in range(0, len(ids), 20_000):
            table.extend([Track(i, f"/m/{i}", 1, 1, "", "", "", 1.0, "done", "") for i in ids[first:first + 20_000]])
        table.extend([Track(ids[7], "/m/again", 1, 1, "", "", "", 1.0, "done", "")])  # already there: ignored
        assert len(table) == len(ids) and table.slots_of(np.array(ids)).tolist() == list(range(len(ids)))
        assert table.slot_of(10**9) is None and table.track(len(ids) - 1).id == ids[-1]
