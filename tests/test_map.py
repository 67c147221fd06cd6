"""The library map: its projection (core, no Qt) and the Map tab of the real window (offscreen Qt,
a real SQLite library file whose vectors are written as a scan writes them, without the encoder)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QMouseEvent, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from musicrec_gui.core import projection  # noqa: E402
from musicrec_gui.core.config import AnalysisSettings  # noqa: E402
from musicrec_gui.core.encoder import read_encoder_config  # noqa: E402
from musicrec_gui.core.library import FileIdentity, Library  # noqa: E402
from musicrec_gui.core.playlist import is_musicrec_playlist  # noqa: E402
from musicrec_gui.core.projection import points_in_polygon  # noqa: E402
from musicrec_gui.gui.player import NullPlayer  # noqa: E402
from musicrec_gui.gui import map_panel  # noqa: E402
from musicrec_gui.gui.preferences import open_store  # noqa: E402
from musicrec_gui.gui.window import MainWindow  # noqa: E402

ANALYSIS = AnalysisSettings().key


def clustered(n: int, d: int = 16, *, clusters: int = 4, seed: int = 0) -> np.ndarray:
    """Song-like vectors: non-negative (a ReLU encoder's), in well separated clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 3, (clusters, d))
    labels = np.arange(n) % clusters
    return np.abs(centres[labels] + 0.15 * rng.standard_normal((n, d))).astype(np.float32)


# -- core -------------------------------------------------------------------------------------------
def test_points_stay_put_as_songs_are_added_until_the_set_grows_by_a_quarter():
    vectors = clustered(140)
    ids = np.arange(1, 141)
    song_map = projection.LibraryMap(ids[:100], vectors[:100])
    assert song_map.fitted and song_map.basis.fitted_on == 100
    before = song_map.points.copy()
    for i in range(100, 124):  # 124 < 125: the basis is kept
        assert song_map.add(int(ids[i]), vectors[i]) is False
    np.testing.assert_array_equal(song_map.points[:100], before)
    # A new song is placed exactly where the basis puts it (one matrix product)...
    np.testing.assert_allclose(song_map.points[-1], song_map.basis.project(vectors[123])[0], atol=1e-6)
    # ... and where a map built at once on that basis would put it.
    again = projection.LibraryMap(ids[:124], vectors[:124], basis=song_map.basis)
    assert not again.fitted
    np.testing.assert_allclose(again.points, song_map.points, atol=1e-6)
    # The 125th song refits: every point moves a little, none is mirrored.
    assert song_map.add(int(ids[124]), vectors[124]) is True
    assert song_map.basis.fitted_on == 125
    for k in range(2):
        assert np.corrcoef(before[:, k], song_map.points[:100, k])[0, 1] > 0.9
    # Adding a song again (analysed again) moves it, it is not a second point.
    assert song_map.add(int(ids[0]), vectors[1]) is False and len(song_map) == 125


def test_the_map_keeps_clusters_apart():
    vectors = clustered(200, clusters=2, seed=3)
    points = projection.LibraryMap(np.arange(200), vectors).points
    a, b = points[0::2], points[1::2]
    gap = np.linalg.norm(a.mean(axis=0) - b.mean(axis=0))
    assert gap > 4 * max(a.std(axis=0).max(), b.std(axis=0).max())


def _library_with_vectors(tmp_path, n: int, *, encoder_key: str, folder_name: str = "music",
                          pending: int = 0, tags: int = 0) -> tuple[Library, str, np.ndarray]:
    """A real library file: ``n`` analysed songs (vectors written by ``record_result``, as a scan
    does) and ``pending`` songs not analysed yet, below ``tmp_path/folder_name``."""
    folder = tmp_path / folder_name
    folder.mkdir(exist_ok=True)
    library = Library(tmp_path / "library.sqlite3")
    found = [FileIdentity(str(folder / f"song{i:03d}.ogg"), 1, 1) for i in range(n + pending)]
    todo = library.plan_scan(found, encoder_key=encoder_key, analysis_key=ANALYSIS).todo
    vectors = clustered(n)
    for i, track in enumerate(todo[:n]):
        probabilities = None
        if tags:
            probabilities = np.full(tags, 0.1, np.float32)
            probabilities[i % 4 % tags] = 0.9
        library.record_result(track.id, encoder_key=encoder_key, analysis_key=ANALYSIS, vector=vectors[i],
                              slice_vectors=vectors[i][None], offset_seconds=0.0, title=f"Song {i:03d}",
                              artist=f"Artist {i % 3}", album=f"Album {i % 4}", duration=60.0,
                              tag_probabilities=probabilities)
    return library, str(folder), vectors


def test_the_basis_is_cached_per_encoder_analysis_and_folder(tmp_path):
    library, folder, _vectors = _library_with_vectors(tmp_path, 40, encoder_key="enc-a")
    keys = {"encoder_key": "enc-a", "analysis_key": ANALYSIS, "under": folder}
    first = projection.LibraryMap.from_library(library, **keys)
    assert first.fitted and len(first) == 40
    cached = projection.load_basis(library, encoder_key="enc-a", analysis_key=ANALYSIS, folder=folder)
    np.testing.assert_array_equal(cached.mean, first.basis.mean)
    np.testing.assert_array_equal(cached.axes, first.basis.axes)
    assert cached.fitted_on == 40
    # Opened again: the cached basis, not a new fit, and the very same points.
    second = projection.LibraryMap.from_library(library, **keys)
    assert not second.fitted
    np.testing.assert_array_equal(second.points, first.points)
    # Another encoder, another analysis or another folder: no basis of theirs.
    assert projection.load_basis(library, encoder_key="enc-b", analysis_key=ANALYSIS, folder=folder) is None
    assert projection.load_basis(library, encoder_key="enc-a", analysis_key="excerpt30", folder=folder) is None
    assert projection.load_basis(library, encoder_key="enc-a", analysis_key=ANALYSIS, folder=tmp_path) is None
    # A damaged entry is ignored (fitted again), never an error.
    library.set_meta(projection.cache_key(encoder_key="enc-a", analysis_key=ANALYSIS, folder=folder), "{not json")
    assert projection.LibraryMap.from_library(library, **keys).fitted
    library.close()


def test_a_cached_basis_of_another_size_or_outgrown_is_fitted_again(tmp_path):
    library, folder, vectors = _library_with_vectors(tmp_path, 40, encoder_key="enc")
    keys = {"encoder_key": "enc", "analysis_key": ANALYSIS, "folder": folder}
    projection.store_basis(library, projection.fit_basis(np.ones((40, 8), np.float32) + np.eye(40, 8)), **keys)
    assert projection.LibraryMap.from_library(library, encoder_key="enc", analysis_key=ANALYSIS, under=folder).fitted
    projection.store_basis(library, projection.fit_basis(vectors[:30]), **keys)  # 40 ≥ 1.25 × 30
    refitted = projection.LibraryMap.from_library(library, encoder_key="enc", analysis_key=ANALYSIS, under=folder)
    assert refitted.fitted and projection.load_basis(library, **keys).fitted_on == 40
    library.close()


def test_points_in_polygon_agrees_with_matplotlib():
    from matplotlib.path import Path as MplPath

    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, (5000, 2))
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    polygon = np.c_[np.cos(angles), np.sin(angles)] * rng.uniform(0.3, 1.0, (40, 1))  # a star-shaped lasso
    expected = MplPath(polygon).contains_points(points)
    assert expected.sum() > 100
    np.testing.assert_array_equal(points_in_polygon(points, polygon), expected)


# -- the Map tab of the real window ------------------------------------------------------------------------
def _open_map(qtbot, tmp_path, encoder_path, songs: int, *, lod_points: int | None = None):
    """The main window on a library of ``songs`` analysed songs and 5 waiting ones, the Map tab shown."""
    key = read_encoder_config(encoder_path).key
    library, folder, vectors = _library_with_vectors(tmp_path, songs, encoder_key=key, pending=5)
    store = open_store(str(tmp_path / "settings.ini"))
    window = MainWindow(library, store, encoder_path=encoder_path, player=NullPlayer("tests"), autostart=False)
    qtbot.addWidget(window)
    if lod_points is not None:
        window.map.layers.lod_points = lod_points
    window.resize(1280, 800)
    window.show()
    window.session.show_folder(folder)
    with qtbot.waitSignal(window.map.ready, timeout=10_000):
        window.left_tabs.setCurrentIndex(1)
    qtbot.wait(50)
    return window, library


@pytest.fixture()
def map_window(qtbot, tmp_path, tiny_encoder_path):
    """The main window on a library of 48 analysed songs and 5 waiting ones, the Map tab shown."""
    window, library = _open_map(qtbot, tmp_path, tiny_encoder_path, 48)
    yield window
    window.close()
    window.engine.shutdown()
    library.close()


@pytest.fixture()
def big_map_window(qtbot, tmp_path, tiny_encoder_path):
    """The same on 400 analysed songs in 4 clusters, drawn by level of detail above 60 songs in view
    (the app's threshold is 50 000: the same code, on a library a test can write in a second)."""
    window, library = _open_map(qtbot, tmp_path, tiny_encoder_path, 400, lod_points=60)
    yield window
    window.close()
    window.engine.shutdown()
    library.close()


def _widget_pos(panel, track_id: int) -> QPoint:
    """Where a song's point is, in the plot's viewport pixels."""
    x, y = panel._position(track_id)
    scene = panel.view.mapViewToScene(QPointF(float(x), float(y)))
    return panel.plot.mapFromScene(scene)


def _mouse(widget, kind, pos: QPoint, *, button=Qt.MouseButton.LeftButton, buttons=Qt.MouseButton.LeftButton,
           modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    global_pos = widget.mapToGlobal(pos)
    event = QMouseEvent(kind, QPointF(pos), QPointF(global_pos), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def test_the_map_shows_every_analysed_song_once(map_window):
    panel = map_window.map
    shown = sum(len(item.data) for item in panel.group_items)
    assert shown == len(panel.map) == 48  # the 5 waiting songs have no vector: not on the map
    assert sorted(panel.map.ids.tolist()) == sorted(t.id for t in map_window.session.tracks() if t.status == "done")
    # Coloured by album: four albums, four legend entries, no grey group left over.
    assert [len(item.data) for item in panel.group_items] == [0, 12, 12, 12, 12]
    assert sorted(panel.legend_entries) == [(f"Album {i}", 12) for i in range(4)]
    assert "Album&nbsp;0&nbsp;(12)" in panel.legend.text()
    panel.colour_box.setCurrentIndex(panel.colour_box.findData("artist"))
    assert sorted(len(item.data) for item in panel.group_items) == [0, 16, 16, 16]


def test_colouring_by_album_or_artist_reads_the_names_from_the_song_table(map_window, monkeypatch):
    # Not a Track made per song (~8 µs each: seconds for every redraw of a million-song map).
    from musicrec_gui.core.songtable import SongTable

    panel = map_window.map
    made = []
    track = SongTable.track
    monkeypatch.setattr(SongTable, "track", lambda table, slot: made.append(slot) or track(table, slot))
    panel.colour_box.setCurrentIndex(panel.colour_box.findData("artist"))
    assert sorted(len(item.data) for item in panel.group_items) == [0, 16, 16, 16]
    panel.colour_box.setCurrentIndex(panel.colour_box.findData("album"))
    assert sorted(panel.legend_entries) == [(f"Album {i}", 12) for i in range(4)]
    assert len(made) <= 4  # the anchor's and the highlights', not one per song


def test_a_click_on_a_point_makes_it_the_anchor_and_the_list_follows(qtbot, map_window):
    panel = map_window.map
    target = map_window.session.track(int(panel.map.ids[7]))
    pos = _widget_pos(panel, target.id)
    viewport = panel.plot.viewport()
    _mouse(viewport, QEvent.Type.MouseButtonPress, pos)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, pos, buttons=Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: map_window.anchor is not None and map_window.anchor.id == target.id, timeout=2000)
    current = map_window.songs.view.currentIndex()
    assert current.isValid() and current.data(Qt.ItemDataRole.DisplayRole) == target.title
    # The anchor's point is drawn, and its recommendations are highlighted once answered.
    np.testing.assert_allclose(panel.anchor_item.data["x"], [panel._position(target.id)[0]])
    qtbot.waitUntil(lambda: len(panel.neighbour_ids) == map_window.recommendations.count, timeout=10_000)
    assert panel.neighbour_ids == [r.track.id for r in map_window.recommendations.recommendations]
    assert len(panel.neighbour_item.data) == len(panel.neighbour_ids)


def test_hovering_a_point_names_the_song(qtbot, map_window):
    panel = map_window.map
    track = map_window.session.track(int(panel.map.ids[3]))
    pos = _widget_pos(panel, track.id)
    _mouse(panel.plot.viewport(), QEvent.Type.MouseMove, pos + QPoint(2, 1), button=Qt.MouseButton.NoButton,
           buttons=Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: panel.hover_text != "", timeout=2000)
    assert panel.hover_text == f"{track.artist} – {track.title}"
    # Far from every point: nothing named.
    assert panel.track_id_at(QPointF(1e6, 1e6)) is None


def test_an_anchor_picked_in_the_list_is_highlighted_and_brought_into_view(qtbot, map_window):
    panel = map_window.map
    ids = panel.map.ids.tolist()
    # Zoom far into one song, so the next anchor is out of view.
    x, y = panel._position(ids[0])
    panel.view.setRange(QRectF(float(x) - 1e-3, float(y) - 1e-3, 2e-3, 2e-3), padding=0)
    far = max(ids, key=lambda i: float(np.linalg.norm(panel._position(i) - panel._position(ids[0]))))
    assert map_window.select_track(far)
    np.testing.assert_allclose([panel.anchor_item.data["x"][0], panel.anchor_item.data["y"][0]],
                               panel._position(far), atol=1e-6)
    (x0, x1), (y0, y1) = panel.view.viewRange()
    fx, fy = panel._position(far)
    assert x0 <= fx <= x1 and y0 <= fy <= y1
    qtbot.waitUntil(lambda: len(panel.neighbour_ids) > 0, timeout=10_000)
    # Another anchor: the old neighbours are no longer highlighted until its own answer comes.
    map_window.select_track(ids[1])
    assert panel.neighbour_ids in ([], [r.track.id for r in map_window.recommendations.recommendations])
    qtbot.waitUntil(lambda: panel.neighbour_ids == [r.track.id for r in map_window.recommendations.recommendations]
                    and panel.neighbour_ids != [], timeout=10_000)


def _shift_drag(qtbot, panel, start, end) -> tuple[np.ndarray, np.ndarray]:
    """Shift-drag a rectangle from ``start`` to ``end`` (map coordinates) with the real mouse events;
    the rectangle as the view saw it (pixels round its corners a little): its low and high corners."""
    corner_a = panel.plot.mapFromScene(panel.view.mapViewToScene(QPointF(*start)))
    corner_b = panel.plot.mapFromScene(panel.view.mapViewToScene(QPointF(*end)))
    viewport, shift = panel.plot.viewport(), Qt.KeyboardModifier.ShiftModifier
    _mouse(viewport, QEvent.Type.MouseButtonPress, corner_a, modifiers=shift)
    for step in range(1, 6):
        qtbot.wait(20)  # pyqtgraph takes at most 100 mouse moves a second
        _mouse(viewport, QEvent.Type.MouseMove, corner_a + (corner_b - corner_a) * (step / 5),
               button=Qt.MouseButton.NoButton, modifiers=shift)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, corner_b, buttons=Qt.MouseButton.NoButton, modifiers=shift)
    a = panel.view.mapSceneToView(panel.plot.mapToScene(corner_a))
    b = panel.view.mapSceneToView(panel.plot.mapToScene(corner_b))
    return np.minimum([a.x(), a.y()], [b.x(), b.y()]), np.maximum([a.x(), a.y()], [b.x(), b.y()])


def test_a_shift_drag_selects_the_songs_in_the_rectangle(qtbot, map_window):
    panel = map_window.map
    points, ids = panel.map.points, panel.map.ids
    centre = points[0]  # a rectangle around one song, a fifth of the map wide
    half = (points.max(axis=0) - points.min(axis=0)) * 0.1
    (x0, x1), (y0, y1) = panel.view.viewRange()  # a drag must start inside the view
    inner_lo, inner_hi = np.array([x0, y0]) + 0.01, np.array([x1, y1]) - 0.01
    start, end = np.clip(centre - half, inner_lo, inner_hi), np.clip(centre + half, inner_lo, inner_hi)
    lo, hi = _shift_drag(qtbot, panel, start, end)
    expected = ids[np.all((points >= lo) & (points <= hi), axis=1)]
    assert 0 < len(expected) < len(ids)
    assert sorted(panel.selected_ids.tolist()) == sorted(expected.tolist())
    assert panel.save_button.isEnabled() and str(len(expected)) in panel.save_button.text()
    assert map_window.anchor is None  # a drag is not a click: no song was picked
    panel.select_polygon(np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]]))
    assert sorted(panel.selected_ids.tolist()) == sorted(expected.tolist())


def test_saving_a_selection_writes_a_playlist_and_never_a_foreign_file(qtbot, map_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    panel = map_window.map
    chosen = panel.map.ids[:5].tolist()
    panel.select_ids(chosen)
    out = tmp_path / "picked.m3u8"
    written = panel.save_playlist(str(out))
    assert written == out and is_musicrec_playlist(out)
    lines = [line for line in out.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert sorted(lines) == sorted(map_window.session.track(i).path for i in chosen)
    # A file musicrec did not write is never replaced, from the code or through the dialog.
    foreign = tmp_path / "mine.m3u8"
    foreign.write_text("my own playlist\n", encoding="utf-8")
    with pytest.raises(ValueError):
        panel.save_playlist(str(foreign))
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    other = tmp_path / "notes.txt.m3u8"
    other.write_bytes(b"\x00 not a playlist")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(tmp_path / "notes.txt"), ""))
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    panel.save_button.click()  # "notes.txt" → notes.txt.m3u8, which the dialog never asked about
    assert shown and other.read_bytes() == b"\x00 not a playlist"
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert foreign.read_text(encoding="utf-8") == "my own playlist\n"
    # Our own playlist is replaced through the dialog.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(out), ""))
    panel.select_ids(chosen[:2])
    panel.save_button.click()
    assert len([line for line in out.read_text(encoding="utf-8").splitlines() if line.endswith(".ogg")]) == 2


def test_show_path_draws_a_line_through_the_songs(map_window):
    panel = map_window.map
    path = panel.map.ids[[4, 9, 30]].tolist()
    panel.show_path(path + [10 ** 9])  # a song not on the map is skipped
    x, y = panel.path_item.getData()
    np.testing.assert_allclose(np.c_[x, y], [panel._position(i) for i in path], atol=1e-6)
    panel.clear_path()
    x, _y = panel.path_item.getData()
    assert x is None or len(x) == 0


def test_colour_by_top_tag_and_the_remembered_tab(qtbot, tmp_path, tagging_encoder_path):
    key = read_encoder_config(tagging_encoder_path).key
    library, folder, _vectors = _library_with_vectors(tmp_path, 24, encoder_key=key, tags=3)
    store = open_store(str(tmp_path / "settings.ini"))
    window = MainWindow(library, store, encoder_path=tagging_encoder_path, player=NullPlayer("tests"),
                        autostart=False)
    qtbot.addWidget(window)
    window.show()
    window.session.show_folder(folder)
    with qtbot.waitSignal(window.map.ready, timeout=10_000):
        window.left_tabs.setCurrentIndex(1)
    panel = window.map
    panel.colour_box.setCurrentIndex(panel.colour_box.findData("tag"))
    names = [f"{name} ({count})" for name, count in panel.legend_entries]
    # Songs i % 4 == 0 and 3 have "drone" on top, 1 "noise", 2 "chord" (see _library_with_vectors).
    assert names == ["drone (12)", "noise (6)", "chord (6)"]
    window.close()
    window.engine.shutdown()
    again = MainWindow(library, store, encoder_path=tagging_encoder_path, player=NullPlayer("tests"), autostart=False)
    qtbot.addWidget(again)
    assert again.left_tabs.currentIndex() == 1  # the Map tab, as it was left
    again.close()
    again.engine.shutdown()
    library.close()


def test_songs_a_scan_finishes_appear_on_the_map(qtbot, tmp_path, tiny_encoder_path, good_library_dir):
    import shutil

    folder = tmp_path / "music"
    shutil.copytree(good_library_dir, folder)
    library = Library(tmp_path / "library.sqlite3")
    store = open_store(str(tmp_path / "settings.ini"))
    window = MainWindow(library, store, encoder_path=tiny_encoder_path, player=NullPlayer("tests"), autostart=False)
    qtbot.addWidget(window)
    window.show()
    window.left_tabs.setCurrentIndex(1)  # the map is open (and empty) before the scan
    window.open_folder(str(folder))
    qtbot.waitUntil(lambda: not window.engine.scanning, timeout=60_000)
    qtbot.waitUntil(lambda: window.map.map is not None
                    and sum(len(item.data) for item in window.map.group_items) == len(window.map.map), timeout=5000)
    done = [t.id for t in window.session.tracks() if t.status == "done"]
    assert len(done) >= 5
    assert sorted(window.map.map.ids.tolist()) == sorted(done)
    # The basis the map ended on is cached (by the engine thread, the one writer, once its scan is
    # over): the next start places every song where it is now.
    keys = {"encoder_key": window.session.encoder_key, "analysis_key": window.session.analysis.key}
    qtbot.waitUntil(lambda: projection.load_basis(library, folder=window.session.folder, **keys) is not None,
                    timeout=5000)
    again = projection.LibraryMap.from_library(library, under=window.session.folder, store=False, **keys)
    assert not again.fitted
    np.testing.assert_array_equal(again.basis.axes, window.map.map.basis.axes)
    window.close()
    window.engine.shutdown()
    library.close()


def test_a_path_between_two_songs_is_drawn_on_the_map(qtbot, map_window):
    panel = map_window.map
    ids = panel.map.ids.tolist()
    start, end = map_window.session.track(ids[0]), map_window.session.track(ids[-1])
    map_window.select_track(start.id)  # builds the folder's index, which the path is found in
    qtbot.waitUntil(lambda: map_window.recommender.index is not None, timeout=10_000)
    view = map_window.explorer.show_path(start, end)
    qtbot.waitUntil(lambda: len(view.track_ids()) >= 2 and panel.path_item.getData()[0] is not None
                    and len(panel.path_item.getData()[0]) == len(view.track_ids()), timeout=10_000)
    x, y = panel.path_item.getData()
    np.testing.assert_allclose(np.c_[x, y], [panel._position(i) for i in view.track_ids()], atol=1e-6)
    view.close()  # the path leaves the map with its window
    qtbot.waitUntil(lambda: panel.path_item.getData()[0] is None or len(panel.path_item.getData()[0]) == 0,
                    timeout=2000)


# -- a map too large to draw every point: the level of detail ---------------------------------------------
def _image_alpha_at(panel, points: np.ndarray) -> np.ndarray:
    """The density image's opacity at each map position [shape=(n, 2)] (0 outside the image)."""
    rgba = panel.layers.image.image
    rect = panel.layers.image.mapRectToParent(panel.layers.image.boundingRect())
    height, width = rgba.shape[:2]
    col = np.floor((points[:, 0] - rect.left()) / rect.width() * width).astype(int)
    row = np.floor((points[:, 1] - rect.top()) / rect.height() * height).astype(int)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    alpha = np.zeros(len(points), np.uint8)
    alpha[inside] = rgba[row[inside], col[inside], 3]
    return alpha


def _sorted_rows(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float32).reshape(-1, 2)
    return points[np.lexsort((points[:, 1], points[:, 0]))]


def _drawn_points(panel) -> np.ndarray:
    return np.concatenate([np.c_[item.data["x"], item.data["y"]] for item in panel.group_items])


def _zoom_to_few(qtbot, panel, *, around: int = 0) -> None:
    """Zoom in around the song in row ``around`` until fewer songs than the threshold are in view."""
    x, y = (float(v) for v in panel.map.points[around])
    half = float(np.ptp(panel.map.points, axis=0).max()) / 2
    while True:
        half /= 2
        panel.view.setRange(QRectF(x - half, y - half, 2 * half, 2 * half), padding=0)
        (x0, x1), (y0, y1) = panel.view.viewRange()
        p = panel.map.points
        if ((p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)).sum() < 40:
            break
    qtbot.waitUntil(lambda: panel.layers.level == "points", timeout=2000)  # the debounced refresh


def test_a_large_map_shows_a_density_image_where_the_songs_are(big_map_window):
    panel = big_map_window.map
    layers, points = panel.layers, panel.map.points
    assert len(panel.map) == 400 and layers.level == "overview"
    assert layers.image.isVisible() and len(_drawn_points(panel)) == 0  # no scatter of 400 points
    assert (_image_alpha_at(panel, points) > 0).all()  # every song's pixel is drawn
    # ... and the rest is empty: the image is a map of the clusters, not a blob.
    assert (layers.image.image[..., 3] > 0).mean() < 0.2
    # Coloured by album: a pixel's colour is one of its songs' album colours.
    rgba = layers.image.image
    colours = {tuple(int(v) for v in QColor(c).getRgb()[:3]) for c in map_panel.PALETTE[:4]}
    assert {tuple(int(v) for v in px[:3]) for px in rgba[rgba[..., 3] > 0]} <= colours
    # The legend and the status count every song, drawn or not.
    assert sorted(panel.legend_entries) == [(f"Album {i}", 100) for i in range(4)]
    assert panel.status.text().startswith("400 songs")


def test_zoomed_in_a_large_map_draws_the_real_songs_of_the_region(qtbot, big_map_window):
    panel = big_map_window.map
    _zoom_to_few(qtbot, panel)
    layers, points, ids = panel.layers, panel.map.points, panel.map.ids
    x0, x1, y0, y1 = layers.region
    (v0, v1), (w0, w1) = panel.view.viewRange()
    assert x0 <= v0 and v1 <= x1 and y0 <= w0 and w1 <= y1  # the region holds the view
    inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
    assert 0 < inside.sum() < 400
    np.testing.assert_array_equal(_sorted_rows(_drawn_points(panel)), _sorted_rows(points[inside]))
    assert not layers.image.isVisible()
    # Each song in its album's scatter (the grey one is empty: every song is on one of 4 albums).
    albums = np.array([panel.track(int(i)).album for i in ids])
    assert len(panel.group_items[0].data) == 0
    for (name, _count), item in zip(panel.legend_entries, panel.group_items[1:]):
        np.testing.assert_array_equal(_sorted_rows(np.c_[item.data["x"], item.data["y"]]),
                                      _sorted_rows(points[inside & (albums == name)]))


def test_hover_and_click_at_the_zoomed_in_level_pick_that_song(qtbot, big_map_window):
    panel = big_map_window.map
    _zoom_to_few(qtbot, panel, around=123)
    target = big_map_window.session.track(int(panel.map.ids[123]))
    pos = _widget_pos(panel, target.id)
    viewport = panel.plot.viewport()
    _mouse(viewport, QEvent.Type.MouseMove, pos + QPoint(1, 1), button=Qt.MouseButton.NoButton,
           buttons=Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: panel.hover_text != "", timeout=2000)
    assert panel.hover_text == f"{target.artist} – {target.title}"
    _mouse(viewport, QEvent.Type.MouseButtonPress, pos)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, pos, buttons=Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: big_map_window.anchor is not None and big_map_window.anchor.id == target.id,
                    timeout=2000)
    # Hover over the overview finds real songs too (it reads the map's points, not what is drawn).
    panel.show_all()
    panel.layers.refresh()
    assert panel.layers.level == "overview"
    assert panel.track_id_at(QPointF(*(float(v) for v in panel.map.points[7]))) == int(panel.map.ids[7])


def test_a_rectangle_drawn_over_the_overview_selects_the_songs_inside(qtbot, big_map_window):
    panel = big_map_window.map
    assert panel.layers.level == "overview"
    points, ids = panel.map.points, panel.map.ids
    lo, hi = points.min(axis=0), points.max(axis=0)
    (x0, x1), (y0, y1) = panel.view.viewRange()
    start = np.maximum(lo, [x0, y0]) + 0.01
    end = start + (hi - lo) * 0.6
    lo, hi = _shift_drag(qtbot, panel, start, end)
    expected = ids[np.all((points >= lo) & (points <= hi), axis=1)]
    assert 60 < len(expected) < 400  # more songs than the level of detail would draw as points
    assert sorted(panel.selected_ids.tolist()) == sorted(expected.tolist())
    assert str(len(expected)) in panel.save_button.text()
    # Ringed over the image: every selected song here (fewer than the sample's limit).
    assert len(panel.selection_item.data) == len(expected)
    # Zoomed in: the selected songs of the drawn region are ringed, the selection stays whole.
    _zoom_to_few(qtbot, panel, around=int(np.flatnonzero(np.isin(ids, expected))[0]))
    x0, x1, y0, y1 = panel.layers.region
    chosen = points[np.isin(ids, expected)]
    shown = chosen[(chosen[:, 0] >= x0) & (chosen[:, 0] <= x1) & (chosen[:, 1] >= y0) & (chosen[:, 1] <= y1)]
    assert 0 < len(shown) < len(expected)
    ringed = np.c_[panel.selection_item.data["x"], panel.selection_item.data["y"]]
    np.testing.assert_array_equal(_sorted_rows(ringed), _sorted_rows(shown))
    assert sorted(panel.selected_ids.tolist()) == sorted(expected.tolist())


def test_songs_a_scan_adds_appear_on_a_large_map(qtbot, big_map_window):
    from musicrec_gui.core import scan as scan_mod

    window, panel = big_map_window, big_map_window.map
    library = window.session.library
    waiting = [t for t in window.session.tracks() if t.status != "done"]
    assert len(waiting) == 5
    # The user zooms out a little with the wheel: the map no longer follows the scan's songs, so
    # only the level of detail's own refresh can draw the new one.
    centre = panel.plot.viewport().rect().center()
    wheel = QWheelEvent(QPointF(centre), QPointF(panel.plot.viewport().mapToGlobal(centre)), QPoint(0, 0),
                        QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(panel.plot.viewport(), wheel)
    assert panel._view_moved
    panel.layers.refresh()
    # A song between two clusters, where the overview is empty before the scan adds it.
    ids, vectors = library.vectors(encoder_key=window.session.encoder_key, analysis_key=ANALYSIS)
    vector = (vectors[0] + vectors[1]) / 2  # songs 0 and 1 are of two clusters (see clustered)
    where = panel.map.basis.project(vector)
    assert _image_alpha_at(panel, where)[0] == 0
    track = waiting[0]
    library.record_result(track.id, encoder_key=window.session.encoder_key, analysis_key=ANALYSIS, vector=vector,
                          slice_vectors=vector[None], offset_seconds=0.0, title="New song", artist="New artist",
                          album="Album 0", duration=60.0)
    done = library.tracks(under=window.session.folder)
    track = next(t for t in done if t.id == track.id)
    window.engine.event.emit(scan_mod.TrackDone(track, 1, 1, 5, vector=vector))
    assert len(panel.map) == 401
    panel.layers.refresh()  # the view moves before the next flush draws the song: the rest is drawn
    assert panel.layers.level == "overview" and _image_alpha_at(panel, where)[0] == 0
    window.engine.event.emit(scan_mod.ScanFinished(1, 0, 0, False, 1.0))  # draws what was added at once
    qtbot.waitUntil(lambda: len(panel.map) == 401 and _image_alpha_at(panel, where)[0] > 0, timeout=3000)
    row = panel.map.row_of(track.id)
    np.testing.assert_allclose(panel.map.points[row], where[0], atol=1e-5)
    # Zoomed in there: drawn as a real point, and the mouse finds it.
    _zoom_to_few(qtbot, panel, around=row)
    assert any(np.allclose(p, where[0]) for p in _drawn_points(panel))
    assert panel.track_id_at(QPointF(float(where[0, 0]), float(where[0, 1]))) == track.id


def test_a_large_map_is_built_a_chunk_at_a_time_without_keeping_the_vectors(tmp_path, monkeypatch):
    """Above ``STREAM_FROM`` songs: the basis and points of the in-memory map, no vectors kept, and
    growing past the basis says so (the panel then builds it again from the library)."""
    from musicrec_gui.core import library as library_mod

    library, folder, vectors = _library_with_vectors(tmp_path, 700, encoder_key="enc")
    keys = {"encoder_key": "enc", "analysis_key": ANALYSIS, "under": folder}
    ids, _ = library.vectors(**keys)
    monkeypatch.setattr(library_mod, "VECTOR_READ_CHUNK", 64)  # many chunks
    monkeypatch.setattr(projection, "FIT_SAMPLE", 300)  # a sample, its rows spread over the chunks
    in_memory = projection.LibraryMap(ids, vectors)
    monkeypatch.setattr(projection, "STREAM_FROM", 500)
    streamed = projection.LibraryMap.from_library(library, use_cache=False, **keys)
    assert streamed._raw is None and streamed.fitted
    assert np.array_equal(streamed.ids, in_memory.ids)
    assert [streamed.row_of(int(i)) for i in ids[::50]] == list(range(0, len(ids), 50))
    assert streamed.row_of(10**9) is None and int(ids[3]) in streamed and 10**9 not in streamed
    np.testing.assert_allclose(streamed.basis.mean, in_memory.basis.mean, atol=1e-5)
    np.testing.assert_allclose(streamed.points, in_memory.points, atol=1e-4)
    # On the cached basis: read once, the same points.
    projection.store_basis(library, streamed.basis, encoder_key="enc", analysis_key=ANALYSIS, folder=folder)
    cached = projection.LibraryMap.from_library(library, **keys)
    assert not cached.fitted and np.allclose(cached.points, streamed.points)
    # Growing by a quarter: each song placed on the basis it has, and the map marked to be built again.
    for i in range(174):
        assert cached.add(10_000 + i, vectors[i]) is False
        assert not cached.outgrown
    cached.add(20_000, vectors[0])
    assert cached.outgrown and cached.row_of(20_000) == len(cached) - 1 and cached.row_of(10_000) == len(ids)
    np.testing.assert_allclose(cached.points[-1], cached.basis.project(vectors[0])[0], atol=1e-6)


def test_a_large_map_keeps_every_song_when_a_scan_writes_a_vector_between_its_count_and_its_read(tmp_path, monkeypatch):
    # The count sizes the fit's sample; songs are read afterwards, ordered by id. A changed file the
    # scan analyses again meanwhile (an old, small id) comes in the middle: the map must still hold
    # every song read, not drop the last one by id (whose analysis no scan event brings back).
    library, folder, vectors = _library_with_vectors(tmp_path, 600, encoder_key="enc")
    keys = {"encoder_key": "enc", "analysis_key": ANALYSIS, "under": folder}
    monkeypatch.setattr(projection, "STREAM_FROM", 500)
    first = library.tracks(under=folder)[0]
    changed = FileIdentity(first.path, 2, 2)  # the file changed: its vector is dropped, the song waits
    others = [FileIdentity(t.path, t.size, t.mtime_ns) for t in library.tracks(under=folder)[1:]]
    library.plan_scan([changed, *others], encoder_key="enc", analysis_key=ANALYSIS)
    counted = library.vector_count(**keys)
    assert counted == 599
    library.record_result(first.id, encoder_key="enc", analysis_key=ANALYSIS, vector=vectors[0],
                          slice_vectors=vectors[0][None], offset_seconds=0.0, title="Song 000", artist="",
                          album="", duration=60.0)  # the scan, after the map counted
    streamed = projection.LibraryMap._streamed(library, counted, None, keys)
    assert sorted(streamed.ids.tolist()) == sorted(library.vectors(**keys)[0].tolist())
    library.close()
