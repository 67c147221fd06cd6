"""Real audio files for tests, written at test time in several formats."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile


def tone(seconds: float, *, sample_rate: int = 22050, freqs=(440.0,), noise: float = 0.0, seed: int = 0,
         channels: int = 1, pulse_hz: float = 0.0) -> np.ndarray:
    """A musical-ish signal: harmonic partials, optional noise and amplitude pulses.

    Returns
    -------
    np.ndarray [shape=(n,) or (n, channels)], float32
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    y = np.zeros_like(t)
    for f in freqs:
        for h in range(1, 4):
            y += np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.28)) / h
    if pulse_hz:
        y *= 0.5 + 0.5 * (np.sin(2 * np.pi * pulse_hz * t) > 0)
    y += noise * rng.standard_normal(len(t))
    y = 0.3 * y / max(1e-9, np.abs(y).max())
    if channels > 1:
        y = np.stack([y * (1 - 0.1 * c) for c in range(channels)], axis=1)
    return y.astype(np.float32)


def write(path: Path, signal: np.ndarray, sample_rate: int) -> Path:
    """Write with libsndfile (wav, flac, ogg, opus via subtype, mp3, aiff) or PyAV (m4a)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    if ext == ".m4a":
        _write_aac(path, signal, sample_rate)
    elif ext in (".opus", ".ogg"):
        # In blocks: libsndfile's Ogg encoders crash on a long signal written in one call.
        channels = 1 if signal.ndim == 1 else signal.shape[1]
        with soundfile.SoundFile(path, "w", sample_rate, channels, format="OGG",
                                 subtype="OPUS" if ext == ".opus" else "VORBIS") as handle:
            for start in range(0, len(signal), sample_rate):
                handle.write(signal[start:start + sample_rate])
    elif ext == ".mp3":
        soundfile.write(path, signal, sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    else:
        soundfile.write(path, signal, sample_rate)
    return path


def _write_aac(path: Path, signal: np.ndarray, sample_rate: int) -> None:
    import av

    mono = signal if signal.ndim == 1 else signal.mean(axis=1)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.layout = "mono"
        frame_size = 1024
        pts = 0
        for start in range(0, len(mono), frame_size):
            chunk = np.ascontiguousarray(mono[start:start + frame_size].reshape(1, -1), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = pts
            pts += chunk.shape[1]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


# name, seconds, rate, channels, timbre: (freqs, noise, pulse)
GOOD_SONGS = [
    ("low_drone.wav", 8.0, 22050, 1, ((110.0, 165.0), 0.0, 0.0)),
    ("low_drone_2.flac", 7.0, 44100, 2, ((110.0, 164.0), 0.01, 0.0)),
    ("bright_pulse.ogg", 9.0, 48000, 2, ((1760.0,), 0.02, 4.0)),
    ("bright_pulse_2.mp3", 8.0, 44100, 1, ((1720.0,), 0.02, 4.0)),
    ("noise_wash.opus", 8.0, 48000, 1, ((), 0.5, 0.0)),
    ("noise_wash_2.m4a", 8.0, 44100, 1, ((), 0.5, 0.0)),
    ("mid_chord.aiff", 6.0, 16000, 1, ((440.0, 554.0, 659.0), 0.0, 2.0)),
    ("sub_folder/mid_chord_2.wav", 7.0, 32000, 2, ((440.0, 550.0, 660.0), 0.0, 2.0)),
]


def make_good_library(root: Path) -> list[Path]:
    paths = []
    for i, (name, seconds, rate, channels, (freqs, noise, pulse)) in enumerate(GOOD_SONGS):
        sig = tone(seconds, sample_rate=rate, freqs=freqs, noise=noise, seed=i, channels=channels, pulse_hz=pulse)
        if not freqs:
            sig = (np.random.default_rng(i).standard_normal(sig.shape) * 0.2).astype(np.float32)
        paths.append(write(root / name, sig, rate))
    return paths


def make_bad_files(root: Path) -> dict[str, str]:
    """Files that must fail (or succeed) gracefully. Returns {file name: what it is}."""
    root.mkdir(parents=True, exist_ok=True)
    made = {}
    good = write(root / "_tmp_source.ogg", tone(6.0, freqs=(300.0,)), 22050).read_bytes()
    os.remove(root / "_tmp_source.ogg")
    (root / "truncated.ogg").write_bytes(good[: len(good) // 3 if len(good) > 300 else 100][:200])
    made["truncated.ogg"] = "fail"
    (root / "not_audio.mp3").write_bytes(b"<html><body>This is a web page saved with the wrong name</body></html>" * 20)
    made["not_audio.mp3"] = "fail"
    (root / "empty.flac").write_bytes(b"")
    made["empty.flac"] = "fail"
    (root / "text.wav").write_text("RIFF but not really a wave file\n" * 10)
    made["text.wav"] = "fail"
    write(root / "silence.wav", np.zeros(22050 * 5, dtype=np.float32), 22050)
    made["silence.wav"] = "ok"
    write(root / "tiny_clip.flac", tone(0.1, freqs=(500.0,)), 22050)
    made["tiny_clip.flac"] = "ok"
    odd = "Ünïcødé ♫ 曲 – ‘quotes’.wav"
    write(root / odd, tone(4.0, freqs=(700.0,)), 22050)
    made[odd] = "ok"
    if os.path.supports_unicode_filenames is False or os.name == "posix":
        raw = os.path.join(os.fsencode(root), b"latin1_\xe9t\xe9.wav")
        with open(raw, "wb") as handle:
            handle.write((root / odd).read_bytes())
        made[os.fsdecode(b"latin1_\xe9t\xe9.wav")] = "ok"
    os.symlink(root / "does_not_exist.ogg", root / "dangling_link.ogg")
    made["dangling_link.ogg"] = "fail"
    (root / "folder.mp3").mkdir()  # a directory with an audio extension is simply not a file
    loop = root / "loop"
    loop.mkdir()
    os.symlink(loop, loop / "again")  # a symlink loop must not trap the walk
    os.mkfifo(root / "pipe.wav")
    made["pipe.wav"] = "fail"
    return made


def portaudio_on_null_device() -> None:
    """Import sounddevice (which initialises PortAudio) with HOME pointing at an ``.asoundrc``
    whose default PCM is ALSA's null device (a device that takes audio faster than real time on
    a machine without a sound card), then restore HOME. Does nothing if sounddevice is loaded."""
    import sys
    import tempfile

    if "sounddevice" in sys.modules:
        return
    home = Path(tempfile.mkdtemp(prefix="musicrec-alsa-"))
    (home / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        import sounddevice  # noqa: F401
    finally:
        if old is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old


# Two artists, each with a song of five timbres (the second artist's a little higher and noisier): a
# song's nearest neighbour is often the other artist's song of its timbre, so excluding the artist
# changes the answer. Ten songs: enough for the index to centre its vectors.
TAGGED_ARTISTS = ("Ada Drone", "Bea Pulse")
TAGGED_TIMBRES = [((110.0, 165.0), 0.0, 0.0), ((1760.0,), 0.02, 4.0), ((), 0.5, 0.0), ((440.0, 554.0, 659.0), 0.0, 2.0),
                  ((220.0, 330.0, 495.0), 0.1, 7.0)]


def make_tagged_songs(root: Path, *, seconds: float = 30.0, rate: int = 22050) -> list[Path]:
    """FLAC songs with title, artist, album and track number tags, in ``root/ARTIST/NN - TITLE.flac``."""
    from mutagen.flac import FLAC

    paths = []
    for a, artist in enumerate(TAGGED_ARTISTS):
        for i, (freqs, noise, pulse) in enumerate(TAGGED_TIMBRES):
            title = f"Song {'ABCDE'[i]}{a + 1}"
            path = root / artist / f"{i + 1:02d} - {title}.flac"
            sig = tone(seconds, sample_rate=rate, freqs=tuple(f * (1 + 0.15 * a) for f in freqs) or (300.0,),
                       noise=noise + 0.05 * a, seed=10 * a + i, pulse_hz=pulse * (1 + a))
            if not freqs:
                noise_signal = np.random.default_rng(10 * a + i).standard_normal(sig.shape)
                if a:  # the second artist's noise is darker
                    noise_signal = np.convolve(noise_signal, np.ones(6) / 6, mode="same")
                sig = (noise_signal * 0.2).astype(np.float32)
            write(path, sig, rate)
            tags = FLAC(path)
            tags.update({"title": title, "artist": artist, "album": f"{artist} Album", "tracknumber": str(i + 1)})
            tags.save()
            paths.append(path)
    return paths
