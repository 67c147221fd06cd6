"""The library map's drawing surface: a view box whose drags pan, draw a rectangle or a lasso, and a
scatter that leaves clicks to it (the panel finds the song under the mouse itself)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem


class PassiveScatter(pg.ScatterPlotItem):
    """A scatter that leaves clicks to the view: pyqtgraph's own per-point test would take them
    (scanning every point); the panel finds the song under the mouse with its k-d tree."""

    def mouseClickEvent(self, ev) -> None:
        ev.ignore()


class MapView(pg.ViewBox):
    """A view box whose drags pan, or draw a rectangle (Shift, or the Rectangle mode) or a lasso
    (Ctrl/Alt, or the Lasso mode); a click picks a point."""

    clicked = Signal(object)  # QPointF in view coordinates
    rectangleDrawn = Signal(object)  # QRectF in view coordinates
    lassoDrawn = Signal(object)  # np.ndarray [shape=(m, 2)] in view coordinates
    doubleClicked = Signal()

    def __init__(self):
        super().__init__(enableMenu=False)
        self.setAspectLocked(True)  # distances on screen are distances on the map: hover needs that
        self.mode = "pan"
        pen = QPen(QColor(30, 30, 30))
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        self._rect_item = QGraphicsRectItem()
        self._rect_item.setPen(pen)
        self._rect_item.setBrush(QColor(80, 120, 200, 40))
        self._rect_item.hide()
        self._lasso_item = QGraphicsPathItem()
        self._lasso_item.setPen(pen)
        self._lasso_item.setBrush(QColor(80, 120, 200, 40))
        self._lasso_item.hide()
        for item in (self._rect_item, self._lasso_item):
            item.setZValue(1000)
            self.addItem(item, ignoreBounds=True)
        self._lasso: list[QPointF] = []

    def _drag_mode(self, modifiers) -> str:
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            return "rectangle"
        if modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            return "lasso"
        return self.mode

    def mouseDragEvent(self, ev, axis=None) -> None:
        mode = self._drag_mode(ev.modifiers())
        if ev.button() != Qt.MouseButton.LeftButton or mode == "pan":
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos())
        here = self.mapSceneToView(ev.scenePos())
        if mode == "rectangle":
            rect = QRectF(start, here).normalized()
            self._rect_item.setRect(rect)
            self._rect_item.show()
            if ev.isFinish():
                self._rect_item.hide()
                self.rectangleDrawn.emit(rect)
            return
        if ev.isStart() or not self._lasso:
            self._lasso = [start]
        self._lasso.append(here)
        path = QPainterPath(self._lasso[0])
        for point in self._lasso[1:]:
            path.lineTo(point)
        path.closeSubpath()
        self._lasso_item.setPath(path)
        self._lasso_item.show()
        if ev.isFinish():
            self._lasso_item.hide()
            polygon = np.array([(p.x(), p.y()) for p in self._lasso], dtype=np.float64)
            self._lasso = []
            self.lassoDrawn.emit(polygon)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            if ev.double():
                self.doubleClicked.emit()
            else:
                self.clicked.emit(self.mapSceneToView(ev.scenePos()))
        else:
            super().mouseClickEvent(ev)
