"""Whole-song mode: only the analysed windows are decoded (bounded memory), and a scan stops promptly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audio_factory import write
from musicrec_gui.core import audio, features
from musicrec_gui.core.config import FeatureConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG = FeatureConfig()


def stepped_tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A tone whose pitch and loudness change every few seconds, so misplaced windows show.

    Returns
    -------
    np.ndarray [shape=(n,) or (n, channels)], float32
    """
    t = np.arange(int(seconds * rate)) / rate
    freq = 200.0 + 97.0 * (np.floor(t / 7.0) % 15)
    y = np.sin(2 * np.pi * np.cumsum(freq) / rate) * (0.2 + 0.8 * np.sin(2 * np.pi * 0.05 * t) ** 2)
    y = (0.3 * y).astype(np.float32)
    return np.stack([y, 0.7 * y], axis=1) if channels == 2 else y


def reference_windows(path: Path) -> np.ndarray:
    """The windows cut from a whole-file decode: what whole-song mode analysed before."""
    y = audio.load_audio(path)
    starts = features.window_starts(y.size, config=CONFIG, max_slices=64)
    return features.cut_windows(y, starts, features.window_length(CONFIG))


@pytest.mark.parametrize("name, rate, channels, tolerance", [
    ("long.wav", 22050, 1, 1e-6),     # seeks, no resampling: the very same samples
    ("long.flac", 44100, 2, 5e-3),    # seeks and resamples each window with the whole-file phase
    ("long.mp3", 44100, 1, 1e-2),     # FFmpeg: seeks early, skips by timestamps (encoder delay counted)
    ("short.flac", 48000, 1, 1e-6),   # under ~6 min: decoded whole and cut
])
def test_windows_are_those_of_the_whole_song(tmp_path, name, rate, channels, tolerance):
    seconds = 200.0 if name.startswith("short") else 420.0
    path = write(tmp_path / name, stepped_tone(seconds, rate, channels), rate)
    windows, duration = audio.load_song_windows(path, config=CONFIG, max_slices=64)
    expected = reference_windows(path)
    assert abs(duration - seconds) < 0.1 and windows.shape == expected.shape == (64, features.window_length(CONFIG))
    slices = features.window_slices(windows, config=CONFIG)
    assert np.abs(slices - features.window_slices(expected, config=CONFIG)).max() < tolerance
    # The slices equal those of the old whole-song spectrogram but for the dB reference (peak of the
    # analysed slices, not of the song): on this signal the two peaks almost coincide.
    old = features.song_slices(audio.load_audio(path), config=CONFIG, max_slices=64)
    assert np.abs(slices - old).mean() < 2e-3


def test_a_song_of_unknown_length_is_streamed_into_bounded_evenly_spaced_windows(tmp_path, monkeypatch):
    path = write(tmp_path / "no_length.wav", stepped_tone(600.0, 22050), 22050)
    expected = reference_windows(path)
    whole = audio.load_audio(path)
    monkeypatch.setattr(audio, "probe_duration", lambda _: 0.0)
    windows, duration = audio.load_song_windows(path, config=CONFIG, max_slices=64)
    assert abs(duration - 600.0) < 0.01 and windows.shape == expected.shape
    # Each window is exactly the audio under some slice, within two slices of the evenly spaced one it
    # stands for (600 s is 201 slices; the stream kept every other one).
    stride = CONFIG.slice_frames * CONFIG.hop_length
    wanted = (features.window_starts(whole.size, config=CONFIG, max_slices=64) + CONFIG.n_fft // 2) // stride
    for window, slot in zip(windows, wanted):
        near = np.arange(max(0, slot - 2), slot + 3)
        candidates = features.cut_windows(whole, near * stride - CONFIG.n_fft // 2, features.window_length(CONFIG))
        assert any(np.array_equal(c, window) for c in candidates), slot


def test_window_collector_holds_at_most_its_capacity():
    stream = (np.arange(i, min(i + 1000, 50_000), dtype=np.float32) for i in range(0, 50_000, 1000))
    held, n = audio._collect_windows(stream, first=-10, stride=100, length=130, capacity=8, limit=10**9)
    assert n == 50_000 and 4 < len(held) <= 8
    step = sorted(held)[1] - sorted(held)[0]
    assert sorted(held) == list(range(0, 500, step))  # evenly strided from the first window
    for index, window in held.items():
        start = -10 + index * 100
        expected = np.arange(start, start + 130, dtype=np.float32)
        expected[(expected < 0) | (expected >= 50_000)] = 0  # silence outside the stream
        assert np.array_equal(window, expected)


def test_a_cancelled_decode_stops_between_blocks(tmp_path):
    path = write(tmp_path / "a.flac", stepped_tone(30.0, 44100), 44100)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(audio.DecodeCancelled):
        audio.load_audio(path, cancel=cancel)
    with pytest.raises(audio.DecodeCancelled):
        audio.load_song_windows(path, cancel=cancel)


# -- a 3-hour file through the real command line -------------------------------------------------------
@pytest.fixture(scope="module")
def three_hours(tmp_path_factory):
    """A 3-hour 22 050 Hz mono FLAC (about 80 MB, a few seconds to write: one period repeated)."""
    folder = tmp_path_factory.mktemp("three_hours")
    path = folder / "three_hours.flac"
    rate = 22050
    minute = np.tile((0.3 * np.sin(2 * np.pi * np.arange(50) / 50)).astype(np.float32), rate * 60 // 50)
    with soundfile.SoundFile(path, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(180):
            out.write(minute)
    yield path
    path.unlink()


def musicrec(*args: str) -> list[str]:
    return [sys.executable, "-m", "musicrec_gui.cli", *args]


@pytest.mark.slow
def test_full_mode_peak_memory_is_bounded_for_a_three_hour_file(three_hours, tmp_path, tiny_encoder_path):
    folder = tmp_path / "music"
    folder.mkdir()
    os.symlink(three_hours, folder / "mix.flac")
    log = tmp_path / "stderr.txt"
    # The child reports its own high-water mark (VmHWM): rusage's maxrss of a forked child also
    # counts the memory of this test process at the fork, which runs to gigabytes with TensorFlow.
    code = ("import sys; from musicrec_gui.cli import main; code = main(sys.argv[1:]); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
            "print('VmHWM', hwm, file=sys.stderr); sys.exit(code)")
    with open(log, "w") as err:
        child = subprocess.run([sys.executable, "-c", code, "scan", str(folder), "--mode", "full", "--library",
                                str(tmp_path / "lib.db"), "--encoder", str(tiny_encoder_path), "--workers", "1", "-q"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    peak_mb = int(next(line for line in log.read_text().splitlines() if line.startswith("VmHWM")).split()[1]) / 1024
    print(f"peak RSS of 'musicrec scan --mode full' on a 3-hour FLAC: {peak_mb:.0f} MB")
    assert child.returncode == 0, log.read_text()[-2000:]
    assert "analysed 1, failed 0" in log.read_text()
    # TensorFlow alone is about 0.9 GB; decoding the whole file took 7.6 GB more before.
    assert peak_mb < 1500


def wait_for(child: subprocess.Popen, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    for line in child.stderr:
        if text in line:
            return
        if time.monotonic() > deadline:
            break
    pytest.fail(f"the scan never printed {text!r}")


@pytest.mark.slow
def test_sigint_and_sigterm_stop_a_full_scan_within_two_seconds(three_hours, tmp_path, tiny_encoder_path):
    folder = tmp_path / "music"
    folder.mkdir()
    for name in ("a", "b", "c"):  # a scan of several seconds, so the signals land mid-analysis
        os.link(three_hours, folder / f"{name}.flac")  # hard links: three files (symbolic ones are one song)
    library = tmp_path / "lib.db"
    args = ("scan", str(folder), "--mode", "full", "--library", str(library), "--encoder", str(tiny_encoder_path),
            "--workers", "1", "-q")
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        child = subprocess.Popen(musicrec(*args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
        try:
            wait_for(child, "to analyse")
            time.sleep(0.3)  # the first song is being decoded now
            sent = time.monotonic()
            child.send_signal(sig)
            try:
                rest = child.communicate(timeout=10)[1]
            except subprocess.TimeoutExpired:
                pytest.fail(f"{sig.name}: still running 10 s after the signal")
            took = time.monotonic() - sent
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        print(f"{sig.name}: exited {child.returncode} in {took:.2f} s")
        assert child.returncode == code, rest
        assert "musicrec: interrupted; finished songs are kept in the library." in rest
        assert took < 2.0, f"{sig.name} took {took:.2f} s to stop"
        with sqlite3.connect(library) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT count(*) FROM tracks WHERE status = 'failed'").fetchone()[0] == 0
    # The library opens as it is, and a rescan finishes what was interrupted.
    done = subprocess.run(musicrec(*args), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(library) as conn:
        assert conn.execute("SELECT count(*) FROM tracks WHERE status = 'done'").fetchone()[0] == 3
