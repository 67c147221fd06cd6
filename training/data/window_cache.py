"""The window cache: each track's 30-s windows as normalised log-mel, decoded once, memory-mapped.

The audio front end is the app's own: ``musicrec_gui.core.audio.load_audio`` and
``musicrec_gui.core.features.log_mel_spectrogram``. A cached *window* is the
normalised log-mel of a 30-s excerpt exactly as the app computes it; window 0 of a
track is the app's default analysis (the centred 30 s), further windows are evenly
spaced over the track for training variety (:func:`window_offsets`).

A cache folder (``training/cache/NAME-FINGERPRINT-KEY/``) holds

- ``spec.npy``: (n_windows, n_mels, frames) float16, memory-mapped;
- ``mfcc.npy``: (n_windows, 80) MFCC statistics of each window (the baseline);
- ``meta.npz``: ``track_of``, ``window_index`` and ``n_frames`` per window;
- ``offsets.npy``: the start of each window in its track, in seconds (what was decoded;
  the teacher decodes the same audio again from it);
- ``index.json``: the tracks, the ``FeatureConfig``, the windows per track and decoding errors.

Caches written before ``offsets.npy`` existed still load: their offsets are recomputed
once with :func:`window_offsets` (as they were built) and saved beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from musicrec_gui.core.audio import load_audio, probe_duration
from musicrec_gui.core.config import FeatureConfig
from musicrec_gui.core.features import log_mel_spectrogram, slice_spectrogram
from training.config import CACHE_DIR
from training.data.datasets import LabelledTrack

EXCERPT_SECONDS = 30.0


def window_offsets(seconds: float, n_windows: int, excerpt: float = EXCERPT_SECONDS) -> list[float]:
    """Start times of the cached windows: first the centred excerpt (the app's), then evenly spaced ones."""
    if seconds <= excerpt or n_windows <= 1:
        return [max(0.0, (seconds - excerpt) / 2.0)][: max(1, n_windows)] if seconds > 0 else [0.0]
    centre = (seconds - excerpt) / 2.0
    others = [float(x) for x in np.linspace(0.0, seconds - excerpt, n_windows + 1)]
    others.sort(key=lambda x: -abs(x - centre))  # the ones farthest from the centre first
    return [centre] + sorted(others[: n_windows - 1])


def window_frames(config: FeatureConfig, excerpt: float = EXCERPT_SECONDS) -> int:
    return 1 + int(round(excerpt * config.sample_rate)) // config.hop_length


def mfcc_stats(audio: np.ndarray, sr: int) -> np.ndarray:
    """Baseline song vector: mean and std of 20 MFCCs and of their deltas (80-d)."""
    import librosa

    if audio.size < 2048:
        audio = np.pad(audio, (0, 2048 - audio.size))
    mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=20)
    delta = librosa.feature.delta(mfcc, mode="nearest") if mfcc.shape[1] >= 3 else np.zeros_like(mfcc)
    return np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]).astype(np.float32)


def _decode_window(args):
    path, offset, config_dict, frames = args
    config = FeatureConfig.from_dict(config_dict)
    try:
        audio = load_audio(path, sample_rate=config.sample_rate, offset=offset, duration=EXCERPT_SECONDS)
    except Exception as err:  # noqa: BLE001 - a broken file becomes an all-zero window, reported
        return None, None, 0, f"{path}: {err}"
    spec = log_mel_spectrogram(audio, config=config)
    n = min(spec.shape[1], frames)
    out = np.zeros((config.n_mels, frames), dtype=np.float16)
    out[:, :n] = spec[:, :n]
    return out, mfcc_stats(audio, config.sample_rate), n, ""


@dataclass
class WindowCache:
    """Memory-mapped windows: ``spec[i]`` is (n_mels, frames) float16 of window ``i``.

    ``track_of[i]`` is the index into ``tracks`` of window ``i``; ``n_frames[i]`` its valid
    frames (short tracks are zero-padded); ``window_index[i]`` 0 for the centred excerpt;
    ``offsets[i]`` where window ``i`` starts in its track (seconds).
    """

    directory: Path
    tracks: list[LabelledTrack]
    spec: np.ndarray
    mfcc: np.ndarray
    track_of: np.ndarray
    window_index: np.ndarray
    n_frames: np.ndarray
    offsets: np.ndarray
    config: FeatureConfig

    def windows_of(self, track_idx: int) -> np.ndarray:
        return np.flatnonzero(self.track_of == track_idx)

    def app_slices(self, track_idx: int) -> np.ndarray:
        """The app's slices of the centred excerpt: (n, n_mels, slice_frames, 1) float32."""
        w = self.windows_of(track_idx)[0]
        n = int(self.n_frames[w])
        return slice_spectrogram(np.asarray(self.spec[w][:, :n], dtype=np.float32), slice_frames=self.config.slice_frames)

    def window_audio(self, w: int, sample_rate: int) -> np.ndarray:
        """The audio under cached window ``w`` (the same excerpt, decoded again at ``sample_rate``)."""
        track = self.tracks[int(self.track_of[w])]
        return load_audio(track.path, sample_rate=sample_rate, offset=float(self.offsets[w]), duration=EXCERPT_SECONDS)


def cache_key(tracks: Sequence[LabelledTrack], n_windows: int, config: FeatureConfig) -> str:
    blob = json.dumps([[t.path, t.seconds] for t in tracks] + [n_windows, config.to_dict(), 2]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def build_cache(
    tracks: Sequence[LabelledTrack],
    *,
    name: str,
    n_windows: int = 1,
    config: FeatureConfig = FeatureConfig(),
    cache_dir: str | os.PathLike = CACHE_DIR,
    workers: int = 2,
    verbose: bool = True,
) -> WindowCache:
    """Decode every track's windows with the app's front end, once; later calls memory-map the result."""
    tracks = list(tracks)
    directory = Path(cache_dir) / f"{name}-{config.fingerprint}-{cache_key(tracks, n_windows, config)}"
    done = directory / "index.json"
    if not done.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        frames = window_frames(config)
        jobs, track_of, window_index, offsets = [], [], [], []
        for i, t in enumerate(tracks):
            seconds = t.seconds or probe_duration(t.path)
            for w, off in enumerate(window_offsets(seconds, n_windows)):
                jobs.append((t.path, off, config.to_dict(), frames))
                track_of.append(i)
                window_index.append(w)
                offsets.append(off)
        spec = np.lib.format.open_memmap(
            directory / "spec.npy", mode="w+", dtype=np.float16, shape=(len(jobs), config.n_mels, frames)
        )
        mfcc = np.zeros((len(jobs), 80), dtype=np.float32)
        n_frames = np.zeros(len(jobs), dtype=np.int32)
        errors = []
        if workers > 1:
            from multiprocessing import get_context

            pool = get_context("spawn").Pool(workers)
            results = pool.imap(_decode_window, jobs, chunksize=4)
        else:
            pool, results = None, map(_decode_window, jobs)
        for j, (s, m, n, err) in enumerate(results):
            if err:
                errors.append(err)
            else:
                spec[j], mfcc[j], n_frames[j] = s, m, n
            if verbose and (j + 1) % 100 == 0:
                print(f"  cached {j + 1}/{len(jobs)} windows", flush=True)
        if pool is not None:
            pool.close()
            pool.join()
        spec.flush()
        del spec
        np.save(directory / "mfcc.npy", mfcc)
        np.save(directory / "offsets.npy", np.array(offsets, dtype=np.float64))
        np.savez(directory / "meta.npz", track_of=np.array(track_of), window_index=np.array(window_index), n_frames=n_frames)
        done.write_text(json.dumps({"tracks": [asdict(t) for t in tracks], "config": config.to_dict(),
                                    "n_windows": n_windows, "excerpt_seconds": EXCERPT_SECONDS, "errors": errors},
                                   indent=1))
    return load_cache(directory)


def _recomputed_offsets(tracks: Sequence[LabelledTrack], track_of: np.ndarray, window_index: np.ndarray,
                        n_windows: int) -> np.ndarray:
    """Offsets of a cache built before they were stored: :func:`window_offsets` again, as at build time."""
    per_track: dict[int, list[float]] = {}
    out = np.zeros(len(track_of), dtype=np.float64)
    for w, (t, k) in enumerate(zip(track_of, window_index)):
        t = int(t)
        if t not in per_track:
            track = tracks[t]
            per_track[t] = window_offsets(track.seconds or probe_duration(track.path), n_windows)
        out[w] = per_track[t][int(k)] if int(k) < len(per_track[t]) else 0.0
    return out


def load_cache(directory: str | os.PathLike) -> WindowCache:
    directory = Path(directory)
    index = json.loads((directory / "index.json").read_text())
    meta = np.load(directory / "meta.npz")
    tracks = [LabelledTrack(**t) for t in index["tracks"]]
    track_of, window_index = meta["track_of"], meta["window_index"]
    if (directory / "offsets.npy").is_file():
        offsets = np.load(directory / "offsets.npy")
    else:  # a cache from before the offsets were stored
        n_windows = int(index.get("n_windows", int(window_index.max()) + 1 if len(window_index) else 1))
        offsets = _recomputed_offsets(tracks, track_of, window_index, n_windows)
        try:
            np.save(directory / "offsets.npy", offsets)
        except OSError:
            pass  # a read-only cache: recomputed at every load
    return WindowCache(
        directory=directory,
        tracks=tracks,
        spec=np.load(directory / "spec.npy", mmap_mode="r"),
        mfcc=np.load(directory / "mfcc.npy"),
        track_of=track_of,
        window_index=window_index,
        n_frames=meta["n_frames"],
        offsets=offsets,
        config=FeatureConfig.from_dict(index["config"]),
    )


def track_indices(cache: WindowCache, subset: Iterable[LabelledTrack]) -> np.ndarray:
    """Positions in ``cache.tracks`` of the tracks of ``subset`` (e.g. one split)."""
    pos = {t.path: i for i, t in enumerate(cache.tracks)}
    return np.array([pos[t.path] for t in subset], dtype=np.int64)
