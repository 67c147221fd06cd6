"""The selected song's log-mel spectrogram (pyqtgraph) and small thumbnails of it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPixmap

from musicrec_gui.core import audio as audio_mod
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.features import log_mel_spectrogram, slice_starts

COLORMAP_NAME = "viridis"
# Whole-song analysis spreads its slices over the song; we show its middle minute.
FULL_MODE_VIEW_SECONDS = 60.0


@dataclass(frozen=True)
class SpectrogramData:
    mel: np.ndarray  # (n_mels, t) in [0, 1]
    offset: float  # seconds into the song of frame 0
    seconds_per_frame: float
    boundaries: tuple[float, ...]  # slice starts, in song seconds
    duration: float  # of the whole song (0 if unknown)

    @property
    def end(self) -> float:
        return self.offset + self.mel.shape[1] * self.seconds_per_frame


def display_window(duration: float, settings: AnalysisSettings) -> tuple[float, float | None]:
    """(offset, length) of the part of a song that is shown and previewed: the analysed excerpt."""
    if settings.mode == "excerpt":
        return audio_mod.analysis_window(duration, settings)
    return audio_mod.analysis_window(duration, AnalysisSettings("excerpt", excerpt_seconds=FULL_MODE_VIEW_SECONDS))


def compute_spectrogram(path: str, *, settings: AnalysisSettings, config: FeatureConfig = FeatureConfig(),
                        duration: float = 0.0) -> SpectrogramData:
    """Decode the analysed excerpt and compute its log-mel (runs in a worker thread)."""
    total = duration if duration > 0 else audio_mod.probe_duration(path)
    offset, length = display_window(total, settings)
    if length is None:
        length = FULL_MODE_VIEW_SECONDS
    audio = audio_mod.load_audio(path, sample_rate=config.sample_rate, offset=offset, duration=length)
    mel = log_mel_spectrogram(audio, config=config)
    spf = config.hop_length / config.sample_rate
    starts = slice_starts(mel.shape[1], slice_frames=config.slice_frames)
    boundaries = [offset + int(s) * spf for s in starts]
    boundaries.append(offset + (int(starts[-1]) + config.slice_frames) * spf)
    return SpectrogramData(mel, offset, spf, tuple(boundaries), total)


@lru_cache(maxsize=4)
def mel_bin_frequencies(n_mels: int = 128, fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    import librosa

    return librosa.mel_frequencies(n_mels=n_mels, fmin=fmin, fmax=fmax)


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
    frequency in Hz on the mel scale, slice boundaries, and a playhead."""

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
        self.playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ff3b30", width=2))
        self.playhead.setZValue(20)
        self.playhead.hide()
        self.plot.addItem(self.playhead)
        self._boundaries: list[pg.InfiniteLine] = []
        self.message = pg.TextItem("", color="#555", anchor=(0.5, 0.5))
        self.plot.addItem(self.message)
        self.show_message("Select a song to see its spectrogram.")

    def show_message(self, text: str) -> None:
        self.data = None
        self.image.clear()
        self._clear_boundaries()
        self.playhead.hide()
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

    def _clear_boundaries(self) -> None:
        for line in self._boundaries:
            self.plot.removeItem(line)
        self._boundaries = []
        self.plot.setLimits(xMin=None, xMax=None, yMin=None, yMax=None)

    def set_playhead(self, seconds: float | None) -> None:
        if seconds is None or self.data is None:
            self.playhead.hide()
            return
        self.playhead.setValue(seconds)
        self.playhead.show()


def thumbnail_image(mel: np.ndarray, width: int = 120, height: int = 44) -> QImage:
    """A small colour image of a log-mel spectrogram (low frequencies at the bottom)."""
    mel = np.asarray(mel, dtype=np.float32)
    rows = np.linspace(0, mel.shape[0] - 1, height).astype(int)
    cols = np.linspace(0, max(0, mel.shape[1] - 1), width).astype(int)
    small = mel[np.ix_(rows, cols)][::-1]
    lut = pg.colormap.get(COLORMAP_NAME).getLookupTable(0.0, 1.0, 256, alpha=False)
    rgb = np.ascontiguousarray(lut[np.clip((small * 255).astype(int), 0, 255)], dtype=np.uint8)
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels


def thumbnail_pixmap(mel: np.ndarray, width: int = 120, height: int = 44) -> QPixmap:
    return QPixmap.fromImage(thumbnail_image(mel, width, height))
