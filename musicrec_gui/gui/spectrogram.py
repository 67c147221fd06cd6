"""Drawing a song's log-mel spectrogram (pyqtgraph) and small thumbnails of it; the maths is in ``core.spectrogram``."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QToolButton, QVBoxLayout, QWidget

from musicrec_gui.core.config import FeatureConfig
from musicrec_gui.core.spectrogram import SpectrogramData, compute_spectrogram, mel_bin_frequencies, thumbnail_pixels
from musicrec_gui.gui.player import clock_text

COLORMAP_NAME = "viridis"
SPECTROGRAM_CACHE = 32  # songs


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

    def __init__(self, config: FeatureConfig = FeatureConfig(), parent=None):
        super().__init__(parent=parent)
        self.setBackground("w")
        self.config = config
        self.data: SpectrogramData | None = None
        self.frequency_axis = MelFrequencyAxis(config.n_mels, config.fmin, config.fmax)
        self.plot = self.addPlot(row=0, col=0, axisItems={"left": self.frequency_axis})
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
        self.message = pg.TextItem("", color="#555", anchor=(0.5, 0.5))
        self.plot.addItem(self.message)
        self.show_message("Select a song to see its spectrogram.")

    def show_message(self, text: str) -> None:
        self.data = None
        self.image.clear()
        self._clear_boundaries()
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
        self.plot.setXRange(data.offset, data.offset + width, padding=0)
        self.plot.setYRange(0, data.mel.shape[0], padding=0)
        if title:
            self.title.setText(title)
        if self.playhead_seconds is not None:
            self.set_playhead(self.playhead_seconds)
        self._on_x_range_changed()

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


class SpectrogramPanel(QWidget):
    """The anchor's spectrogram, titled with its name and tags, with a playhead while it plays.

    Parameters
    ----------
    session : Session
    preview : Preview
    jobs : BackgroundJobs
        Spectrograms are decoded there, never on the GUI thread.
    """

    shown = Signal()  # a spectrogram (or a message saying why there is none) is on screen

    def __init__(self, session, preview, jobs, parent: QWidget | None = None):
        super().__init__(parent)
        self.session, self.preview, self.jobs = session, preview, jobs
        self.view = SpectrogramView(session.display_features)
        self.view.setMinimumHeight(160)
        self.ready = False
        self._token = 0
        self._cache: OrderedDict[int, SpectrogramData] = OrderedDict()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        session.anchorChanged.connect(self.refresh)
        session.analysisChanged.connect(self._on_analysis_changed)
        preview.positionChanged.connect(self._on_position)
        preview.changed.connect(self._on_preview_changed)
        self.view.seekRequested.connect(self._on_seek_requested)
        if preview.player.available:
            self.view.setToolTip("Click to play from there · wheel to zoom in time, drag to pan · "
                                 "double-click to see it all")

    def _on_analysis_changed(self, _settings) -> None:
        self._cache.clear()
        self.refresh()

    def _title(self, track) -> str:
        from musicrec_gui.core.playlist import display_name
        from musicrec_gui.core.tags import tags_text

        title = f"<b>{_elide(display_name(track), 70)}</b>" + (f" — {_elide(track.album, 40)}" if track.album else "")
        tags = self.session.song_tags(track)
        if tags:
            title += f"<br><small>tags: {_elide(tags_text(tags), 90)}</small>"
        return title

    def refresh(self, *_args) -> None:
        track = self.session.anchor
        self._token += 1
        token = self._token
        if track is None:
            self.view.title.setText("")
            self.view.show_message("Select a song to see its spectrogram.")
            self._set_ready()
            return
        title = self._title(track)
        cached = self._cache.get(track.id)
        if cached is not None:
            self.view.set_data(cached, title)
            self._on_preview_changed()
            self._set_ready()
            return
        self.ready = False
        self.view.show_loading(title)
        settings, features = self.session.analysis, self.session.display_features

        def work():
            return compute_spectrogram(track.path, settings=settings, config=features, duration=track.duration)

        def done(data):
            if token != self._token:
                return
            self._cache[track.id] = data
            while len(self._cache) > SPECTROGRAM_CACHE:
                self._cache.popitem(last=False)
            self.view.set_data(data, title)
            self._set_ready()

        def failed(err):
            if token == self._token:
                self.view.show_message(f"Cannot show this song: {err}")
                self._set_ready()

        self.jobs.submit(work, done, failed)

    def _set_ready(self) -> None:
        self.ready = True
        self.shown.emit()

    def _on_position(self, track, seconds: float) -> None:
        anchor = self.session.anchor
        if anchor is not None and track.id == anchor.id and self.preview.anchor_state() is not None:
            self.view.set_playhead(seconds)

    def _on_preview_changed(self) -> None:
        if self.preview.anchor_state() is None:
            self.view.set_playhead(None)
        elif self.view.playhead_seconds is None:
            self.view.set_playhead(self.preview.player.position())

    def _on_seek_requested(self, seconds: float) -> None:
        anchor = self.session.anchor
        if anchor is not None and self.view.data is not None and anchor.status != "failed":
            self.preview.seek_anchor(seconds)
            self.view.set_playhead(seconds)


def _elide(text: str, n: int) -> str:
    text = text if len(text) <= n else text[: n - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
