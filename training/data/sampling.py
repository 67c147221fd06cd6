"""Sampling slices from the window cache for training (random views) and for sets of fixed slices.

Training samples 128-frame slices from a track's cached windows at random offsets;
evaluation uses the app's slices of window 0 (``WindowCache.app_slices``).
"""

from __future__ import annotations

import numpy as np

from training.data.window_cache import WindowCache


def evenly_spaced_slices(cache: WindowCache, track_idx: int, n: int = 10) -> np.ndarray:
    """``n`` slices spread over all of a track's cached windows (deterministic). (n, n_mels, f, 1)."""
    f = cache.config.slice_frames
    windows = cache.windows_of(track_idx)
    out = []
    for k in range(n):
        w = windows[k % len(windows)]
        valid = max(int(cache.n_frames[w]), f)
        per = -(-n // len(windows))
        j = k // len(windows)
        start = int(round((valid - f) * (j + 0.5) / per))
        out.append(np.asarray(cache.spec[w][:, start : start + f], dtype=np.float32))
    return np.stack(out)[..., None]


def random_slice(cache: WindowCache, track_idx: int, rng: np.random.Generator) -> np.ndarray:
    """One slice from a random window of the track at a random offset: (n_mels, f) float32."""
    f = cache.config.slice_frames
    windows = cache.windows_of(track_idx)
    w = windows[rng.integers(len(windows))]
    valid = max(int(cache.n_frames[w]), f)
    start = int(rng.integers(0, valid - f + 1))
    return np.asarray(cache.spec[w][:, start : start + f], dtype=np.float32)


def random_slice_at(cache: WindowCache, track_idx: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Like :func:`random_slice` but also returns (start frame, window index) for teacher alignment."""
    f = cache.config.slice_frames
    windows = cache.windows_of(track_idx)
    w = int(windows[rng.integers(len(windows))])
    valid = max(int(cache.n_frames[w]), f)
    start = int(rng.integers(0, valid - f + 1))
    return np.array(cache.spec[w][:, start : start + f], dtype=np.float32), start, w
