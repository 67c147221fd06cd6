"""Many processes on one library at once — creating it, scanning, querying — killed at random moments,
round after round: no analysed song is ever lost, the library always opens as it is, and the user's
music folder stays byte for byte as it was."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audio_factory import make_bad_files, tone, write
from musicrec_gui.core.library import Library

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(folder))] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[str(path.relative_to(folder))] = "dir" if path.is_dir() else "special"
    return out


def analysed(library_path: Path) -> set[bytes]:
    """Paths with a stored vector, read as a third party would (plain sqlite3, read-only)."""
    conn = sqlite3.connect(f"file:{library_path}?mode=ro", uri=True, timeout=30)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT t.path FROM tracks t JOIN vectors v ON v.track_id = t.id").fetchall()
        orphans = conn.execute("SELECT count(*) FROM vectors WHERE track_id NOT IN (SELECT id FROM tracks)").fetchone()
        assert orphans[0] == 0
        return {bytes(r[0]) for r in rows}
    finally:
        conn.close()


@pytest.mark.slow
def test_concurrent_creation_scans_queries_and_kills(tmp_path, tiny_encoder_path):
    music = tmp_path / "music"
    for i in range(60):
        write(music / f"{i // 20:02d}" / f"clip_{i:03d}.wav", tone(1.5, freqs=(110.0 + 9 * i,), seed=i), 22050)
    make_bad_files(music / "bad")
    before = snapshot(music)
    library_path = tmp_path / "lib.sqlite3"
    base = [sys.executable, "-m", "musicrec_gui", "--library", str(library_path), "--encoder",
            str(tiny_encoder_path), "-q"]
    commands = [base + ["scan", str(music)], base + ["scan", str(music), "--workers", "1"],
                base + ["similar", "clip_00"], base + ["info"], base + ["similar", "clip_01", "-k", "5"]]
    rng = random.Random(11)
    seen: set[bytes] = set()
    kills = 0
    for round_ in range(6):
        # New songs every round, so the scans have work (a rescan with nothing new ends in a blink).
        for i in range(60 + 25 * round_, 60 + 25 * (round_ + 1)):
            write(music / "new" / f"clip_{i:03d}.wav", tone(1.5, freqs=(110.0 + 9 * i,), seed=i), 22050)
        before = snapshot(music)
        # Every process starts at once: the first round also races to create the library.
        children = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for cmd in rng.sample(commands, 4)]
        time.sleep(rng.uniform(1.0, 7.0))
        killed = set()
        for child in children:
            if child.poll() is None and rng.random() < 0.6:
                child.send_signal(signal.SIGKILL)
                killed.add(child.pid)
                kills += 1
        for child in children:
            out, err = child.communicate(timeout=180)
            if child.pid in killed:
                continue
            text = err.decode(errors="replace")
            assert "Traceback" not in text, text
            assert child.returncode in (0, 1), text  # 1: no analysed song matches yet
        assert not [p for p in tmp_path.iterdir() if "broken" in p.name], "nothing is ever set aside"
        now = analysed(library_path)
        assert seen <= now, f"round {round_}: analysed songs were lost: {sorted(seen - now)[:3]}"
        seen = now
        assert snapshot(music) == before, f"round {round_}: the music folder changed"
    assert kills >= 3, "the kills must land while processes run"
    with Library(library_path, recover=False) as library:
        assert library.recovered_from is None
    final = subprocess.run(base + ["scan", str(music)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert len(analysed(library_path)) >= 60 + 150 + 3  # every clip and the odd but valid files in bad/
    assert snapshot(music) == before, "the music folder is untouched"
    left = {p.name for p in tmp_path.iterdir()} - {"lib.sqlite3", "lib.sqlite3-shm", "lib.sqlite3-wal", "music"}
    assert not left, f"musicrec left files of its own beside the library: {left}"
