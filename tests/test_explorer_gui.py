"""The explorer's features in the real window: tag chips and ``tag:``, songs like a passage, the match
view, a path between two songs, and the radio. Offscreen Qt, real audio files, a real encoder file,
real PortAudio into ALSA's null device."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from audio_factory import portaudio_on_null_device  # noqa: E402

portaudio_on_null_device()

import pytest  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from audio_factory import tone, write  # noqa: E402
from musicrec_gui.core.playlist import is_musicrec_playlist  # noqa: E402
from test_gui import make_window, wait_scan  # noqa: E402


@pytest.fixture()
def long_songs(tmp_path):
    """Twelve 40-s songs in two families (low and high), long enough for every analysed moment; from
    ten songs up the index is centred, as in any real library."""
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(12):
        base = 110.0 if i < 6 else 1760.0
        write(folder / f"song{i}.wav", tone(40.0, freqs=(base * (1 + 0.05 * i), base * 1.5), seed=i, noise=0.05),
              22050)
    return folder


def _drag(view, start: float, end: float) -> None:
    """A real left-button drag across the spectrogram, from ``start`` to ``end`` seconds."""
    box = view.plot.getViewBox()
    points = [view.mapFromScene(box.mapViewToScene(QPointF(x, view.config.n_mels / 2)))
              for x in (start, start + (end - start) / 3, start + 2 * (end - start) / 3, end)]
    viewport = view.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseButtonPress, QPointF(points[0]),
                                                 view.mapToGlobal(points[0]), left, left,
                                                 Qt.KeyboardModifier.NoModifier))
    for point in points[1:]:
        QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseMove, QPointF(point), view.mapToGlobal(point),
                                                     none, left, Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseButtonRelease, QPointF(points[-1]),
                                                 view.mapToGlobal(points[-1]), left, none,
                                                 Qt.KeyboardModifier.NoModifier))


def _ready(qtbot, window):
    wait_scan(qtbot, window)
    qtbot.waitUntil(lambda: window.anchor is not None and window.spectrogram_ready
                    and window.spectrogram.data is not None, timeout=20_000)
    qtbot.waitUntil(lambda: bool(window.recommendations.rows), timeout=20_000)


def test_tag_chips_filter_the_song_list_by_tag(qtbot, env, tagging_encoder_path, good_library_dir, tmp_path):
    folder = tmp_path / "songs"
    shutil.copytree(good_library_dir, folder)
    window = make_window(qtbot, env, tagging_encoder_path, folder=str(folder))
    _ready(qtbot, window)
    chips = window.spectrogram_panel.chips
    tags = window.session.song_tags(window.anchor)
    assert chips.isVisibleTo(window) and len(chips.buttons) == len(tags)
    assert chips.buttons[0].text().startswith(tags[0][0]) and "%" in chips.buttons[0].text()
    songs = window.songs
    total = songs.proxy.rowCount()
    qtbot.waitUntil(lambda: len(songs.proxy.tags) >= total - 1, timeout=10_000)
    qtbot.mouseClick(chips.buttons[0], Qt.MouseButton.LeftButton)
    name = tags[0][0]
    assert songs.filter_box.text() == f"tag:{name}"
    qtbot.waitUntil(lambda: songs.proxy.rowCount() < total or all(
        name in songs.proxy.tags.names_of(int(i)) for i in songs.proxy.tags.ids), timeout=5000)
    shown = [songs.proxy.index(r, 0).data(0x0102) for r in range(songs.proxy.rowCount())]
    assert shown and all(name in songs.proxy.tags.names_of(t.id) for t in shown)
    assert window.anchor.id in {t.id for t in shown}  # the anchor carries the tag it showed
    songs.filter_box.setText("tag:no-such-tag")
    qtbot.waitUntil(lambda: songs.proxy.rowCount() == 0, timeout=5000)
    assert window.anchor is not None  # filtering never changes the anchor
    songs.filter_box.setText(f"tag:{name[:3]} {window.anchor.title[:4]}")  # a prefix, and a plain word
    qtbot.waitUntil(lambda: songs.proxy.rowCount() >= 1, timeout=5000)


def test_dragging_across_the_spectrogram_finds_songs_like_that_passage(qtbot, env, tiny_encoder_path, long_songs):
    window = make_window(qtbot, env, tiny_encoder_path, folder=long_songs)
    _ready(qtbot, window)
    panel, view, recs = window.spectrogram_panel, window.spectrogram, window.recommendations
    # An encoder without a tag head: tag: says why it matches nothing, and there are no chips.
    window.songs.filter_box.setText("tag:rock")
    assert "gives no tags" in window.songs.count_label.text() and window.songs.proxy.rowCount() == 0
    assert not panel.chips.isVisibleTo(window)
    window.songs.filter_box.setText("")
    assert "gives no tags" not in window.songs.count_label.text()
    qtbot.waitUntil(lambda: panel.moments is not None, timeout=5000)
    assert len(view._moments) >= 1  # the analysed moments are marked along the top
    whole = [r.track.id for r in recs.rows]
    assert not recs.whole_song_button.isVisible()
    start = float(panel.moments[0, 0])
    _drag(view, start - 0.5, start + 4.0)
    passage = window.session.passage
    assert passage is not None and passage[0] == pytest.approx(start - 0.5, abs=0.6)
    assert view.selected_passage() is not None
    qtbot.waitUntil(lambda: "moment like" in recs.heading.text(), timeout=5000)
    qtbot.waitUntil(lambda: bool(recs.rows) and "its moment at" in recs.rows[0].text.text(), timeout=5000)
    assert recs.whole_song_button.isVisible() and not recs.message.isHidden()
    assert window.anchor.id not in [r.track.id for r in recs.rows]
    # Its play button plays from the matching moment.
    rec = recs.recommendations[0]
    qtbot.mouseClick(recs.rows[0].play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.player.state == "playing", timeout=5000)
    assert window.player.key == ("rec", rec.track.id)
    assert window.player.position() == pytest.approx(rec.moment, abs=1.5)
    window.player.stop()
    # "Whole song" forgets the passage.
    qtbot.mouseClick(recs.whole_song_button, Qt.MouseButton.LeftButton)
    assert window.session.passage is None and view.selected_passage() is None
    qtbot.waitUntil(lambda: recs.heading.text().startswith("Songs like"), timeout=5000)
    qtbot.waitUntil(lambda: [r.track.id for r in recs.rows] == whole, timeout=5000)
    # Another anchor starts with no passage.
    _drag(view, start, start + 3.0)
    assert window.session.passage is not None
    other = next(t for t in window.songs.model.tracks() if t.id != window.anchor.id and t.status == "done")
    window.session.set_anchor(other)
    assert window.session.passage is None


def test_why_shows_the_matching_moments_on_both_songs(qtbot, env, tiny_encoder_path, long_songs):
    window = make_window(qtbot, env, tiny_encoder_path, folder=long_songs)
    _ready(qtbot, window)
    row = window.recommendations.rows[0]
    qtbot.mouseClick(row.why_button, Qt.MouseButton.LeftButton)
    view = window.explorer.match_view
    assert view is not None and view.isVisible() and view.tracks == (window.anchor, row.track)
    assert 1 <= len(view.pairs) <= 3 and view.pair_rows.count() == len(view.pairs)
    qtbot.waitUntil(lambda: all(view.ready), timeout=20_000)
    for side in (0, 1):
        assert view.views[side].data is not None and view.views[side].data.end == pytest.approx(40.0, abs=0.5)
        marks = [item for item in view.views[side]._moments if hasattr(item, "getRegion")]
        assert len(marks) == len(view.pairs)
    first = view.pairs[0]
    region = [i for i in view.views[1]._moments if hasattr(i, "getRegion")][0].getRegion()
    assert region[0] == pytest.approx(view.spans[1][first.second, 0])
    assert first.similarity >= view.pairs[-1].similarity
    view.close()


def test_a_path_between_two_songs_is_listed_saved_and_played(qtbot, env, tiny_encoder_path, long_songs, tmp_path,
                                                             monkeypatch):
    window = make_window(qtbot, env, tiny_encoder_path, folder=long_songs)
    _ready(qtbot, window)
    tracks = {os.path.basename(t.path): t for t in window.songs.model.tracks()}
    start, end = tracks["song0.wav"], tracks["song11.wav"]
    window.session.set_anchor(start)
    menu = window.song_actions.menu_for(end, window)
    action = next(a for a in menu.actions() if a.text().startswith("Path from"))
    assert action.isEnabled()
    shown = []
    window.explorer.pathShown.connect(shown.append)
    action.trigger()
    path = window.explorer.path_view
    assert path is not None and path.isVisible()
    path.length_box.setValue(5)
    ids = path.track_ids()
    assert len(ids) == 5 and ids[0] == start.id and ids[-1] == end.id and len(set(ids)) == 5
    assert shown[-1] == ids and path.list.topLevelItemCount() == 5
    assert "closer than" in path.list.topLevelItem(1).text(2) and path.list.topLevelItem(0).text(2) == ""
    chosen = tmp_path / "out" / "path.m3u8"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(chosen), ""))
    qtbot.mouseClick(path.save_button, Qt.MouseButton.LeftButton)
    assert is_musicrec_playlist(chosen)
    lines = [line for line in chosen.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert [os.path.basename(line) for line in lines] == [
        os.path.basename(window.session.track(i).path) for i in ids]
    # Saving over a file musicrec did not write is refused, and the file is untouched.
    foreign = tmp_path / "out" / "mine.txt"
    foreign.write_text("not yours")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(foreign), ""))
    from PySide6.QtWidgets import QMessageBox
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warned.append(args[2]))
    qtbot.mouseClick(path.save_button, Qt.MouseButton.LeftButton)
    assert warned and foreign.read_text() == "not yours"
    # "Play the path" plays the start, with the rest queued for the radio.
    qtbot.mouseClick(path.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.player.state == "playing", timeout=5000)
    assert window.player.key == ("anchor", start.id) and window.explorer.radio.queue == ids[1:]
    window.player.stop()
    path.close()
    assert shown[-1] == []
    # A path to the same song is not offered.
    menu = window.song_actions.menu_for(start, window)
    assert not next(a for a in menu.actions() if a.text().startswith("Path from")).isEnabled()


def test_the_radio_plays_the_nearest_song_not_played_yet(qtbot, env, tiny_encoder_path, long_songs):
    window = make_window(qtbot, env, tiny_encoder_path, folder=long_songs)
    _ready(qtbot, window)
    radio, player = window.explorer.radio, window.player
    controls = window.player_controls
    first = window.anchor
    nearest = window.recommender.index.similar(first.id, k=2)
    qtbot.mouseClick(controls.radio_button, Qt.MouseButton.LeftButton)
    assert radio.enabled and controls.radio_button.isChecked()
    window.preview.play_at(first, first.duration - 1.0, role="anchor")  # one second before its end
    qtbot.waitUntil(lambda: window.anchor.id == nearest[0].track.id, timeout=10_000)
    qtbot.waitUntil(lambda: player.state == "playing" and player.key == ("anchor", nearest[0].track.id),
                    timeout=5000)
    assert player.position() < 5.0  # from its start
    # The next one skips what was played (the first song is the second's nearest, maybe).
    following = radio.next_track(nearest[0].track.id)
    assert following is not None and following.id not in (first.id, nearest[0].track.id)
    # Stopping is the user's choice: nothing follows it.
    player.stop()
    qtbot.wait(300)
    assert player.state == "stopped" and window.anchor.id == nearest[0].track.id
    qtbot.mouseClick(controls.radio_button, Qt.MouseButton.LeftButton)
    assert not radio.enabled


def test_tag_words_leave_ordinary_words_as_they_were():
    from musicrec_gui.gui.models import filter_words

    # Apostrophes and backslashes in ordinary words are text to find, as before tag: existed.
    assert filter_words("Guns N' Roses Child O' Mine") == (["guns", "n'", "roses", "child", "o'", "mine"], [])
    assert filter_words("don't won't") == (["don't", "won't"], [])
    assert filter_words(r"c:\music") == ([r"c:\music"], [])
    assert filter_words('TAG:"Hard Rock" live') == (["live"], ["hard rock"])
    assert filter_words('tag:"hard rock') == ([], ["hard rock"])  # a quote still being typed
    assert filter_words('tag: tag:"" tag:ÄMBIENT') == ([], ["ämbient"])


def test_tag_chips_shown_again_and_again_leave_nothing_behind(qtbot):
    from PySide6.QtWidgets import QLabel, QToolButton

    from musicrec_gui.gui.spectrogram_panel import TagChips

    chips = TagChips()
    qtbot.addWidget(chips)
    for round_ in range(20):
        chips.set_tags([("rock", 0.5), ("hard rock", 0.2)] if round_ % 2 == 0 else [("ambient", 0.4)])
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    chips.set_tags([("jazz", 0.3)])
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert len(chips.findChildren(QToolButton)) == 1
    assert len(chips.findChildren(QLabel)) == 1  # one "Tags:" caption, not one per song shown
    chips.set_tags([])
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not chips.findChildren(QLabel) and not chips.findChildren(QToolButton) and chips.isHidden()


def test_the_radio_remembers_what_it_played_while_its_folder_is_shown_again(tmp_path, qtbot):
    """A rescan that finds a new file (or a change of analysis) shows the folder again: the songs the
    radio played must not start playing again; only another folder starts afresh."""
    from musicrec_gui.core.library import Library
    from musicrec_gui.gui.player import NullPlayer
    from musicrec_gui.gui.preview import Preview
    from musicrec_gui.gui.radio import Radio
    from musicrec_gui.gui.session import Session

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    session = Session(Library(tmp_path / "lib.sqlite3"), str(tmp_path / "none.keras"))
    radio = Radio(session, None, Preview(session, NullPlayer("no sound device in this test")))
    session.show_folder(tmp_path / "a")
    radio.set_enabled(True)
    radio.played = [1, 2, 3]
    session.show_folder(tmp_path / "a")  # the same folder, shown again
    session.set_analysis("full")
    assert radio.played == [1, 2, 3]
    session.show_folder(tmp_path / "b")
    assert radio.played == []


def _session_with_songs(tmp_path, n=12):
    """A real library of ``n`` songs analysed (spread) below tmp_path/songs, and a Session showing them."""
    import numpy as np

    from musicrec_gui.core.library import FileIdentity, Library
    from musicrec_gui.gui.session import Session

    folder = tmp_path / "songs"
    folder.mkdir()
    library = Library(tmp_path / "lib.sqlite3")
    found = [FileIdentity(str(folder / f"song{i:02d}.ogg"), 1, 1) for i in range(n)]
    rng = np.random.default_rng(0)
    for track in library.plan_scan(found, encoder_key="enc", analysis_key="spread8").todo:
        patches = rng.normal(size=(8, 16)).astype(np.float32)
        library.record_result(track.id, encoder_key="enc", analysis_key="spread8", vector=patches.mean(axis=0),
                              slice_vectors=patches, offset_seconds=0.0, title=track.title, artist="", album="",
                              duration=200.0)
    session = Session(library, str(tmp_path / "none.keras"))
    session.encoder_key = "enc"
    session.show_folder(folder)
    return session


def test_a_passage_is_not_answered_by_whole_songs_of_the_previous_analysis(tmp_path, qtbot, tiny_encoder_path):
    """Just after a change of analysis mode the old vectors stand in for songs not rescanned yet; they
    answer "songs like this song", never "songs like this passage" (which they were not asked)."""
    from musicrec_gui.core.explore import PassageMatch
    from musicrec_gui.gui.engine import Engine
    from musicrec_gui.gui.recommender import Query, Recommender
    from musicrec_gui.gui.tasks import BackgroundJobs

    session = _session_with_songs(tmp_path)
    engine = Engine(session.library, str(tiny_encoder_path))
    recommender = Recommender(session, engine, BackgroundJobs(1))
    answers = []
    recommender.answered.connect(answers.append)

    def ask(query):
        recommender.ask(query)
        qtbot.waitUntil(lambda: answers and answers[-1].query == query
                        and answers[-1].message != "Finding similar songs…", timeout=5000)
        return answers[-1]

    try:
        anchor = session.tracks()[0]
        assert len(ask(Query(anchor, 3)).recommendations) == 3
        session.set_analysis("full")
        anchor = session.track(anchor.id)
        assert anchor.status == "pending"
        answer = ask(Query(anchor, 3))
        assert len(answer.recommendations) == 3 and "previous analysis" in answer.note
        answer = ask(Query(anchor, 3, passage=(20.0, 30.0)))
        assert answer.recommendations and all(isinstance(r, PassageMatch) for r in answer.recommendations), answer
    finally:
        engine.shutdown()


def test_a_selected_passage_moved_past_the_shown_part_stays_inside_it(qtbot):
    import numpy as np

    from musicrec_gui.core.spectrogram import SpectrogramData
    from musicrec_gui.gui.spectrogram import SpectrogramView

    view = SpectrogramView(selectable=True)
    qtbot.addWidget(view)
    got = []
    view.passageSelected.connect(got.append)
    view.set_data(SpectrogramData(mel=np.zeros((128, 400), np.float32), offset=10.0, seconds_per_frame=0.05,
                                  boundaries=(), duration=40.0))
    view.set_selection((12.0, 15.0))
    view.selection.setRegion((-8.0, -5.0))  # what dragging the selection far to the left does
    view.selection.sigRegionChangeFinished.emit(view.selection)
    start, end = view.selection.getRegion()
    assert 10.0 <= start <= end <= 30.0
    assert all(p is None or 10.0 <= p[0] <= p[1] <= 30.0 for p in got)


def test_the_radio_skips_a_song_that_cannot_be_played_and_stops_after_three(qtbot, env, tiny_encoder_path,
                                                                            long_songs):
    window = make_window(qtbot, env, tiny_encoder_path, folder=long_songs)
    _ready(qtbot, window)
    radio, player = window.explorer.radio, window.player
    first = window.anchor
    order = [r.track for r in window.recommender.index.similar(first.id, k=5)]
    os.remove(order[0].path)  # vanished after the scan
    messages = []
    radio.message.connect(messages.append)
    radio.start(first)
    qtbot.waitUntil(lambda: player.state == "playing", timeout=5000)
    player.seek(first.duration - 1.0)
    # The nearest song cannot be played: the radio goes on with the next nearest.
    qtbot.waitUntil(lambda: player.state == "playing" and player.key[1] not in (first.id, order[0].id),
                    timeout=15_000)
    assert radio.enabled and order[0].id in radio.played and window.anchor.id == player.key[1]
    player.stop()
    # Songs that cannot be played, three in a row, stop it and say why.
    for track in window.songs.model.tracks():
        if track.id != first.id and os.path.exists(track.path):
            os.remove(track.path)
    radio.start(first)
    qtbot.waitUntil(lambda: player.state == "playing", timeout=5000)
    player.seek(first.duration - 1.0)
    qtbot.waitUntil(lambda: not radio.enabled, timeout=20_000)
    assert any("3 songs in a row" in m for m in messages)
