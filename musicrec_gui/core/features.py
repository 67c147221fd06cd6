"""Log-mel spectrograms and fixed-size slices: the one front end of app and training.

Two kinds of front end, chosen by ``FeatureConfig.kind`` (which travels in every
encoder's JSON, so an encoder is always fed what it was trained on):

``"logmel-db"`` (musicrec's own encoders). Normalisation (deterministic, per song): power mel spectrogram → decibels
relative to the song's loudest bin → clipped at ``-top_db`` → scaled to [0, 1]
(0 = 80 dB or more below the peak, 1 = the peak). A song's loudness therefore
does not change its vector. Pure digital silence (peak power below 1e-10) maps to
all zeros rather than to noise amplified to full scale.

Clips shorter than one slice are padded on the right with zeros, i.e. with the
normalised floor, which is what silence after the song would give.

``"musicnn"`` (the musicnn MSD tagger, Pons & Serra 2019): the power mel spectrogram
(16 kHz, n_fft 512, hop 256, 96 slaney-normalised bands from 0 Hz to sr/2) compressed
as ``log10(1 + 10000 * mel)``, exactly as musicnn computed its training data; no
per-song normalisation, so loudness does change the input, as it did in training. Zero
padding is silence here too (log10(1) = 0). Slices are 187 frames (≈ 3 s).
"""

from __future__ import annotations

import numpy as np

from musicrec_gui.core.config import FeatureConfig

_SILENCE_POWER = 1e-10


def log_mel_spectrogram(audio: np.ndarray, *, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Log-mel spectrogram of a mono signal, compressed as ``config.kind`` says.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,)], float
        Mono audio at ``config.sample_rate``.
    config : FeatureConfig
        Front-end parameters.

    Returns
    -------
    np.ndarray [shape=(n_mels, t)], float32
        ``t = 1 + n_samples // hop_length`` (centred frames). Values in [0, 1] for kind
        ``"logmel-db"``; ``log10(1 + 10000 * mel) >= 0`` for kind ``"musicnn"``.
    """
    import librosa  # deferred: importing librosa costs ~1 s, not needed to list a library

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"Expected mono audio of shape (n_samples,), got shape {audio.shape}; mix down first.")
    n_samples = audio.size
    if n_samples < config.n_fft:
        # Shorter than one FFT window: pad with silence; frames past the clip are trimmed below.
        audio = np.pad(audio, (0, config.n_fft - n_samples))
    # Non-finite samples (a broken decoder) would poison every bin of the FFT.
    audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    if config.kind == "musicnn":
        return _musicnn_log_mel(audio, n_samples, config)
    if config.kind != "logmel-db":
        raise ValueError(f"Unknown front end kind {config.kind!r}; expected 'logmel-db' or 'musicnn'.")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1e3:
        # Float files may hold any scale; the spectrogram is relative to its own peak, so scaling
        # down changes nothing but keeps the squared magnitudes from overflowing float32.
        audio = audio / np.float32(peak)
    power = librosa.feature.melspectrogram(
        y=audio,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        power=2.0,
    )
    n_frames = 1 + max(n_samples, 1) // config.hop_length
    return normalise_power(power[:, :n_frames], top_db=config.top_db)


def _musicnn_log_mel(audio: np.ndarray, n_samples: int, config: FeatureConfig) -> np.ndarray:
    """musicnn's input: ``log10(1 + 10000 * mel power)``, librosa's mel defaults otherwise."""
    import librosa

    # Sample values far outside [-1, 1] (a float file of any scale) would overflow float32
    # squared magnitudes; clipping keeps the result finite (musicnn never saw such input).
    audio = np.clip(audio, -1e3, 1e3)
    power = librosa.feature.melspectrogram(
        y=audio,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        power=2.0,
    )
    n_frames = 1 + max(n_samples, 1) // config.hop_length
    return np.log10(1.0 + 10000.0 * power[:, :n_frames].astype(np.float64)).astype(np.float32)


def normalise_power(power: np.ndarray, *, top_db: float = 80.0) -> np.ndarray:
    """Map a power spectrogram to [0, 1] decibels relative to its own peak.

    Parameters
    ----------
    power : np.ndarray [shape=(n_mels, t)]
    top_db : float
        Dynamic range kept below the peak.

    Returns
    -------
    np.ndarray [shape=(n_mels, t)], float32
    """
    power = np.asarray(power, dtype=np.float64)
    peak = float(power.max()) if power.size else 0.0
    if not np.isfinite(peak) or peak < _SILENCE_POWER:
        return np.zeros(power.shape, dtype=np.float32)
    db = 10.0 * np.log10(np.maximum(power, _SILENCE_POWER) / peak)
    return np.clip((db + top_db) / top_db, 0.0, 1.0).astype(np.float32)


def slice_starts(n_frames: int, *, slice_frames: int = 128, max_slices: int | None = None) -> np.ndarray:
    """First frame of each slice.

    Slices tile the spectrogram without overlap from frame 0; a trailing part
    shorter than a slice is dropped unless it is the only part (then it is
    padded). With more slices than ``max_slices``, ``max_slices`` of them are
    kept, evenly spaced over the song.

    Returns
    -------
    np.ndarray [shape=(n_slices,)], int64
    """
    n_full = max(1, n_frames // slice_frames)
    starts = np.arange(n_full, dtype=np.int64) * slice_frames
    if max_slices is not None and n_full > max_slices:
        keep = np.linspace(0, n_full - 1, max_slices).round().astype(np.int64)
        starts = starts[keep]
    return starts


def slice_spectrogram(
    spectrogram: np.ndarray, *, slice_frames: int = 128, max_slices: int | None = None
) -> np.ndarray:
    """Cut a spectrogram into the encoder's input slices.

    Parameters
    ----------
    spectrogram : np.ndarray [shape=(n_mels, t)]
    slice_frames : int
    max_slices : int or None

    Returns
    -------
    np.ndarray [shape=(n_slices, n_mels, slice_frames, 1)], float32
        ``n_slices >= 1`` always: a clip shorter than one slice is zero-padded.
    """
    spectrogram = np.asarray(spectrogram, dtype=np.float32)
    n_mels, n_frames = spectrogram.shape
    if n_frames < slice_frames:
        padded = np.zeros((n_mels, slice_frames), dtype=np.float32)
        padded[:, :n_frames] = spectrogram
        spectrogram, n_frames = padded, slice_frames
    starts = slice_starts(n_frames, slice_frames=slice_frames, max_slices=max_slices)
    out = np.stack([spectrogram[:, s : s + slice_frames] for s in starts])
    return out[..., np.newaxis]


def song_slices(
    audio: np.ndarray, *, config: FeatureConfig = FeatureConfig(), max_slices: int | None = None
) -> np.ndarray:
    """Audio → encoder input in one call.

    Returns
    -------
    np.ndarray [shape=(n_slices, n_mels, slice_frames, 1)], float32
    """
    spectrogram = log_mel_spectrogram(audio, config=config)
    return slice_spectrogram(spectrogram, slice_frames=config.slice_frames, max_slices=max_slices)
