"""The song list at a million songs, tested small: the vectorised filter keeps exactly the rows the
per-row rule keeps, and the anchor rules hold while a large folder's songs come in in chunks."""

from __future__ import annotations

import os
import sqlite3

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from PySide6.QtCore import QObject, Signal  # noqa: E402

from musicrec_gui.core.library import Library, Track  # noqa: E402
from musicrec_gui.core.tags import SongTags  # noqa: E402
from musicrec_gui.core.textsearch import TextIndex  # noqa: E402
from musicrec_gui.gui.models import TRACK_ROLE, SongFilterProxy, SongTableModel, filter_words  # noqa: E402

# Letters that casefold oddly (ß → ss, İ → i̇, ﬁ → fi), apostrophes, accents, CJK, a lone surrogate as
# a path with undecodable bytes gives, and NUL (a row separator inside the index).
ALPHABET = list("abcé'’ß İﬁ日本-_./\\") + ["\udcff", "\x00", "A", "B", "É", "\n"]
texts = st.lists(st.text(alphabet=ALPHABET, max_size=12), max_size=40)
needles = st.text(alphabet=ALPHABET, min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(texts, needles)
def test_text_index_finds_exactly_the_rows_containing_a_word(items, word):
    items = [t.casefold() for t in items]
    word = word.casefold()
    expected = [i for i, t in enumerate(items) if word in t]
    for chunk_bytes in (7, 1 << 18):  # one row per chunk or several; all in one chunk
        index = TextIndex.from_texts(items, chunk_bytes=chunk_bytes)
        assert index.rows_with(word).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(needles, min_size=1, max_size=3), st.integers(0, 40))
def test_text_index_all_words_and_within(items, words, small):
    items = [t.casefold() for t in items]
    words = [w.casefold() for w in words]
    expected = [i for i, t in enumerate(items) if all(w in t for w in words)]
    index = TextIndex.from_texts(items, chunk_bytes=16)
    assert index.rows_with_all(words).tolist() == expected
    assert index.rows_with_all(words, small=small).tolist() == expected
    within = np.arange(0, len(items), 2, dtype=np.int64)
    assert index.rows_with_all(words, within, small=small).tolist() == [i for i in expected if i % 2 == 0]


def test_text_index_dense_and_sparse_words_at_size():
    rng = np.random.default_rng(1)
    items = [f"track {i}\nartist {rng.integers(1000)}\nl'album ß {i % 7}\n/m/é/{i}.flac" for i in range(60_000)]
    index = TextIndex.from_texts(items, chunk_bytes=1 << 14)
    for word in ("t", "track", "7", "77", "777", "12345", "l'al", "ss", "é/1", "zz"):
        assert index.rows_with(word).tolist() == [i for i, t in enumerate(items) if word in t], word


# -- the proxy over the model -----------------------------------------------------------------------

WORDS = ["Love", "l'amour", "Straße", "İstanbul", "café", "日本", "Rock’n’Roll", "ﬁne", "o'brien", "A", "b"]
TAGS = ["ambient", "hard rock", "rock", "électro", "jazz"]


def _tracks(rng, n, start=1):
    def words(k):
        return " ".join(rng.choice(WORDS) for _ in range(k))
    return [Track(i, f"/m/{words(1)}/{words(2)}\udcff {i}.ogg", 1, 1, words(2), words(1), words(1), 60.0,
                  "done", "") for i in range(start, start + n)]


def _per_row(model, proxy, text):
    """The old rule, row by row: every word in the search text, every tag: word in the song's tags."""
    words, tag_words = filter_words(text)
    keep = []
    for row in range(model.rowCount()):
        track = model.track_at(row)
        hay = f"{track.title}\n{track.artist}\n{track.album}\n{track.display_path}".casefold()
        tags = "|" + "|".join(proxy.tags.names_of(track.id)) + "|"  # the old text: a word may be in any name
        if all(w in hay for w in words) and all(w in tags for w in tag_words):
            keep.append(row)
    return keep


def _shown(proxy):
    return [proxy.mapToSource(proxy.index(r, 0)).row() for r in range(proxy.rowCount())]


filter_texts = st.lists(
    st.one_of(st.sampled_from(WORDS).map(lambda w: w[:3]), st.sampled_from(WORDS),
              st.sampled_from(TAGS).map(lambda t: f'tag:"{t}"' if " " in t else f"tag:{t[:4]}"),
              st.text(alphabet="aeiloßé'’ 日", min_size=1, max_size=3)),
    max_size=3).map(" ".join)


@pytest.mark.parametrize("n", [300, 2600])  # one by one, and through the index
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), text=filter_texts)
def test_the_vectorised_filter_keeps_what_the_per_row_rule_keeps(qapp, n, seed, text):
    rng = np.random.default_rng(seed)
    model = SongTableModel()
    model.set_tracks(_tracks(rng, n))
    proxy = SongFilterProxy()
    proxy.setSourceModel(model)
    # 80 % of the songs tagged (0–2 tags): most read at once as arrays, some set one by one (analysed later).
    tagged = sorted(t.id for t in model.tracks() if rng.random() < 0.8)
    codes = np.full((len(tagged), 2), -1, np.int16)
    for row in range(len(tagged)):
        k = rng.integers(0, 3)
        codes[row, :k] = rng.choice(len(TAGS), k)
    proxy.tags = SongTags(TAGS, np.array(tagged, np.int64), codes)
    for track_id in tagged[::7]:
        proxy.tags.set(track_id, list(rng.choice(TAGS, rng.integers(0, 4))))
    # Typed one letter at a time (each pass narrowing the last), with songs changed and added midway.
    for end in range(1, len(text) + 1):
        proxy.set_filter_text(text[:end])
        if end == len(text) // 2:
            changed = _tracks(rng, 3, start=1)
            for track in changed + _tracks(rng, 2, start=n + 1):
                model.upsert(track)
            # As before: songs added are filtered as they come; a changed song at the next pass.
            changed_rows = {model.row_of(t.id) for t in changed}
            assert set(_shown(proxy)) ^ set(_per_row(model, proxy, text[:end])) <= changed_rows
            proxy.set_filter_text(text[:end], force=True)
        assert _shown(proxy) == _per_row(model, proxy, text[:end]), text[:end]
    model.sort(SongTableModel.ARTIST)
    assert _shown(proxy) == _per_row(model, proxy, text)
    proxy.set_filter_text("")
    assert proxy.rowCount() == model.rowCount()


@pytest.fixture()
def qapp():
    from PySide6.QtWidgets import QApplication
    return QApplication.instance() or QApplication([])


# -- a large folder, read in chunks -------------------------------------------------------------------

class _Engine(QObject):
    event = Signal(object)


def _library(path, n):
    Library(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO tracks (id, path, size, mtime_ns, title, artist, album, duration, status) "
            "VALUES (?, ?, 1, 1, ?, ?, '', 60.0, 'done')",
            ((i, os.fsencode(f"/music/a{i % 5}/song {i:03d}.flac"), f"Song {i:03d}", f"Artist {i % 5}")
             for i in range(1, n + 1)))
    conn.close()
    return Library(path)


@pytest.fixture()
def streamed(qtbot, tmp_path):
    from musicrec_gui.gui.session import Session
    from musicrec_gui.gui.songlist import SongListPanel

    library = _library(tmp_path / "lib.sqlite3", 60)
    session = Session(library, str(tmp_path / "no-encoder.keras"))
    session.LOAD_CHUNK = 7
    panel = SongListPanel(session, _Engine())
    qtbot.addWidget(panel)
    panel.show()
    yield session, panel
    session.stop_loading()
    library.close()


def _current(panel):
    return panel.view.currentIndex().data(TRACK_ROLE)


def test_a_large_folder_comes_in_chunks_and_its_anchor_is_selected_when_its_row_comes(qtbot, streamed):
    session, panel = streamed
    shown = []
    session.folderShown.connect(shown.append)
    session.show_folder("/music")
    assert session.loading and panel.model.rowCount() == 7 and not shown
    anchor = next(t for t in session.library.tracks() if t.id == 45)
    session.set_anchor(anchor)  # e.g. a recommendation clicked: its row is not in yet
    assert _current(panel) is None
    qtbot.waitUntil(lambda: not session.loading, timeout=5000)
    assert panel.model.rowCount() == 60 and len(shown) == 1 and len(shown[0]) == 60
    assert session.anchor.id == 45 and _current(panel).id == 45
    titles = [panel.proxy.index(r, 0).data() for r in range(60)]
    assert titles == sorted(titles)  # sorted once all are in


def test_while_rows_come_in_a_filter_never_changes_the_anchor(qtbot, streamed):
    session, panel = streamed
    session.show_folder("/music")
    first = next(panel.proxy.index(r, 0).data(TRACK_ROLE) for r in range(7)
                 if panel.proxy.index(r, 1).data() != "Artist 3")
    panel.select_track(first.id)  # the user picks a song among the first ones
    assert session.anchor.id == first.id
    panel._apply_filter("/a3/")  # hides it
    assert _current(panel) is None and session.anchor.id == first.id
    qtbot.waitUntil(lambda: not session.loading, timeout=5000)
    assert session.anchor.id == first.id and _current(panel) is None  # still hidden, still the anchor
    assert panel.proxy.rowCount() == 12 and all(
        panel.proxy.index(r, 1).data() == "Artist 3" for r in range(12))
    panel._apply_filter("")
    assert _current(panel).id == first.id and session.anchor.id == first.id


def test_a_song_picked_while_rows_come_in_stays_the_anchor(qtbot, streamed):
    session, panel = streamed
    session.show_folder("/music")
    picked = panel.proxy.index(3, 0).data(TRACK_ROLE)
    panel.view.setCurrentIndex(panel.proxy.index(3, 0))
    assert session.anchor.id == picked.id
    qtbot.waitUntil(lambda: not session.loading, timeout=5000)
    assert session.anchor.id == picked.id and _current(panel).id == picked.id


def test_an_anchor_from_another_folder_is_cleared_once_all_are_in(qtbot, streamed):
    session, panel = streamed
    session.anchor = Track(999, "/elsewhere/x.flac", 1, 1, "X", "", "", 1.0, "done", "")
    session.show_folder("/music")
    assert session.anchor is not None  # not yet: it could be in a later chunk
    qtbot.waitUntil(lambda: not session.loading, timeout=5000)
    assert session.anchor is None and _current(panel) is None


def test_a_load_in_chunks_stopped_by_another_folder_leaves_that_folder_listed(qtbot, streamed, tmp_path):
    session, panel = streamed
    session.show_folder("/music")
    assert session.loading
    session.LOAD_CHUNK = 20
    session.show_folder("/music/a1")  # 12 songs: read at once, while the first folder was coming in
    assert not session.loading
    assert sorted(t.id for t in panel.model.tracks()) == [i for i in range(1, 61) if i % 5 == 1]
    qtbot.wait(50)
    assert panel.model.rowCount() == 12


def test_the_failures_panel_makes_a_track_only_of_each_failed_song_of_a_large_folder(qtbot, tmp_path, monkeypatch):
    # folderShown ends a large folder's load with a view of the session's table: a Track made per
    # song to find the failed few costs ~5 µs each (~5 s of frozen window at a million songs).
    from musicrec_gui.core.songtable import SongTable
    from musicrec_gui.gui.engine import Engine
    from musicrec_gui.gui.panels import FailurePanel
    from musicrec_gui.gui.scanning import ScanController
    from musicrec_gui.gui.session import Session

    library = _library(tmp_path / "lib.sqlite3", 60)
    with sqlite3.connect(tmp_path / "lib.sqlite3") as conn:
        conn.execute("UPDATE tracks SET status = 'failed', error = 'it broke' WHERE id % 20 = 0")
    session = Session(library, str(tmp_path / "no-encoder.keras"))
    session.LOAD_CHUNK = 7
    engine = Engine(library, str(tmp_path / "no-encoder.keras"))
    panel = FailurePanel(ScanController(session, engine))
    qtbot.addWidget(panel)
    made = []
    track = SongTable.track
    monkeypatch.setattr(SongTable, "track", lambda table, slot: made.append(slot) or track(table, slot))
    try:
        session.show_folder("/music")
        qtbot.waitUntil(lambda: not session.loading, timeout=5000)
        assert panel.count() == 3
        assert sorted(panel.model.index(r, 0).data() for r in range(3)) == [
            f"/music/a0/song {i:03d}.flac" for i in (20, 40, 60)]
        assert len(made) == 3
    finally:
        session.stop_loading()
        engine.shutdown()
        library.close()
