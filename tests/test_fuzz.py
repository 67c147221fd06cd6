"""Property-based fuzzing of decode → features → slices (short here; longer: scripts/fuzz.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audio_factory import tone, write
from musicrec_gui.core import audio, features

EXAMPLES = int(os.environ.get("MUSICREC_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_SEEDS: dict[str, bytes] = {}


def seed_file(ext: str) -> bytes:
    """A small valid file of each format, the starting point for mutations."""
    if ext not in _SEEDS:
        with tempfile.TemporaryDirectory() as tmp:
            rate = 48000 if ext == ".opus" else 22050
            _SEEDS[ext] = write(Path(tmp) / f"seed{ext}", tone(1.0, sample_rate=rate), rate).read_bytes()
    return _SEEDS[ext]


def check_slices(slices: np.ndarray) -> None:
    assert slices.ndim == 4 and slices.shape[1:] == (128, 128, 1) and slices.shape[0] >= 1
    assert slices.dtype == np.float32 and np.isfinite(slices).all()
    assert slices.min() >= 0.0 and slices.max() <= 1.0


def decode_or_fail_cleanly(data: bytes, ext: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{ext}"
        path.write_bytes(data)
        try:
            windows, _ = audio.load_song_windows(path, time_limit=20)  # whole-song mode's own decoding path
        except audio.AudioError as err:
            assert str(err)
        else:
            assert windows.dtype == np.float32 and windows.shape[1] == features.window_length()
            check_slices(features.window_slices(windows))
        try:
            y = audio.load_audio(path, time_limit=20)
        except audio.AudioError as err:
            assert str(err)
            return
        assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
        check_slices(features.song_slices(y[: 22050 * 20]))


@FUZZ
@given(hnp.arrays(np.float32, st.integers(0, 22050 * 8),
                  elements=st.floats(allow_nan=True, allow_infinity=True, width=32)))
def test_features_accept_any_signal(signal):
    check_slices(features.song_slices(signal))
    starts = features.window_starts(signal.size, max_slices=4)
    check_slices(features.window_slices(features.cut_windows(signal, starts, features.window_length())))


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff"]))
def test_arbitrary_bytes_decode_or_fail_cleanly(data, ext):
    decode_or_fail_cleanly(data, ext)


@FUZZ
@given(st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus"]), st.data())
def test_mutated_real_files_decode_or_fail_cleanly(ext, data):
    buf = bytearray(seed_file(ext))
    for _ in range(data.draw(st.integers(1, 20))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(buf)))
    decode_or_fail_cleanly(bytes(buf[:cut]), ext)
