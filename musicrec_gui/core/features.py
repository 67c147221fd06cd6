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

Whole-song mode ("full") never holds a whole song: it decodes only the audio
under the slices it keeps (``window_starts``: the same evenly spaced slices
``slice_starts`` picks from the whole spectrogram), each with the FFT's context
on either side, and turns those windows into slices with ``window_slices``.
The one difference from slicing a whole-song spectrogram: the dB reference is
the loudest bin of the analysed slices, not of the whole song (the song is
never all in memory). ``AnalysisSettings.key`` marks such vectors ("full64s").
(And, for clips shorter than one slice, the two or three frames just past the
clip's last centred frame hold its tail instead of the padded floor.)
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
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"Expected mono audio of shape (n_samples,), got shape {audio.shape}; mix down first.")
    n_samples = audio.size
    if n_samples < config.n_fft:
        # Shorter than one FFT window: pad with silence; frames past the clip are trimmed below.
        audio = np.pad(audio, (0, config.n_fft - n_samples))
    power = _mel_power(_clean_scale(audio, config=config), config=config, center=True)
    n_frames = 1 + max(n_samples, 1) // config.hop_length
    return compress(power[:, :n_frames], config=config)


def compress(power: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """The encoder's input from mel power, as ``config.kind`` says.

    Parameters
    ----------
    power : np.ndarray [shape=(..., n_mels, t)]
        Mel power of the song (or of all its analysed windows at once: ``"logmel-db"``
        takes its dB reference from the loudest bin of the whole array).
    config : FeatureConfig

    Returns
    -------
    np.ndarray [shape=(..., n_mels, t)], float32
    """
    if config.kind == "musicnn":
        return np.log10(1.0 + 10000.0 * np.asarray(power, dtype=np.float64)).astype(np.float32)
    if config.kind != "logmel-db":
        raise ValueError(f"Unknown front end kind {config.kind!r}; expected 'logmel-db' or 'musicnn'.")
    return normalise_power(power, top_db=config.top_db)


def _clean_scale(audio: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Zero non-finite samples and bring huge float scales down (shape kept)."""
    # Non-finite samples (a broken decoder) would poison every bin of the FFT.
    audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    if config.kind == "musicnn":
        # No per-song normalisation here (musicnn never had one): values far outside [-1, 1], from
        # a float file of any scale, are clipped so the squared magnitudes stay finite.
        return np.clip(audio, -1e3, 1e3)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1e3:
        # Float files may hold any scale; the spectrogram is relative to its own peak, so scaling
        # down changes nothing but keeps the squared magnitudes from overflowing float32.
        audio = audio / np.float32(peak)
    return audio


def load_backend() -> None:
    """Import the spectrogram code now (librosa loads its modules lazily, 1-3 s on first use).

    The scan calls this from its own thread before starting its decoders: an import there can be
    interrupted by Ctrl-C, while one inside a pool thread would hold up the stop until it finished.
    """
    import librosa

    # Attribute access is what makes lazy_loader import a submodule (and numba compile its stencils).
    _ = librosa.feature.melspectrogram, librosa.filters.mel, librosa.stft


def _mel_power(audio: np.ndarray, *, config: FeatureConfig, center: bool) -> np.ndarray:
    """Mel power spectrogram [shape=(..., n_mels, t)] of audio [shape=(..., n_samples)], not normalised."""
    import librosa  # deferred: importing librosa costs ~1 s, not needed to list a library

    return librosa.feature.melspectrogram(
        y=audio,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        power=2.0,
        center=center,
    )


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


def window_length(config: FeatureConfig = FeatureConfig()) -> int:
    """Samples of audio under one slice, FFT context included: ``(slice_frames - 1) * hop + n_fft``."""
    return (config.slice_frames - 1) * config.hop_length + config.n_fft


def window_starts(n_samples: int, *, config: FeatureConfig = FeatureConfig(), max_slices: int | None = None) -> np.ndarray:
    """First sample of the audio under each slice that ``song_slices`` would keep.

    Slice frames are centred (frame ``t`` covers samples ``t * hop - n_fft // 2`` to
    ``t * hop + n_fft // 2``), so a window starts ``n_fft // 2`` samples before its first
    frame's hop position; the first window starts before sample 0 (read as silence, as the
    centred spectrogram pads with zeros).

    Parameters
    ----------
    n_samples : int
        Length of the song at ``config.sample_rate``.
    config : FeatureConfig
    max_slices : int or None

    Returns
    -------
    np.ndarray [shape=(n_slices,)], int64
        Sample positions, possibly negative; each window is ``window_length(config)`` long.
    """
    n_frames = 1 + max(int(n_samples), 1) // config.hop_length
    frames = slice_starts(n_frames, slice_frames=config.slice_frames, max_slices=max_slices)
    return frames * config.hop_length - config.n_fft // 2


SPREAD_MARGIN = 0.05


def spread_window_starts(n_samples: int, *, config: FeatureConfig = FeatureConfig(), patches: int = 8) -> np.ndarray:
    """First sample of each of ``patches`` windows spread evenly over a song (spread analysis).

    The first and last ``SPREAD_MARGIN`` (5 %) of the song are left out (intros and fades);
    where the rest is too short for ``patches`` windows, the whole song is used, and a song
    shorter than ``patches`` windows gets as many non-overlapping windows as it holds (at
    least one, zero-padded past its end).

    Parameters
    ----------
    n_samples : int
        Length of the song at ``config.sample_rate``.
    config : FeatureConfig
    patches : int

    Returns
    -------
    np.ndarray [shape=(n_windows,)], int64
        Sample positions, ascending; each window is ``window_length(config)`` long.
    """
    n_samples = max(int(n_samples), 0)
    length = window_length(config)
    first, last = int(SPREAD_MARGIN * n_samples), int((1 - SPREAD_MARGIN) * n_samples) - length
    if last - first >= (patches - 1) * length // 2 and last >= first:
        return np.linspace(first, last, patches).round().astype(np.int64)
    if n_samples >= patches * length:
        return np.linspace(0, n_samples - length, patches).round().astype(np.int64)
    return np.arange(max(1, n_samples // length), dtype=np.int64) * length


def cut_windows(audio: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Windows of an in-memory signal, zeros where a window runs past either end.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,)]
    starts : np.ndarray [shape=(n_windows,)], int
    length : int

    Returns
    -------
    np.ndarray [shape=(n_windows, length)], float32
    """
    audio = np.asarray(audio, dtype=np.float32)
    out = np.zeros((len(starts), length), dtype=np.float32)
    for row, start in zip(out, np.asarray(starts, dtype=np.int64)):
        lo, hi = max(0, int(start)), min(audio.size, int(start) + length)
        if hi > lo:
            row[lo - start : hi - start] = audio[lo:hi]
    return out


def window_slices(windows: np.ndarray, *, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Encoder input from the audio under each slice (whole-song mode).

    Each window gives exactly one slice (``center=False`` frames: the context is in the
    window). For ``"logmel-db"`` the windows share one scale and one dB reference, the
    loudest bin over all of them, so their relative loudness is kept as in a whole-song
    spectrogram; ``"musicnn"`` has no reference to share.

    Parameters
    ----------
    windows : np.ndarray [shape=(n_windows, window_length(config))], float
        Mono audio at ``config.sample_rate``; ``n_windows >= 1``.
    config : FeatureConfig

    Returns
    -------
    np.ndarray [shape=(n_windows, n_mels, slice_frames, 1)], float32
    """
    windows = np.asarray(windows, dtype=np.float32)
    length = window_length(config)
    if windows.ndim != 2 or windows.shape[1] != length or not len(windows):
        raise ValueError(f"Expected windows of shape (n >= 1, {length}), got shape {windows.shape}.")
    windows = _clean_scale(windows, config=config)
    # A few windows per call: librosa transforms a stack at once (one mel basis, one FFT plan), and a
    # bounded batch keeps the complex STFT small (16 windows: about 17 MB).
    batch = 16
    power = np.concatenate([_mel_power(windows[i : i + batch], config=config, center=False)
                            for i in range(0, len(windows), batch)])
    return compress(power[..., : config.slice_frames], config=config)[..., np.newaxis]
