"""What the app draws of a song: the analysed part's log-mel spectrogram, with no Qt in it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from musicrec_gui.core import audio as audio_mod
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.features import log_mel_spectrogram, slice_starts

# Whole-song and spread analyses cover the song; the middle minute is what is shown and previewed.
FULL_MODE_VIEW_SECONDS = 60.0


@dataclass(frozen=True)
class SpectrogramData:
    """A displayable spectrogram of part of a song."""

    mel: np.ndarray  # (n_mels, t) in [0, 1]
    offset: float  # seconds into the song of frame 0
    seconds_per_frame: float
    boundaries: tuple[float, ...]  # slice starts, in song seconds
    duration: float  # of the whole song (0 if unknown)

    @property
    def end(self) -> float:
        return self.offset + self.mel.shape[1] * self.seconds_per_frame


def display_window(duration: float, settings: AnalysisSettings) -> tuple[float, float | None]:
    """(offset, length) in seconds of the part of a song that is shown and previewed: the analysed excerpt."""
    if settings.mode == "excerpt":
        return audio_mod.analysis_window(duration, settings)
    return audio_mod.analysis_window(duration, AnalysisSettings("excerpt", excerpt_seconds=FULL_MODE_VIEW_SECONDS))


def compute_spectrogram(path: str, *, settings: AnalysisSettings, config: FeatureConfig = FeatureConfig(),
                        duration: float = 0.0) -> SpectrogramData:
    """Decode the shown part of a song and compute its log-mel (slow: call it from a worker thread).

    Parameters
    ----------
    path : str
    settings : AnalysisSettings
        Which part is shown (:func:`display_window`).
    config : FeatureConfig
        A ``"logmel-db"`` front end, whose values lie in [0, 1].
    duration : float
        The song's length if known (else it is probed).

    Raises
    ------
    core.audio.AudioError
        The file cannot be decoded.
    """
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


def thumbnail_pixels(mel: np.ndarray, *, width: int = 120, height: int = 44) -> np.ndarray:
    """A log-mel resampled to a small grid, low frequencies at the bottom.

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, t)], values in [0, 1]

    Returns
    -------
    np.ndarray [shape=(height, width)], float32
    """
    mel = np.asarray(mel, dtype=np.float32)
    rows = np.linspace(0, mel.shape[0] - 1, height).astype(int)
    cols = np.linspace(0, max(0, mel.shape[1] - 1), width).astype(int)
    return mel[np.ix_(rows, cols)][::-1]


@lru_cache(maxsize=4)
def mel_bin_frequencies(n_mels: int = 128, fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """Centre frequency in Hz of each mel band [shape=(n_mels,)]."""
    import librosa

    return librosa.mel_frequencies(n_mels=n_mels, fmin=fmin, fmax=fmax)


# A match view shows whole songs; past this, only the beginning (an hour-long mix stays cheap).
OVERVIEW_MAX_SECONDS = 600.0


def compute_overview(path: str, *, config: FeatureConfig = FeatureConfig(), duration: float = 0.0,
                     max_seconds: float = OVERVIEW_MAX_SECONDS) -> SpectrogramData:
    """The log-mel of a whole song (at most ``max_seconds`` of it), to show where its moments lie.

    Slow (decodes the song): call it from a worker thread.

    Raises
    ------
    core.audio.AudioError
        The file cannot be decoded.
    """
    total = duration if duration > 0 else audio_mod.probe_duration(path)
    length = min(total, max_seconds) if total > 0 else max_seconds
    audio = audio_mod.load_audio(path, sample_rate=config.sample_rate, offset=0.0, duration=length)
    mel = log_mel_spectrogram(audio, config=config)
    return SpectrogramData(mel, 0.0, config.hop_length / config.sample_rate, (), total)
