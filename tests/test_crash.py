"""SIGKILL a real scan at random points, many times: the cache stays whole and the next scan resumes."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from audio_factory import tone, write
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.library import Library

ROOT = Path(__file__).resolve().parents[1]


def check_consistent(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        done_without_vector = conn.execute(
            "SELECT count(*) FROM tracks t WHERE t.status = 'done' AND NOT EXISTS "
            "(SELECT 1 FROM vectors v WHERE v.track_id = t.id)").fetchone()[0]
        vector_without_done = conn.execute(
            "SELECT count(*) FROM vectors v LEFT JOIN tracks t ON t.id = v.track_id "
            "WHERE t.id IS NULL OR t.status != 'done'").fetchone()[0]
        failed_without_reason = conn.execute(
            "SELECT count(*) FROM tracks WHERE status = 'failed' AND error = ''").fetchone()[0]
        assert (done_without_vector, vector_without_done, failed_without_reason) == (0, 0, 0)
        bad_blobs = conn.execute("SELECT count(*) FROM vectors WHERE length(vector) != 16 * 4 "
                                 "OR length(slice_vectors) != n_slices * 16 * 4").fetchone()[0]
        assert bad_blobs == 0
        done = conn.execute("SELECT count(*) FROM tracks WHERE status = 'done'").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        return done, total
    finally:
        conn.close()


def done_so_far(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM tracks WHERE status = 'done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_sigkill_mid_scan_never_corrupts_the_cache(tmp_path, tiny_encoder_path, tiny_encoder):
    music = tmp_path / "music"
    for i in range(300):
        write(music / f"{i // 50:02d}" / f"clip_{i:03d}.wav", tone(1.5, freqs=(100.0 + 7 * i,), seed=i), 22050)
    library_path = tmp_path / "lib.sqlite3"
    rng = random.Random(3)
    progress = []
    cmd = [sys.executable, "-m", "musicrec_gui", "--library", str(library_path), "--encoder",
           str(tiny_encoder_path), "-q", "scan", str(music)]
    for attempt in range(6):
        child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Wait until the child has finished a few more songs (TensorFlow takes seconds to import),
        # then kill it at a random moment of its work.
        last = progress[-1] if progress else 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and child.poll() is None and done_so_far(library_path) < last + 3:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        done, total = check_consistent(library_path)
        progress.append(done)
    assert 0 < progress[0] and progress[-1] < 300, f"kills must land mid-scan: {progress}"
    assert len(set(progress)) == len(progress), f"every run must make progress before its kill: {progress}"
    library = Library(library_path, recover=False)  # opens without being set aside
    assert library.recovered_from is None
    done_before = library.stats()["done"]
    events = list(scan_mod.scan(music, library=library, encoder=tiny_encoder))
    assert events[-1].analysed == 300 - done_before, "the resumed scan must redo only unfinished files"
    assert library.stats()["done"] == 300
