"""The library map: every analysed song of the open folder as a point, similar songs near each other.

Positions come from ``core.projection`` (computed in a worker, cached in the library); the
panel draws them with a few pyqtgraph scatter items (one per colour group, no per-point
objects; a large map by level of detail, ``map_lod``), finds the point under the mouse with a
grid of the points (``core.map_grid``), and follows the session (the anchor), the recommender
(its neighbours) and the scans (songs appear as they are analysed).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLocale, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from musicrec_gui.core import projection
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.library import Track
from musicrec_gui.core.playlist import display_name
from musicrec_gui.core.tags import SongTags
from musicrec_gui.gui.engine import Engine
from musicrec_gui.gui.map_lod import MapLayers
from musicrec_gui.gui.map_view import MapView, PassiveScatter
from musicrec_gui.gui.playlist_save import ask_and_save, saved_text, write_playlist
from musicrec_gui.gui.recommender import Answer, Recommender
from musicrec_gui.gui.session import Session
from musicrec_gui.gui.tasks import BackgroundJobs

# Colour groups with a colour and a legend entry; the rest are grey.
LEGEND_GROUPS = 10
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#393b79")
OTHER_COLOUR = QColor(140, 140, 140, 150)
POINT_SIZE = 5  # pixels
HOVER_RADIUS = 8  # pixels from a point that still count as on it
ADD_FLUSH_MS = 1000  # songs a scan finishes are drawn together, at most once a second
COLOUR_BY = (("Album", "album"), ("Artist", "artist"), ("Top tag", "tag"), ("Nothing", "none"))


def _unbreakable(name: str, limit: int = 24) -> str:
    """A group's name as legend HTML that never breaks across lines (Qt breaks at spaces and hyphens)."""
    name = name if len(name) <= limit else name[:limit - 1] + "…"
    return html.escape(name).replace(" ", "&nbsp;").replace("-", "\u2011")


class MapPanel(QWidget):
    """A 2-D map of the open folder's analysed songs.

    Parameters
    ----------
    session : Session
        The folder, the songs and the anchor (a click on a point sets it; the map shows it).
    recommender : Recommender
        Its answers for the anchor are highlighted.
    jobs : BackgroundJobs
        The projection is computed there.
    actions : SongActions or None
        For the points' context menu.
    engine : Engine
        Songs a scan finishes appear on the map.

    Notes
    -----
    Drag pans, the wheel zooms; Shift-drag selects a rectangle and Ctrl-drag (or Alt-drag) a
    lasso, as do the Rectangle and Lasso modes of the tool bar. Double-click shows the whole map.
    """

    ready = Signal()  # the map of the open folder is drawn
    saved = Signal(str)  # status text after a playlist was written
    selectionChanged = Signal(int)  # how many songs are selected

    def __init__(self, session: Session, recommender: Recommender, jobs: BackgroundJobs, actions=None, *,
                 engine: Engine, parent: QWidget | None = None):
        super().__init__(parent)
        self.session, self.recommender, self.jobs, self.actions = session, recommender, jobs, actions
        self.map: projection.LibraryMap | None = None
        self.selected_ids: np.ndarray = np.zeros(0, np.int64)
        self._selected_rows: np.ndarray = np.zeros(0, np.int64)  # their rows in the map
        self.last_playlist_warnings: list[str] = []
        self._generation = 0  # bumped when the folder or analysis changes: an older job's map is dropped
        self._stale = True  # the map does not show the open folder yet
        self._building = False
        self._added_while_building: list[tuple[Track, np.ndarray]] = []
        self._extra_tracks: dict[int, Track] = {}  # songs a scan finished that the session may not list yet
        self._top_tags = SongTags(())  # each song's most probable tag
        self._neighbour_ids: list[int] = []
        self._path_ids: list[int] = []
        self._hover_id: int | None = None
        self._view_moved = False  # the user panned or zoomed: the view is no longer fitted to the map
        # What a scan added since the last drawing: new rows, or whether points moved (all redrawn).
        self._added_rows: list[int] = []
        self._redraw_all = False
        self._group_code: dict[str, int] = {}  # colour group (casefolded) → index into group_items

        # -- the tool bar --
        self.colour_box = QComboBox()
        for text, key in COLOUR_BY:
            self.colour_box.addItem(text, key)
        self.colour_box.setToolTip("Colour the songs by album, artist or most probable tag; "
                                   "the largest groups get a colour, the rest are grey")
        self.mode_buttons = QButtonGroup(self)
        mode_bar = QHBoxLayout()
        mode_bar.setSpacing(2)
        for mode, text, tip in (
                ("pan", "Pan", "Drag to move the map, scroll to zoom, double-click to see it all"),
                ("rectangle", "Rectangle", "Drag a rectangle to select songs (or Shift-drag in any mode)"),
                ("lasso", "Lasso", "Draw around songs to select them (or Ctrl-drag in any mode)")):
            button = QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.setToolTip(tip)
            button.setProperty("mode", mode)
            button.setChecked(mode == "pan")
            self.mode_buttons.addButton(button)
            mode_bar.addWidget(button)
        self.save_button = QPushButton("Save selection…")
        self.save_button.setEnabled(False)
        self.save_button.setToolTip("Save the selected songs as an M3U8 playlist")
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Select no songs")
        self.clear_button.setEnabled(False)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Colour"))
        bar.addWidget(self.colour_box)
        bar.addLayout(mode_bar)
        bar.addStretch(1)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.save_button)

        # -- the plot --
        self.view = MapView()
        self.plot = pg.PlotWidget(viewBox=self.view, background="w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.plot.setToolTip("")
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.plot.setMinimumSize(200, 150)
        # The legend is a line of text above the map, not a box on it: on a small screen a box
        # would hide a quarter of the songs.
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend_entries: list[tuple[str, int]] = []  # (group, songs), largest first
        self.layers = MapLayers(self.plot, parent=self)
        self.neighbour_lines = pg.PlotDataItem(pen=pg.mkPen(QColor(200, 60, 20, 160), width=1), connect="pairs")
        self.neighbour_item = self._scatter(11, QColor(255, 170, 0), QColor(120, 60, 0), z=20)
        self.selection_item = self._scatter(8, QColor(0, 0, 0, 0), QColor(20, 20, 20), z=15)
        self.path_item = pg.PlotDataItem(pen=pg.mkPen(QColor(20, 110, 60), width=2.5))
        self.path_points = self._scatter(7, QColor(20, 160, 80), QColor(10, 80, 40), z=23)
        self.anchor_item = self._scatter(17, QColor(230, 30, 30), QColor(0, 0, 0), z=30, symbol="star")
        self.hover_item = self._scatter(12, QColor(0, 0, 0, 0), QColor(0, 90, 200), z=25)
        for item, z in ((self.neighbour_lines, 18), (self.path_item, 22)):
            item.setZValue(z)
            self.plot.addItem(item)
        for item in (self.neighbour_item, self.selection_item, self.anchor_item, self.hover_item, self.path_points):
            self.plot.addItem(item)
        self.hover_label = pg.TextItem("", color=(20, 20, 20), fill=pg.mkBrush(255, 255, 230, 230),
                                       border=pg.mkPen(120, 120, 120), anchor=(0, 1))
        self.hover_label.setZValue(40)
        self.hover_label.hide()
        self.view.addItem(self.hover_label, ignoreBounds=True)

        self.status = QLabel("")
        self.status.setStyleSheet("color: #555;")
        self.status.setWordWrap(True)
        self.status.setToolTip("Each point is an analysed song; songs that sound alike lie close together.\n"
                               "Hover a point for its title, click it to see its similar songs.\n"
                               "Drag to move, scroll to zoom, double-click to see the whole map.\n"
                               "Shift-drag selects a rectangle, Ctrl-drag (or Alt-drag) a lasso.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)

        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(ADD_FLUSH_MS)
        self._flush_timer.timeout.connect(self._draw_added)

        self.colour_box.currentIndexChanged.connect(lambda _i: self._redraw_points())
        self.mode_buttons.buttonClicked.connect(lambda button: setattr(self.view, "mode", button.property("mode")))
        self.save_button.clicked.connect(self._on_save_clicked)
        self.clear_button.clicked.connect(lambda: self.select_ids([]))
        self.view.clicked.connect(self._on_clicked)
        self.view.doubleClicked.connect(self._on_double_clicked)
        self.view.rectangleDrawn.connect(self.select_rect)
        self.view.lassoDrawn.connect(self.select_polygon)
        self.view.sigRangeChanged.connect(lambda *_a: self._hide_hover())
        self.layers.refreshed.connect(self._draw_selection)
        self.view.sigRangeChangedManually.connect(lambda *_a: setattr(self, "_view_moved", True))
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        session.folderShown.connect(self._on_folder_shown)
        session.anchorChanged.connect(self._on_anchor_changed)
        recommender.answered.connect(self._on_answered)
        self.engine = engine
        engine.event.connect(self._on_engine_event)
        self._update_status()

    def _scatter(self, size: int, brush: QColor, pen: QColor, *, z: int, symbol: str = "o") -> PassiveScatter:
        item = PassiveScatter(size=size, symbol=symbol, brush=pg.mkBrush(brush), pen=pg.mkPen(pen, width=1.5),
                              pxMode=True)
        item.setZValue(z)
        return item

    # -- building the map -------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.rebuild()

    def _on_folder_shown(self, _tracks) -> None:
        self.invalidate()
        if self.isVisible():
            self.rebuild()

    def invalidate(self) -> None:
        """Forget the map; it is computed again when next shown."""
        self._generation += 1
        self._added_rows, self._redraw_all = [], False
        self._stale, self._building = True, False
        self._added_while_building = []
        self._extra_tracks = {}
        self.map = None
        self.selected_ids, self._selected_rows = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._neighbour_ids = []

    def rebuild(self) -> None:
        """Compute the open folder's map in a worker (on the cached basis when there is one), then draw it."""
        if self._building or not self.session.folder or not self.session.encoder_key:
            if not self.session.folder:
                self._stale = False
                self._clear_points()
            return
        self._building, self._stale = True, False
        generation = self._generation
        library, folder = self.session.library, self.session.folder
        encoder_key, analysis_key = self.session.encoder_key, self.session.analysis.key
        names = self.session.tag_names
        self.status.setText("Drawing the map…")

        def work():
            built = projection.LibraryMap.from_library(library, encoder_key=encoder_key, analysis_key=analysis_key,
                                                       under=folder, store=False)
            tags = SongTags(names)
            if names:
                tags = SongTags.from_chunks(library.iter_tags(
                    encoder_key=encoder_key, analysis_key=analysis_key, under=folder), names, count=1, minimum=0.0)
            return built, tags

        def done(result) -> None:
            if generation != self._generation:
                return
            self._building = False
            self.map, self._top_tags = result
            if self.map.fitted and self.map.basis is not None:
                self._store_basis(self.map.basis, folder, encoder_key, analysis_key)
            for track, vector in self._added_while_building:
                self._add(track, vector)
            self._added_while_building = []
            self._view_moved = False
            self._redraw_points()
            self._on_anchor_changed(self.session.anchor)
            self.ready.emit()

        def failed(err: BaseException) -> None:
            if generation != self._generation:
                return
            self._building = False
            self.status.setText(f"The map cannot be drawn: {err}")

        self.jobs.submit(work, done, failed)

    def _on_engine_event(self, event) -> None:
        if isinstance(event, scan_mod.TrackDone) and event.vector is not None:
            if self.map is not None:
                self._add(event.track, event.vector)
                if not self._flush_timer.isActive():
                    self._flush_timer.start()
            elif self._building:
                self._added_while_building.append((event.track, event.vector))
        elif isinstance(event, scan_mod.ScanStarted) and event.pruned:
            self._on_folder_shown(None)  # songs were forgotten: computing again is simpler than removing
        elif isinstance(event, scan_mod.ScanFinished):
            if self.map is not None and self.map.outgrown:  # a large map keeps no vectors to refit with
                self._on_folder_shown(None)
            elif self._flush_timer.isActive():
                self._draw_added()

    def _add(self, track: Track, vector: np.ndarray) -> None:
        self._extra_tracks[track.id] = track
        known = track.id in self.map
        try:
            refitted = self.map.add(track.id, vector)
        except ValueError:
            return  # another size or NaN: the recommender says so; the map just leaves the song out
        if refitted or known:
            self._redraw_all = True  # points moved: every item is drawn again at the next flush
        else:
            self._added_rows.append(self.map.row_of(track.id))
        if refitted and self.map.basis is not None:
            # The set grew by a quarter: every point moved once; the next start opens on this basis.
            self._store_basis(self.map.basis, self.session.folder, self.session.encoder_key,
                              self.session.analysis.key)

    def _store_basis(self, basis, folder: str, encoder_key: str, analysis_key: str) -> None:
        """Cache the basis through the engine thread, the library's one writer."""
        key = projection.cache_key(encoder_key=encoder_key, analysis_key=analysis_key, folder=folder)
        self.engine.store_meta(key, basis.to_text())

    # -- drawing --------------------------------------------------------------------------------
    def track(self, track_id: int) -> Track | None:
        return self.session.track(track_id) or self._extra_tracks.get(track_id)

    def _group_keys(self, ids: np.ndarray) -> list[str]:
        """The colour group of each song ("" for none)."""
        kind = self.colour_box.currentData()
        if kind == "none":
            return [""] * len(ids)
        if kind == "tag":
            names = [*self._top_tags.names, ""]  # code -1: the last, no tag
            return [names[c] for c in self._top_tags.top(ids).tolist()]
        # Columns of the open folder's songs, read at once (a million `Track`s would take seconds).
        songs = self.session.songs
        slots = songs.slots_of(ids)
        keys = [""] * len(ids)
        listed = np.flatnonzero(slots >= 0)
        for row, text in zip(listed.tolist(), songs.texts(kind, slots[listed])):
            keys[row] = text.strip()
        for row in np.flatnonzero(slots < 0).tolist():  # a song the folder's list has not got yet
            track = self._extra_tracks.get(int(ids[row]))
            keys[row] = (getattr(track, kind) or "").strip() if track is not None else ""
        return keys

    @property
    def group_items(self) -> list[pg.ScatterPlotItem]:
        """The scatters of the colour groups, grey first (a large map's hold the drawn region's songs)."""
        return self.layers.items

    def _clear_points(self) -> None:
        self.layers.clear()
        self.legend_entries = []
        self.legend.clear()
        for item in (self.neighbour_item, self.selection_item, self.anchor_item, self.hover_item):
            item.setData([], [])
        self.neighbour_lines.setData([], [])
        self._update_status()

    def _draw_added(self) -> None:
        """Draw the songs a scan added: appended to their group's item, or to a large map's level of
        detail (redrawing 100 000 points takes ~0.5 s; appending a second's worth, milliseconds).
        The groups and the legend are those of the last full drawing until the next one."""
        self._flush_timer.stop()
        rows, self._added_rows = self._added_rows, []
        if self._redraw_all or not self.group_items or self.map is None or self.layers.outgrown():
            self._redraw_points()
            return
        rows = np.asarray(rows, dtype=np.int64)
        keys = [k.casefold() for k in self._group_keys(self.map.ids[rows])]
        self.layers.add(rows, np.fromiter((self._group_code.get(k, -1) for k in keys), dtype=np.int64,
                                          count=len(keys)))
        if not self._view_moved:
            self.show_all()
        self._refresh_highlights()
        self._update_status()

    def _redraw_points(self) -> None:
        """Draw every song anew: one scatter item per colour group, grey ones first (underneath);
        a large map by level of detail (``map_lod``)."""
        self._flush_timer.stop()
        self._added_rows, self._redraw_all = [], False
        self._clear_points()
        if self.map is None:
            return
        ids = self.map.ids
        # Few songs: bigger points, easy to hit; many: small ones that do not hide each other.
        point_size = POINT_SIZE + (4 if len(ids) < 1000 else 2 if len(ids) < 10_000 else 0)
        keys = self._group_keys(ids)
        # Groups by their casefolded name; the legend shows the spelling met first.
        folded = [k.casefold() for k in keys]
        counts = Counter(k for k in folded if k)
        largest = [k for k, _n in counts.most_common(LEGEND_GROUPS)]
        code = {k: c for c, k in enumerate(largest)}
        groups = np.fromiter((code.get(k, -1) for k in folded), dtype=np.int64, count=len(folded))
        spelling = {}
        for key, fold in zip(keys, folded):
            if fold in code and fold not in spelling:
                spelling[fold] = key
        self._group_code = code
        sizes = np.bincount(groups + 1, minlength=len(largest) + 1)
        self.legend_entries = [(spelling[largest[c]], int(sizes[c + 1])) for c in range(len(largest))]
        if not self._view_moved:  # a map growing during a scan stays in view until the user takes over
            self.show_all()
        self.layers.draw(self.map, groups, [OTHER_COLOUR] + [QColor(PALETTE[c % len(PALETTE)]) for c in
                                                             range(len(largest))], point_size=point_size)
        # Unbreakable entries: a line ends between two groups, never inside a name.
        self.legend.setText(" ".join(
            f"<span style='color:{PALETTE[c % len(PALETTE)]}'>&#9679;</span>&nbsp;{_unbreakable(name)}&nbsp;({count})"
            for c, (name, count) in enumerate(self.legend_entries)))
        self.legend.setToolTip("\n".join(f"{name} ({count})" for name, count in self.legend_entries)
                               + ("\nthe rest: grey" if (groups < 0).any() else ""))
        self.legend.setVisible(bool(largest))
        self._refresh_highlights()
        self._update_status()

    def _refresh_highlights(self) -> None:
        self._draw_selection()
        self._on_anchor_changed(self.session.anchor, recentre=False)
        self._draw_neighbours()
        self._draw_path()

    def _position(self, track_id: int) -> np.ndarray | None:
        row = self.map.row_of(track_id) if self.map is not None else None
        return None if row is None else self.map.points[row]

    def _set_points(self, item: pg.ScatterPlotItem, ids: Sequence[int]) -> np.ndarray:
        found = [p for p in (self._position(i) for i in ids) if p is not None]
        pos = np.array(found, dtype=np.float32).reshape(-1, 2)
        item.setData(pos=pos)
        return pos

    def _update_status(self) -> None:
        n = len(self.map) if self.map is not None else 0
        selected = len(self.selected_ids)
        if self.map is None:
            text = "" if not self._building else "Drawing the map…"
        elif n == 0:
            text = "No analysed song in this folder yet: songs appear here as the scan analyses them."
        else:
            text = f"{QLocale().toString(n)} songs · click: pick one · Shift-drag: rectangle · Ctrl-drag: lasso"
            if selected:
                text = f"{QLocale().toString(selected)} selected · " + text
        self.status.setText(text)
        self.save_button.setText(f"Save {selected} songs…" if selected else "Save selection…")
        self.save_button.setEnabled(selected > 0)
        self.clear_button.setEnabled(selected > 0)

    def _on_double_clicked(self) -> None:
        self._view_moved = False  # the whole map again, and kept in view as it grows
        self.show_all()

    def show_all(self) -> None:
        """Fit the whole map in view."""
        if self.map is not None and len(self.map):
            points = self.map.points
            lo, hi = points.min(axis=0), points.max(axis=0)
            pad = max(float((hi - lo).max()) * 0.08, 1e-3)  # room for the anchor's star at an edge
            self.view.setRange(QRectF(QPointF(lo[0] - pad, lo[1] - pad), QPointF(hi[0] + pad, hi[1] + pad)),
                               padding=0)

    # -- the anchor and its neighbours -----------------------------------------------------------
    def _on_anchor_changed(self, track, *, recentre: bool = True) -> None:
        anchor_id = track.id if track is not None else None
        pos = self._set_points(self.anchor_item, [anchor_id] if anchor_id is not None else [])
        if recentre:
            self._neighbour_ids = []
            self._draw_neighbours()
            if len(pos):
                self.centre_on(anchor_id, only_if_hidden=True)

    def centre_on(self, track_id: int, *, only_if_hidden: bool = False) -> bool:
        """Move the view (same zoom) so that the song is in the middle; False if it is not on the map."""
        position = self._position(track_id)
        if position is None:
            return False
        x, y = float(position[0]), float(position[1])
        (x0, x1), (y0, y1) = self.view.viewRange()
        if only_if_hidden and x0 <= x <= x1 and y0 <= y <= y1:
            return True
        self.view.translateBy(x=x - (x0 + x1) / 2, y=y - (y0 + y1) / 2)
        return True

    def _on_answered(self, answer: Answer) -> None:
        anchor = self.session.anchor
        if anchor is None or answer.query.anchor.id != anchor.id:
            return
        self._neighbour_ids = [r.track.id for r in answer.recommendations]
        self._draw_neighbours()

    def _draw_neighbours(self) -> None:
        pos = self._set_points(self.neighbour_item, self._neighbour_ids)
        anchor = self.session.anchor
        start = self._position(anchor.id) if anchor is not None else None
        if start is None or not len(pos):
            self.neighbour_lines.setData([], [])
            return
        # A line from the anchor to each neighbour: a neighbour the map places far away is still found.
        pairs = np.empty((2 * len(pos), 2), np.float32)
        pairs[0::2], pairs[1::2] = start, pos
        self.neighbour_lines.setData(pairs[:, 0], pairs[:, 1])

    @property
    def neighbour_ids(self) -> list[int]:
        return list(self._neighbour_ids)

    # -- a path between songs (drawn for another panel) -------------------------------------------------
    def show_path(self, track_ids: list[int]) -> None:
        """Draw a polyline through these songs, in this order (songs not on the map are skipped)."""
        self._path_ids = [int(i) for i in track_ids]
        self._draw_path()

    def clear_path(self) -> None:
        self.show_path([])

    def _draw_path(self) -> None:
        found = [p for p in (self._position(i) for i in self._path_ids) if p is not None]
        pos = np.array(found, dtype=np.float32).reshape(-1, 2)
        self.path_item.setData(pos[:, 0], pos[:, 1])
        self.path_points.setData(pos=pos)

    # -- finding the song under the mouse ------------------------------------------------------------
    def track_id_at(self, position: QPointF, *, radius_px: float = HOVER_RADIUS) -> int | None:
        """The song nearest ``position`` (view coordinates) within ``radius_px`` screen pixels, or None."""
        if self.map is None or not len(self.map):
            return None
        pixel = self.view.viewPixelSize()
        radius = radius_px * max(pixel[0], pixel[1]) if all(math.isfinite(p) and p > 0 for p in pixel) else 0
        row = self.layers.nearest(position.x(), position.y(), radius or math.inf)
        return None if row is None else int(self.map.ids[row])

    def _on_mouse_moved(self, scene_pos) -> None:
        if not self.view.sceneBoundingRect().contains(scene_pos):
            self._hide_hover()
            return
        track_id = self.track_id_at(self.view.mapSceneToView(scene_pos))
        if track_id == self._hover_id:
            return
        self._hover_id = track_id
        track = self.track(track_id) if track_id is not None else None
        if track is None:
            self._hide_hover()
            return
        position = self._position(track_id)
        self.hover_item.setData(pos=position.reshape(1, 2))
        self.hover_label.setText(display_name(track))
        self.hover_label.setPos(float(position[0]), float(position[1]))
        # Near the right edge the label opens to the left of the point, so it stays readable.
        (x0, x1), _ = self.view.viewRange()
        self.hover_label.setAnchor((1, 1) if position[0] > (x0 + x1) / 2 else (0, 1))
        self.hover_label.show()

    def _hide_hover(self) -> None:
        self._hover_id = None
        self.hover_label.hide()
        self.hover_item.setData([], [])

    @property
    def hover_text(self) -> str:
        return self.hover_label.toPlainText() if self.hover_label.isVisible() else ""

    def _on_clicked(self, position: QPointF) -> None:
        track_id = self.track_id_at(position)
        track = self.track(track_id) if track_id is not None else None
        if track is not None:
            self.session.set_anchor(self.session.track(track.id) or track)

    # -- selection and playlists -------------------------------------------------------------------------
    def select_ids(self, track_ids: Sequence[int]) -> None:
        ids = np.asarray(list(track_ids), dtype=np.int64)
        found = (self.map.row_of(i) for i in ids.tolist()) if self.map is not None else ()
        self._select(ids, np.fromiter((r for r in found if r is not None), dtype=np.int64))

    def _select(self, ids: np.ndarray, rows: np.ndarray) -> None:
        self.selected_ids, self._selected_rows = ids, rows
        self._draw_selection()
        self._update_status()
        self.selectionChanged.emit(len(self.selected_ids))

    def _draw_selection(self) -> None:
        """Ring the selected songs (over a large map's density image, an even sample of them)."""
        rows = self.layers.in_view(self._selected_rows) if self.map is not None else self._selected_rows[:0]
        self.selection_item.setData(pos=self.map.points[rows] if len(rows) else np.zeros((0, 2), np.float32))

    def select_rect(self, rect: QRectF) -> None:
        """Select the songs inside a rectangle (view coordinates)."""
        if self.map is None:
            return
        points = self.map.points
        inside = np.flatnonzero((points[:, 0] >= rect.left()) & (points[:, 0] <= rect.right())
                                & (points[:, 1] >= rect.top()) & (points[:, 1] <= rect.bottom()))
        self._select(self.map.ids[inside], inside)

    def select_polygon(self, polygon: np.ndarray) -> None:
        """Select the songs inside a lasso (view coordinates, [shape=(m, 2)])."""
        if self.map is None:
            return
        inside = np.flatnonzero(projection.points_in_polygon(self.map.points, polygon))
        self._select(self.map.ids[inside], inside)

    def selected_tracks(self) -> list[Track]:
        """The selected songs, left to right across the map (a playlist that moves through it)."""
        if self.map is None:
            return []
        rows = [r for r in (self.map.row_of(i) for i in self.selected_ids.tolist()) if r is not None]
        rows.sort(key=lambda r: float(self.map.points[r, 0]))
        return [t for t in (self.track(int(self.map.ids[r])) for r in rows) if t is not None]

    def _on_save_clicked(self) -> None:
        tracks = self.selected_tracks()
        if not tracks:
            return
        folder = self.session.folder if self.session.folder and not self.session.is_demo else ""
        written = ask_and_save(self, tracks, folder=folder, name=f"{len(tracks)} songs from the map.m3u8",
                               title=self.playlist_title(len(tracks)))
        if written is not None:
            self.last_playlist_warnings = written.warnings
            self.saved.emit(saved_text(written))

    @staticmethod
    def playlist_title(count: int) -> str:
        return f"{count} songs from the musicrec map"

    def save_playlist(self, path: str, *, force: bool = False):
        """Write the selected songs as an M3U8 playlist (the rules of ``playlist_save.write_playlist``).

        Returns
        -------
        Path
            The file written.
        """
        tracks = self.selected_tracks()
        if not tracks:
            raise ValueError("Select songs on the map first.")
        written = write_playlist(path, tracks, title=self.playlist_title(len(tracks)), force=force)
        self.last_playlist_warnings = written.warnings
        self.saved.emit(saved_text(written))
        return written.path
