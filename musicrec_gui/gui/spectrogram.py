"""Drawing a song's log-mel spectrogram (pyqtgraph) and small thumbnails of it; the maths is in ``core.spectrogram``."""

from __future__ import annotations

import weakref

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QToolButton

from musicrec_gui.core.config import FeatureConfig
from musicrec_gui.core.spectrogram import SpectrogramData, mel_bin_frequencies, thumbnail_pixels
from musicrec_gui.gui.player import clock_text

COLORMAP_NAME = "viridis"


def _format_hz(hz: float) -> str:
    if hz >= 1000:
        return f"{hz / 1000:g}k"
    return f"{hz:.0f}"


class MelFrequencyAxis(pg.AxisItem):
    """Left axis of a mel-bin image labelled in Hz (ticks at round frequencies)."""

    NICE_HZ = (0, 500, 1000, 2000, 3000, 4000, 6000, 8000)

    def __init__(self, n_mels: int = 128, fmin: float = 0.0, fmax: float = 8000.0, **kwargs):
        super().__init__("left", **kwargs)
        self._freqs = mel_bin_frequencies(n_mels, fmin, fmax)
        self.setLabel("frequency", units="Hz")
        self.enableAutoSIPrefix(False)

    def bin_of(self, hz: float) -> float:
        # Image row i covers [i, i+1); its centre frequency is freqs[i].
        return float(np.interp(hz, self._freqs, np.arange(len(self._freqs)))) + 0.5

    def hz_of(self, position: float) -> float:
        return float(np.interp(position - 0.5, np.arange(len(self._freqs)), self._freqs))

    def tickValues(self, minVal, maxVal, size):
        major = [self.bin_of(hz) for hz in self.NICE_HZ if self._freqs[0] <= hz <= self._freqs[-1]]
        major = [v for v in major if minVal <= v <= maxVal]
        return [(1.0, major)]

    def tickStrings(self, values, scale, spacing):
        return [_format_hz(round(self.hz_of(v), -1) if self.hz_of(v) > 50 else 0) for v in values]


class _SelectingViewBox(pg.ViewBox):
    """A left-drag selects a stretch of time (as in an audio editor); Shift+drag pans, the wheel zooms."""

    def __init__(self, view: "SpectrogramView"):
        super().__init__()
        # Weakly: a strong reference back to the widget crashes pyqtgraph's close().
        self._owner = weakref.ref(view)
        self._drag_from: float | None = None

    def mouseDragEvent(self, ev, axis=None) -> None:
        view = self._owner()
        if view is None or ev.button() != Qt.MouseButton.LeftButton \
                or ev.modifiers() & Qt.KeyboardModifier.ShiftModifier or not view.selectable or view.data is None:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        x = self.mapSceneToView(ev.scenePos()).x()
        if ev.isStart():
            self._drag_from = self.mapSceneToView(ev.buttonDownScenePos()).x()
        if self._drag_from is None:
            return
        view._drag_selection(self._drag_from, x, finished=ev.isFinish())
        if ev.isFinish():
            self._drag_from = None


# Colours of marked moments (pairs of matching moments share one).
MOMENT_COLOURS = ("#ff9f0a", "#30d158", "#64d2ff", "#ff375f", "#bf5af2")


class SpectrogramView(pg.GraphicsLayoutWidget):
    """Log-mel of the selected song: perceptual colormap + colour bar, time in seconds,
    frequency in Hz on the mel scale, slice boundaries, and a playhead.

    The time axis zooms with the mouse wheel and pans by dragging; a double-click or the
    "Reset zoom" button shows the whole part again. A click on the image asks to play from
    there (``seekRequested``).

    The playhead stays on the plot: a song plays on past the part that is shown (a user who
    pressed Play wants to hear the song, not a 12-s clip), and then the playhead waits at the
    shown part's edge, dashed, labelled with the time that plays. While the view is zoomed in,
    a playhead that runs off its right edge turns the page, as audio editors do.
    """

    seekRequested = Signal(float)  # seconds in the song that were clicked
    passageSelected = Signal(object)  # (start, end) seconds dragged across, or None when cleared

    MIN_PASSAGE_SECONDS = 0.5  # a shorter drag is a shaky click

    def __init__(self, config: FeatureConfig = FeatureConfig(), parent=None, *, selectable: bool = False):
        super().__init__(parent=parent)
        self.setBackground("w")
        self.config = config
        self.selectable = selectable
        self.data: SpectrogramData | None = None
        self.frequency_axis = MelFrequencyAxis(config.n_mels, config.fmin, config.fmax)
        self.plot = self.addPlot(row=0, col=0, axisItems={"left": self.frequency_axis},
                                 viewBox=_SelectingViewBox(self) if selectable else pg.ViewBox())
        self.plot.setLabel("bottom", "time in song", units="s")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.title = pg.LabelItem("", justify="left", color="#333")
        self.addItem(self.title, row=1, col=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        cmap = pg.colormap.get(COLORMAP_NAME)
        self.colormap = cmap
        self.color_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=cmap, interactive=False, width=14,
                                         label="level (0 = −80 dB, 1 = peak)")
        self.color_bar.setImageItem(self.image, insert_in=self.plot)
        self._playhead_pen = pg.mkPen("#ff3b30", width=2)
        self._playhead_past_pen = pg.mkPen("#ff3b30", width=2, style=Qt.PenStyle.DashLine)
        self.playhead = pg.InfiniteLine(angle=90, movable=False, pen=self._playhead_pen)
        self.playhead.setZValue(20)
        self.playhead.hide()
        self.plot.addItem(self.playhead)
        self.playhead_seconds: float | None = None  # where the song is, which may lie outside the plot
        self.playhead_label = pg.TextItem("", color="#ffffff", fill=pg.mkBrush(255, 59, 48, 200), anchor=(1, 0))
        self.playhead_label.setZValue(21)
        self.playhead_label.hide()
        self.plot.addItem(self.playhead_label)
        self.reset_zoom_button = QToolButton(self)
        self.reset_zoom_button.setText("Reset zoom")
        self.reset_zoom_button.setToolTip("Show the whole part again (or double-click the spectrogram)")
        self.reset_zoom_button.setAutoRaise(False)
        self.reset_zoom_button.hide()
        self.reset_zoom_button.clicked.connect(self.reset_zoom)
        self.plot.getViewBox().sigXRangeChanged.connect(self._on_x_range_changed)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._boundaries: list[pg.InfiniteLine] = []
        self._moments: list[pg.GraphicsObject] = []  # analysed moments, or matching ones
        self.selection = pg.LinearRegionItem(values=(0, 1), movable=True, brush=pg.mkBrush(255, 255, 255, 60),
                                             pen=pg.mkPen("#ffffff", width=2))
        self.selection.setZValue(15)
        self.selection.hide()
        self.selection.sigRegionChangeFinished.connect(self._on_selection_moved)
        self.plot.addItem(self.selection)
        self.message = pg.TextItem("", color="#555", anchor=(0.5, 0.5))
        self.plot.addItem(self.message)
        self.show_message("Select a song to see its spectrogram.")

    def show_message(self, text: str) -> None:
        self.data = None
        self.image.clear()
        self._clear_boundaries()
        self.clear_moments()
        self.selection.hide()
        self.set_playhead(None)
        self.plot.setXRange(0, 1, padding=0)
        self.plot.setYRange(0, self.config.n_mels, padding=0)
        self.message.setText(text)
        self.message.setPos(0.5, self.config.n_mels / 2)
        self.message.show()

    def show_loading(self, title: str) -> None:
        self.title.setText(title)
        self.show_message("Computing spectrogram…")

    def set_data(self, data: SpectrogramData, title: str = "") -> None:
        self.message.hide()
        self.data = data
        self.clear_moments()
        self.selection.hide()
        self.image.setImage(data.mel, autoLevels=False, levels=(0.0, 1.0))
        width = data.mel.shape[1] * data.seconds_per_frame
        self.image.setRect(QRectF(data.offset, 0, width, data.mel.shape[0]))
        self._clear_boundaries()
        pen = pg.mkPen((255, 255, 255, 150), width=1, style=Qt.PenStyle.DashLine)
        for x in data.boundaries:
            line = pg.InfiniteLine(pos=x, angle=90, movable=False, pen=pen)
            line.setZValue(10)
            self.plot.addItem(line)
            self._boundaries.append(line)
        self.plot.setLimits(xMin=data.offset, xMax=data.offset + width, yMin=0, yMax=data.mel.shape[0])
        self.selection.setBounds((data.offset, data.offset + width))  # a passage moved by hand stays in the song
        self.plot.setXRange(data.offset, data.offset + width, padding=0)
        self.plot.setYRange(0, data.mel.shape[0], padding=0)
        if title:
            self.title.setText(title)
        if self.playhead_seconds is not None:
            self.set_playhead(self.playhead_seconds)
        self._on_x_range_changed()

    # -- a selected passage -------------------------------------------------------------
    def _drag_selection(self, start: float, end: float, *, finished: bool) -> None:
        lo, hi = self.data.offset, self.data.end
        start, end = sorted((min(max(start, lo), hi), min(max(end, lo), hi)))
        self.selection.blockSignals(True)
        self.selection.setRegion((start, end))
        self.selection.blockSignals(False)
        self.selection.setVisible(end - start >= self.MIN_PASSAGE_SECONDS or not finished)
        if finished:
            self._on_selection_moved()

    def _on_selection_moved(self, *_args) -> None:
        if self.data is None:
            return
        start, end = self.selection.getRegion()
        if end - start < self.MIN_PASSAGE_SECONDS:
            self.selection.hide()
            return self.passageSelected.emit(None)
        self.passageSelected.emit((float(start), float(end)))

    def set_selection(self, passage: tuple[float, float] | None) -> None:
        """Show a selected passage (seconds), or none; says nothing back through ``passageSelected``."""
        self.selection.blockSignals(True)
        if passage is None or self.data is None:
            self.selection.hide()
        else:
            self.selection.setRegion(passage)
            self.selection.show()
        self.selection.blockSignals(False)

    def selected_passage(self) -> tuple[float, float] | None:
        return tuple(float(x) for x in self.selection.getRegion()) if self.selection.isVisible() else None

    # -- marked moments ----------------------------------------------------------------------
    def mark_moments(self, moments, *, strip: bool = False) -> None:
        """Mark stretches of the song: ``(start, end, label, colour)`` each (colour may be None).

        ``strip`` draws them as a thin band along the top (where the encoder listened) instead
        of over the whole height (where two songs match).
        """
        self.clear_moments()
        for start, end, label, colour in moments:
            colour = pg.mkColor(colour or "#ffffff")
            fill = pg.mkColor(colour)
            fill.setAlpha(170 if strip else 55)
            region = pg.LinearRegionItem(values=(start, end), movable=False, brush=pg.mkBrush(fill),
                                         pen=pg.mkPen(colour, width=1 if strip else 2),
                                         span=(0.93, 1.0) if strip else (0.0, 1.0))
            region.setZValue(12)
            self.plot.addItem(region)
            self._moments.append(region)
            if label:
                text = pg.TextItem(label, color="#ffffff", fill=pg.mkBrush(colour), anchor=(0, 0))
                text.setPos(start, self.config.n_mels * (0.93 if strip else 1.0))
                text.setZValue(13)
                self.plot.addItem(text)
                self._moments.append(text)

    def clear_moments(self) -> None:
        for item in self._moments:
            self.plot.removeItem(item)
        self._moments = []

    def _clear_boundaries(self) -> None:
        for line in self._boundaries:
            self.plot.removeItem(line)
        self._boundaries = []
        self.plot.setLimits(xMin=None, xMax=None, yMin=None, yMax=None)

    def set_playhead(self, seconds: float | None) -> None:
        """Show where the song is (None hides the playhead); outside the shown part it waits at the edge."""
        previous, self.playhead_seconds = self.playhead_seconds, seconds
        if seconds is None or self.data is None:
            self.playhead_seconds = None
            self.playhead.hide()
            self.playhead_label.hide()
            return
        lo, hi = self.data.offset, self.data.end
        inside = lo <= seconds <= hi
        margin = 0.004 * (hi - lo)  # on the edge the line would be half hidden by the axis
        x = min(max(seconds, lo + margin), hi - margin)
        self.playhead.setPen(self._playhead_pen if inside else self._playhead_past_pen)
        self.playhead.setValue(x)
        self.playhead.show()
        if inside:
            self.playhead_label.hide()
            self._follow(previous, seconds)
        else:
            past = seconds > hi
            self.playhead_label.setText(f"{clock_text(seconds)} ▸" if past else f"◂ {clock_text(seconds)}")
            self.playhead_label.setAnchor((1, 0) if past else (0, 0))
            self.playhead_label.setPos(x, self.data.mel.shape[0])
            self.playhead_label.show()

    def _follow(self, previous: float | None, seconds: float) -> None:
        """Turn the page of a zoomed-in view when the playhead runs off its right edge."""
        (x0, x1), _ = self.plot.getViewBox().viewRange()
        if previous is not None and x0 <= previous <= x1 < seconds:
            width = x1 - x0
            start = min(seconds - 0.05 * width, self.data.end - width)
            self.plot.setXRange(start, start + width, padding=0)

    def is_zoomed(self) -> bool:
        if self.data is None:
            return False
        (x0, x1), _ = self.plot.getViewBox().viewRange()
        full = self.data.end - self.data.offset
        return (x1 - x0) < full * 0.999

    def reset_zoom(self) -> None:
        """Show the whole part (time axis)."""
        if self.data is not None:
            self.plot.setXRange(self.data.offset, self.data.end, padding=0)

    def _on_x_range_changed(self, *_args) -> None:
        self.reset_zoom_button.setVisible(self.is_zoomed())
        self._place_reset_button()

    def _place_reset_button(self) -> None:
        if not hasattr(self, "reset_zoom_button"):
            return  # a resize during construction
        rect = self.mapFromScene(self.plot.getViewBox().sceneBoundingRect()).boundingRect()
        size = self.reset_zoom_button.sizeHint()
        self.reset_zoom_button.resize(size)
        self.reset_zoom_button.move(max(0, rect.right() - size.width() - 6), max(0, rect.top() + 6))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_reset_button()

    def _on_mouse_clicked(self, event) -> None:
        if self.data is None or event.button() != Qt.MouseButton.LeftButton:
            return
        box = self.plot.getViewBox()
        if not box.sceneBoundingRect().contains(event.scenePos()):
            return
        if event.double():
            self.reset_zoom()
        else:
            seconds = box.mapSceneToView(event.scenePos()).x()
            self.seekRequested.emit(float(min(max(seconds, self.data.offset), self.data.end)))
        event.accept()


def thumbnail_image(mel: np.ndarray, width: int = 120, height: int = 44) -> QImage:
    """A small colour image of a log-mel spectrogram (low frequencies at the bottom)."""
    small = thumbnail_pixels(mel, width=width, height=height)
    lut = pg.colormap.get(COLORMAP_NAME).getLookupTable(0.0, 1.0, 256, alpha=False)
    rgb = np.ascontiguousarray(lut[np.clip((small * 255).astype(int), 0, 255)], dtype=np.uint8)
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels


def thumbnail_pixmap(mel: np.ndarray, width: int = 120, height: int = 44) -> QPixmap:
    return QPixmap.fromImage(thumbnail_image(mel, width, height))
