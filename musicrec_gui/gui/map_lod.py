"""The library map's songs as drawn, at a level of detail that keeps it fluid at a million songs.

Up to ``LOD_POINTS`` songs every point is drawn, one pyqtgraph scatter per colour group (pan
frames ~30 ms at 50 000 points, but ~0.35 s at a million). A larger map is drawn for the view:
while more than ``LOD_POINTS`` songs are in view, as a density image of it (``core.map_grid``:
points per screen pixel, coloured by the group with most songs there); once fewer are, as the
real points of the view and a margin around it, in the same scatters, so a hover or a click
finds the song it is on. Either is computed again when the view stops moving for ``REFRESH_MS``.
Hover, clicks and selections never use what is drawn: they read the map's points (through the
grid), so they find real songs at every level.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QTimer, Signal
from PySide6.QtGui import QColor

from musicrec_gui.core.map_grid import PointGrid, density
from musicrec_gui.core.projection import LibraryMap
from musicrec_gui.gui.map_view import PassiveScatter

LOD_POINTS = 50_000  # more songs than this in view: the density image (see docs/benchmarks.md, "Library map")
REFRESH_MS = 80  # the level is computed again once the view has not moved for this long
POINT_MARGIN = 0.5  # the points drawn reach this far (× the view's size) past each edge: a short pan shows them
IMAGE_MARGIN = 0.25  # the same for the density image (it costs per pixel)
BIN_PX = 2  # screen pixels per side of a density pixel: a lone song stays visible, clusters keep their shape
HIGHLIGHT_MAX = 20_000  # at most this many selected songs are ringed over the density image (an even sample)


class MapLayers(QObject):
    """The scatters (one per colour group) and the density image that draw a map's songs.

    Parameters
    ----------
    plot : pg.PlotWidget
        The map's plot; its view box's range decides what is drawn.
    lod_points : int
        A map of more songs than this is drawn by level of detail (the attribute may be changed
        before :meth:`draw`).

    Attributes
    ----------
    items : list of PassiveScatter
        One per colour group, the grey one ("no group") first.
    image : pg.ImageItem
        The density image, shown while more than ``lod_points`` songs are in view.
    level : str
        "all" (every song drawn: a small map), "overview" (the density image) or "points" (the
        real points of ``region``).
    region : tuple of float or None
        ``(x0, x1, y0, y1)``: the part of the map the scatters or the image cover at this level.
    """

    refreshed = Signal()  # the level or its region changed: highlights drawn per region follow

    def __init__(self, plot: pg.PlotWidget, *, lod_points: int = LOD_POINTS, parent: QObject | None = None):
        super().__init__(parent)
        self.plot, self.view, self.lod_points = plot, plot.getViewBox(), lod_points
        view = self.view
        self.items: list[PassiveScatter] = []
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(0)  # under every scatter
        self.image.hide()
        view.addItem(self.image, ignoreBounds=True)
        self.level = "all"
        self.region: tuple[float, float, float, float] | None = None
        self.map: LibraryMap | None = None
        self._grid: PointGrid | None = None
        self._codes = np.zeros(0, np.int8)
        self._rgb = np.zeros((1, 3), np.uint8)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        view.sigRangeChanged.connect(lambda *_a: self._timer.start() if self.level != "all" else None)

    def outgrown(self) -> bool:
        """Whether a map drawn whole has grown past ``lod_points`` songs (draw it again)."""
        return self.map is not None and self.level == "all" and len(self.map) > self.lod_points

    def clear(self) -> None:
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []
        self.image.hide()
        self.map, self._grid, self.region, self.level = None, None, None, "all"
        self._timer.stop()

    def draw(self, library_map: LibraryMap, codes: np.ndarray, colours: Sequence[QColor], *, point_size: int) -> None:
        """Draw a map's songs anew.

        Parameters
        ----------
        library_map : LibraryMap
        codes : np.ndarray [shape=(n,)], int
            Each song's colour group (−1: none) in the map's row order.
        colours : sequence of QColor
            The colour of "none", then of each group.
        """
        self.clear()
        self.map, self._codes = library_map, np.asarray(codes, np.int8)
        self._rgb = np.array([c.getRgb()[:3] for c in colours], np.uint8)
        detailed = len(library_map) > self.lod_points
        points = library_map.points
        for c, colour in enumerate(colours, start=-1):
            item = PassiveScatter(pos=np.zeros((0, 2), np.float32) if detailed else points[self._codes == c],
                                  size=point_size, pen=None, brush=pg.mkBrush(colour), pxMode=True, antialias=False)
            item.setZValue(c + 2)  # grey underneath, then the groups, the largest lowest
            self.plot.addItem(item)
            self.items.append(item)
        if detailed:
            self.level = "overview"
            self._grid = PointGrid(points)
            self.refresh()

    def add(self, rows: np.ndarray, codes: np.ndarray) -> None:
        """Draw songs appended to the map (``rows``, the map's last ones, with their colour groups)."""
        rows, codes = np.asarray(rows, np.int64), np.asarray(codes, np.int8)
        grown = np.zeros(len(self.map), np.int8)
        grown[: len(self._codes)] = self._codes[: len(grown)]
        grown[rows] = codes
        self._codes = grown
        if self._grid is not None and self._grid.pending(len(self.map)) > max(1000, self._grid.size // 8):
            self._grid = None  # every query checks pending songs one by one: sort them in again
        if self.level == "all":
            for c in np.unique(codes):
                self.items[int(c) + 1].addPoints(pos=self.map.points[rows[codes == c]])
        else:
            self._timer.start()

    def _drawn(self) -> np.ndarray:
        """The points of the songs this drawing knows (a scan's songs join at the panel's next flush)."""
        return self.map.points[: len(self._codes)]

    def grid(self) -> PointGrid:
        if self._grid is None:
            self._grid = PointGrid(self.map.points)
        return self._grid

    def nearest(self, x: float, y: float, radius: float) -> int | None:
        """The row of the song nearest ``(x, y)`` within ``radius`` map units (any distance if infinite)."""
        if self.map is None or not len(self.map):
            return None
        return self.grid().nearest(self.map.points, x, y, radius)

    def in_view(self, rows: np.ndarray, *, limit: int = HIGHLIGHT_MAX) -> np.ndarray:
        """Which of these rows to draw a highlight on: all on a small map; else those in the drawn
        region, at most ``limit`` over the density image (an even sample: the selection's shape)."""
        rows = np.asarray(rows, np.int64)
        if self.level == "all" or self.region is None or self.map is None:
            return rows
        x0, x1, y0, y1 = self.region
        p = self.map.points[rows]
        rows = rows[(p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)]
        if self.level == "overview" and len(rows) > limit:
            rows = rows[:: math.ceil(len(rows) / limit)]
        return rows

    def refresh(self) -> None:
        """Draw the level the view needs: the density image, or the real points of its region."""
        self._timer.stop()
        if self.level == "all" or self.map is None:
            return
        (x0, x1), (y0, y1) = self.view.viewRange()
        if self._count((x0, x1, y0, y1)) > self.lod_points:
            self._draw_overview(_widen((x0, x1, y0, y1), IMAGE_MARGIN))
        else:
            wide = _widen((x0, x1, y0, y1), POINT_MARGIN)
            self._draw_points(wide if self._count(wide) <= self.lod_points else (x0, x1, y0, y1))
        self.refreshed.emit()

    def _count(self, rect: tuple[float, float, float, float]) -> int:
        """The songs in a rectangle: the grid's count of the cells it touches, exact near the threshold
        (zoomed into a few dense cells, those would hold many more songs than the view)."""
        count = self.grid().count(*rect, total=len(self.map))
        if self.lod_points < count <= 4 * self.lod_points:
            count = len(self.grid().rows_in(self.map.points, *rect))
        return count

    def _draw_points(self, region: tuple[float, float, float, float]) -> None:
        points = self._drawn()
        rows = self.grid().rows_in(points, *region)
        codes = self._codes[rows]
        for c, item in enumerate(self.items, start=-1):
            item.setData(pos=points[rows[codes == c]])
        self.image.hide()
        self.level, self.region = "points", region

    def _draw_overview(self, region: tuple[float, float, float, float]) -> None:
        x0, x1, y0, y1 = region
        pixel = self.view.viewPixelSize()
        size = max(pixel) * BIN_PX if all(math.isfinite(p) and p > 0 for p in pixel) else (x1 - x0) / 512
        shape = (min(4096, max(1, math.ceil((y1 - y0) / size))), min(4096, max(1, math.ceil((x1 - x0) / size))))
        points, codes = self._drawn(), self._codes
        if self.grid().count(x0, x1, y0, y1, total=len(points)) < len(points) // 2:  # bin only the songs near
            rows = self.grid().rows_in(points, x0, x1, y0, y1)
            points, codes = points[rows], codes[rows]
        counts, top = density(points, codes, (x0, y0, x1, y1), shape, groups=len(self._rgb) - 1)
        self.image.setImage(self._paint(counts, top), autoLevels=False)
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.image.show()
        for item in self.items:
            item.clear()
        self.level, self.region = "overview", region

    def _paint(self, counts: np.ndarray, top: np.ndarray) -> np.ndarray:
        """The density image's pixels [shape=(h, w, 4)], uint8 RGBA: the group's colour (grey for
        none), more opaque where more songs lie (log scale: a cluster's core and its lone songs
        both show), transparent where none."""
        filled = counts > 0
        if not filled.any():
            return np.zeros(counts.shape + (4,), np.uint8)
        # Scaled to the 99th percentile, not the maximum: one dense pixel would fade all the rest.
        reference = max(2.0, float(np.percentile(counts[filled], 99)))
        strength = np.clip(np.log1p(counts) / math.log1p(reference), 0, 1)
        rgba = np.zeros(counts.shape + (4,), np.uint8)
        rgba[..., :3] = self._rgb[top.astype(np.int64) + 1]
        rgba[..., 3] = np.where(filled, 70 + 185 * strength, 0).astype(np.uint8)
        return rgba


def _widen(rect: tuple[float, float, float, float], margin: float) -> tuple[float, float, float, float]:
    x0, x1, y0, y1 = rect
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return x0 - dx, x1 + dx, y0 - dy, y1 + dy
