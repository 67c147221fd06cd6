"""A corpus of hostile and odd audio files, generated at test time (issue: reliability).

``make_hostile_corpus(root)`` writes well over 200 files and returns {relative name: kind}.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import numpy as np

from audio_factory import tone, write

FORMATS = [".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aiff"]


def wav_header(*, rate: int, channels: int, bits: int = 16, data_bytes: int = 0, riff_size: int | None = None) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block & 0xFFFFFFFF, block & 0xFFFF, bits)
    riff = riff_size if riff_size is not None else 36 + data_bytes
    return b"RIFF" + struct.pack("<I", riff & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + \
        b"data" + struct.pack("<I", data_bytes & 0xFFFFFFFF)


def make_hostile_corpus(root: Path, *, seed: int = 1) -> dict[str, str]:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    sources = {}
    for i, ext in enumerate(FORMATS):
        rate = 48000 if ext == ".opus" else 44100
        sources[ext] = write(root / f"source{ext}", tone(4.0, sample_rate=rate, freqs=(220.0 * (i + 1),)), rate)
        made[f"source{ext}"] = "valid"
    for ext, path in sources.items():
        data = path.read_bytes()
        for frac in (0.0005, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):  # truncated at many points
            name = f"trunc_{int(frac * 1000):04d}{ext}"
            (root / name).write_bytes(data[: max(1, int(len(data) * frac))])
            made[name] = "truncated"
        for k in range(8):  # bit flips, in the header and in the body
            buf = bytearray(data)
            for _ in range(1 + k * 3):
                pos = rng.randrange(0, min(len(buf), 64)) if k < 3 else rng.randrange(len(buf))
                buf[pos] ^= 1 << rng.randrange(8)
            name = f"flip_{k}{ext}"
            (root / name).write_bytes(bytes(buf))
            made[name] = "bitflip"
        for other in FORMATS:  # right bytes, wrong extension
            if other != ext:
                name = f"wrongext_{ext[1:]}_as{other}"
                (root / name).write_bytes(data)
                made[name] = "wrong extension"
        name = f"zero{ext}"
        (root / name).write_bytes(b"")
        made[name] = "empty"
        name = f"random_bytes{ext}"
        (root / name).write_bytes(rng.randbytes(5000))
        made[name] = "garbage"
        name = f"text{ext}"
        (root / name).write_text("Not audio. " * 200)
        made[name] = "garbage"
    # Absurd headers.
    for rate in (1, 7, 999, 10_000_000, 0xFFFFFFFF):
        name = f"rate_{rate}.wav"
        (root / name).write_bytes(wav_header(rate=rate, channels=1, data_bytes=8000) + bytes(8000))
        made[name] = "absurd rate"
    for channels in (0, 65, 255, 4096, 65535):
        name = f"channels_{channels}.wav"
        (root / name).write_bytes(wav_header(rate=44100, channels=channels, data_bytes=8000) + bytes(8000))
        made[name] = "absurd channels"
    name = "claims_4GB.wav"
    (root / name).write_bytes(wav_header(rate=44100, channels=2, data_bytes=0xFFFFFFF0, riff_size=0xFFFFFFF8) + bytes(4000))
    made[name] = "lying size"
    name = "huge_id3.mp3"
    id3_size = 6 * 1024 * 1024
    syncsafe = bytes([(id3_size >> 21) & 0x7F, (id3_size >> 14) & 0x7F, (id3_size >> 7) & 0x7F, id3_size & 0x7F])
    (root / name).write_bytes(b"ID3\x04\x00\x00" + syncsafe + bytes(id3_size) + sources[".mp3"].read_bytes())
    made[name] = "huge header"
    name = "id3_claims_huge.mp3"
    (root / name).write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + bytes(100))
    made[name] = "lying header"
    # Silence, minutes long, and tiny clips.
    write(root / "silence_3min.flac", np.zeros(22050 * 180, np.float32), 22050)
    made["silence_3min.flac"] = "valid"
    for ext in (".wav", ".flac", ".ogg"):
        write(root / f"clip_0.1s{ext}", tone(0.1, sample_rate=44100), 44100)
        made[f"clip_0.1s{ext}"] = "valid"
    write(root / "one_sample.wav", np.zeros(1, np.float32), 8000)
    made["one_sample.wav"] = "valid"
    # Names.
    for i, name in enumerate(["名前 ♫ 曲.wav", "emoji 🎵🎶.flac", "rtl עברית.ogg", "combining é.wav", "nfd e\u0301.wav",
                              " leading space.wav", "trailing space .flac", "semi;colon'quote\".wav", "new\nline.wav"]):
        write(root / name, tone(1.0, freqs=(300.0 + 50 * i,)), 22050)
        made[name] = "valid"
    raw_root = os.fsencode(root)
    for i, raw in enumerate([b"latin1_\xe9.wav", b"bad_utf8_\xff\xfe.wav", b"lone_\xc3.wav"]):
        tmp = write(root / f"_tmp{i}.wav", tone(1.0, freqs=(900.0 + 30 * i,)), 22050)
        os.rename(tmp, os.path.join(raw_root, raw))
        made[os.fsdecode(raw)] = "valid"
    # Links and special files.
    loop = root / "loop_dir"
    loop.mkdir()
    os.symlink(loop, loop / "self")
    os.symlink(root, loop / "up")
    os.symlink(root / "nowhere.flac", root / "dangling.flac")
    made["dangling.flac"] = "dangling"
    os.symlink(root / "link_b.ogg", root / "link_a.ogg")
    os.symlink(root / "link_a.ogg", root / "link_b.ogg")
    made["link_a.ogg"] = made["link_b.ogg"] = "link loop"
    os.mkfifo(root / "fifo.mp3")
    made["fifo.mp3"] = "fifo"
    (root / "dir.flac").mkdir()
    locked = write(root / "locked.wav", tone(1.0), 22050)
    os.chmod(locked, 0)
    made["locked.wav"] = "unreadable (unless root)"
    return made
