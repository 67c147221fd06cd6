"""Closing the real app while it scans, many times: SIGTERM and SIGINT close it like its close button.

Each round starts ``musicrec-gui`` as a user would (a real process, offscreen Qt, PortAudio on a
null device), lets it scan for a random while, and sends SIGTERM (a desktop logout) or SIGINT
(Ctrl-C in the terminal). Expected every time: exit code 0 within a few seconds, no fatal error
or traceback on stderr, the preferences saved, and a library that is whole and keeps what was
analysed.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audio_factory import tone, write

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 14
FILES = 1000


def analysed(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT count(DISTINCT track_id) FROM vectors").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.slow
def test_closing_during_scans_is_clean_every_time(tmp_path, tiny_encoder_path):
    music = tmp_path / "music"
    for i in range(FILES):
        write(music / f"{i // 100:02d}" / f"clip_{i:04d}.wav", tone(2.0, freqs=(90.0 + 2 * i,), seed=i), 22050)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
    env = {**os.environ, "HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT),
           "PYTHONFAULTHANDLER": "1"}
    library, settings = tmp_path / "lib.sqlite3", tmp_path / "prefs.ini"
    cmd = [sys.executable, "-m", "musicrec_gui.gui", "--library", str(library), "--settings", str(settings),
           "--encoder", str(tiny_encoder_path), "--folder", str(music)]
    rng = random.Random(11)
    kept = 0
    mid_scan = 0
    for round_ in range(ROUNDS):
        child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while not library.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        if round_ % 3 == 2:  # while it starts: the encoder still loading, or the first listing
            time.sleep(rng.uniform(0.0, 4.0))
        else:  # mid-scan: once it has analysed a few more songs
            while analysed(library) < kept + 3 and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.0))
        sent = signal.SIGTERM if round_ % 2 else signal.SIGINT
        before = analysed(library) if library.exists() else 0
        mid_scan += kept < before < FILES
        t0 = time.monotonic()
        child.send_signal(sent)
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            out, err = child.communicate()
            pytest.fail(f"round {round_}: still running 60 s after {sent.name}\n{err}")
        seconds = time.monotonic() - t0
        assert child.returncode == 0, f"round {round_}: exit {child.returncode} after {sent.name}\n{err}"
        assert "Fatal" not in err and "Traceback" not in err, f"round {round_}:\n{err}"
        assert seconds < 5.0, f"round {round_}: the process took {seconds:.1f} s to end after {sent.name}"
        assert "last_folder" in settings.read_text(), f"round {round_}: preferences not saved"
        now = analysed(library)
        assert now >= kept, f"round {round_}: analysed songs lost ({kept} → {now})"
        kept = now
    assert mid_scan >= ROUNDS // 3, f"only {mid_scan} closes landed while songs were being analysed"
