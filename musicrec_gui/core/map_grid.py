"""Finding the library map's points by place, and counting them per pixel, without Qt.

At a million songs a pass over every point costs ~10 ms, too much for each mouse move and each
view change. ``PointGrid`` buckets the points by a square cell once (one sort), so the points of
a rectangle are read from the cells it covers, and a summed-area table of the cells counts them
in O(1). ``density`` bins the points of a rectangle into an image: how many per pixel and which
colour group has most of them, which the map draws instead of the points when too many are in view.
"""

from __future__ import annotations

import math

import numpy as np

PER_CELL = 8  # points per cell on average: a hover's 8-pixel box reads a few cells, not thousands
MAX_SIDE = 1024  # cells per side at most (a million songs: 1 M cells, 8 MB of offsets)


class PointGrid:
    """The row numbers of a set of 2-D points, bucketed by a square grid cell over their bounding box.

    Rows added after the grid was built (a scan's songs) are "pending": every query checks them
    one by one, so the grid stays right until the caller builds a new one (see :meth:`pending`).

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
    per_cell : int
        The average number of points per cell the grid is sized for.
    """

    def __init__(self, points: np.ndarray, *, per_cell: int = PER_CELL):
        points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        self.size = len(points)  # rows below this are in the grid, the rest are pending
        self.side = int(np.clip(math.isqrt(self.size // max(1, per_cell)), 1, MAX_SIDE))
        lo = points.min(axis=0).astype(np.float64) if self.size else np.zeros(2)
        hi = points.max(axis=0).astype(np.float64) if self.size else np.ones(2)
        self.lo = lo
        self.scale = self.side / np.maximum(hi - lo, 1e-9)  # cells per map unit, per axis
        cells = self._cell_index(points)
        counts = np.bincount(cells, minlength=self.side * self.side)
        # A cell's rows are order[starts[c]:starts[c + 1]], ascending (a stable sort).
        self.order = np.argsort(cells, kind="stable").astype(np.int32)
        self.starts = np.zeros(self.side * self.side + 1, np.int64)
        np.cumsum(counts, out=self.starts[1:])
        # table[j, i]: how many points lie in the cells below row j and left of column i.
        self._table = np.zeros((self.side + 1, self.side + 1), np.int64)
        self._table[1:, 1:] = counts.reshape(self.side, self.side).cumsum(axis=0).cumsum(axis=1)

    def _cell_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Points outside the box (added later) fall in its edge cells, which every query reading
        # that edge covers; the exact test on the candidates then decides.
        cx = np.clip(np.floor((np.asarray(x, np.float64) - self.lo[0]) * self.scale[0]), 0, self.side - 1)
        cy = np.clip(np.floor((np.asarray(y, np.float64) - self.lo[1]) * self.scale[1]), 0, self.side - 1)
        return cx.astype(np.int64), cy.astype(np.int64)

    def _cell_index(self, points: np.ndarray) -> np.ndarray:
        cx, cy = self._cell_xy(points[:, 0], points[:, 1])
        return cy * self.side + cx

    def _cell_range(self, x0: float, x1: float, y0: float, y1: float) -> tuple[int, int, int, int]:
        cx, cy = self._cell_xy(np.array([x0, x1]), np.array([y0, y1]))
        return int(cx[0]), int(cx[1]), int(cy[0]), int(cy[1])

    def pending(self, total: int) -> int:
        """How many of ``total`` points were added after the grid was built."""
        return max(0, total - self.size)

    def count(self, x0: float, x1: float, y0: float, y1: float, *, total: int | None = None) -> int:
        """How many points the cells a rectangle touches hold (at least those inside it), plus the
        pending ones of ``total``; O(1)."""
        if not (x0 <= x1 and y0 <= y1):
            return 0
        cx0, cx1, cy0, cy1 = self._cell_range(x0, x1, y0, y1)
        t = self._table
        inside = t[cy1 + 1, cx1 + 1] - t[cy0, cx1 + 1] - t[cy1 + 1, cx0] + t[cy0, cx0]
        return int(inside) + (self.pending(total) if total is not None else 0)

    def rows_in(self, points: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """The rows of the points inside a rectangle (edges included), ascending.

        Parameters
        ----------
        points : np.ndarray [shape=(m, 2)]
            The points now: the ``size`` the grid was built on, then the pending ones.
        x0, x1, y0, y1 : float
            The rectangle, in map coordinates.

        Returns
        -------
        np.ndarray [shape=(k,)], int64
        """
        if not (x0 <= x1 and y0 <= y1) or not len(points):
            return np.zeros(0, np.int64)
        cx0, cx1, cy0, cy1 = self._cell_range(x0, x1, y0, y1)
        # Each row of cells is one contiguous run of ``order``: gather the runs without a Python loop.
        first = np.arange(cy0, cy1 + 1) * self.side
        begin, end = self.starts[first + cx0], self.starts[first + cx1 + 1]
        lengths = end - begin
        offsets = np.repeat(begin - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        candidates = np.concatenate([self.order[offsets + np.arange(int(lengths.sum()))].astype(np.int64),
                                     np.arange(self.size, len(points), dtype=np.int64)])
        p = points[candidates]
        keep = (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)
        return np.sort(candidates[keep])

    def nearest(self, points: np.ndarray, x: float, y: float, radius: float) -> int | None:
        """The row of the point nearest ``(x, y)`` within ``radius`` (any distance if infinite), or None."""
        if not len(points):
            return None
        if math.isfinite(radius):
            rows = self.rows_in(points, x - radius, x + radius, y - radius, y + radius)
        else:
            rows = np.arange(len(points))
        if not len(rows):
            return None
        d2 = ((points[rows].astype(np.float64) - (x, y)) ** 2).sum(axis=1)
        best = int(np.argmin(d2))
        return int(rows[best]) if d2[best] <= radius * radius else None


def density(points: np.ndarray, codes: np.ndarray, rect: tuple[float, float, float, float],
            shape: tuple[int, int], *, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin points into an image of a rectangle: how many fall in each pixel, and which colour group most.

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
    codes : np.ndarray [shape=(n,)], int
        Each point's colour group, 0 … ``groups`` − 1, or −1 for none (grey).
    rect : (x0, y0, x1, y1)
        The map rectangle the image covers; row 0 of the image is at ``y0``.
    shape : (height, width)
        The image's size in pixels.
    groups : int

    Returns
    -------
    counts : np.ndarray [shape=(height, width)], int64
        Points per pixel.
    top : np.ndarray [shape=(height, width)], int8
        The group with most points in the pixel (the larger group on a tie), −1 where no point has
        a group: a group's songs stay visible among many grey ones, as the scatter draws them on top.
    """
    height, width = shape
    x0, y0, x1, y1 = rect
    px = np.floor((points[:, 0] - x0) * (width / max(x1 - x0, 1e-12))).astype(np.int64)
    py = np.floor((points[:, 1] - y0) * (height / max(y1 - y0, 1e-12))).astype(np.int64)
    inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
    pixel = (py * width + px)[inside]
    codes = np.asarray(codes)[inside]
    counts = np.bincount(pixel, minlength=height * width)
    top = np.full(height * width, -1, np.int8)
    best = np.zeros(height * width, np.int64)
    for group in range(groups):
        mine = pixel[codes == group]
        if 8 * len(mine) < len(best):  # a small group: count only the pixels it reaches
            where, many = np.unique(mine, return_counts=True)
        else:  # a large one: a bincount of the whole image is cheaper than sorting its songs
            many = np.bincount(mine, minlength=len(best))
            where = np.flatnonzero(many)
            many = many[where]
        better = many > best[where]
        top[where[better]] = group
        best[where[better]] = many[better]
    return counts.reshape(height, width), top.reshape(height, width)
