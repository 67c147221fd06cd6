"""Bad input that needs more than a file on disk: vanishing files, permissions, real corpus tracks."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import CORPUS
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.library import Library


def test_file_vanishing_mid_scan_is_a_listed_failure(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    victim = music_dir / "sub_folder" / "mid_chord_2.wav"
    events = []
    # prefetch=0 and one worker: the victim is not decoded before we delete it.
    for event in scan_mod.scan(music_dir, library=library, encoder=tiny_encoder, workers=1, prefetch=0):
        events.append(event)
        if isinstance(event, scan_mod.ScanStarted):
            victim.unlink()
    failed = {Path(e.path).name: e.reason for e in events if isinstance(e, scan_mod.TrackFailed)}
    assert "disappeared" in failed["mid_chord_2.wav"]
    assert isinstance(events[-1], scan_mod.ScanFinished) and events[-1].analysed == 11
    # The next scan does not fail on it again: its folder is now empty, so it is kept as missing
    # (an empty folder may be an unmounted drive) until 'scan --prune'.
    again = list(scan_mod.scan(music_dir, library=library, encoder=tiny_encoder))
    started = next(e for e in again if isinstance(e, scan_mod.ScanStarted))
    assert (started.pruned, started.missing) == (0, 1) and started.to_analyse == 2  # the pipe and the dead link


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv to drop root")
def test_unreadable_file_says_permission_denied():
    from audio_factory import tone, write

    folder = Path(tempfile.mkdtemp(prefix="musicrec-perm-"))
    try:
        os.chmod(folder, 0o755)
        song = write(folder / "locked.wav", tone(1.0), 22050)
        os.chmod(song, 0)
        code = ("import sys; from musicrec_gui.core.audio import load_audio, AudioError\n"
                "try:\n    load_audio(sys.argv[1])\nexcept AudioError as err:\n    print(err)\n")
        cmd = [sys.executable, "-c", code, str(song)]
        if os.geteuid() == 0:  # root reads everything: run the check as 'nobody'
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1],
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        assert "permission denied" in result.stdout, result.stdout + result.stderr
    finally:
        shutil.rmtree(folder)


def corpus_tracks(n: int) -> list[Path]:
    if not (CORPUS / "manifest.tsv").exists():
        pytest.skip(f"corpus not fetched to {CORPUS} (python3 ../shared/corpus/fetch_corpus.py {CORPUS})")
    rows = list(csv.DictReader(open(CORPUS / "manifest.tsv", newline=""), delimiter="\t"))
    picked, seen = [], set()
    for row in sorted(rows, key=lambda r: r["path"]):
        if row["package"] not in seen:
            seen.add(row["package"])
            picked.append(CORPUS / row["path"])
    return picked[:n]


def test_real_corpus_tracks_scan_and_find_neighbours(tmp_path, tiny_encoder):
    tracks = corpus_tracks(5)
    folder = tmp_path / "real"
    folder.mkdir()
    for track in tracks:
        os.symlink(track, folder / track.name)
    library = Library(tmp_path / "lib.sqlite3")
    events = list(scan_mod.scan(folder, library=library, encoder=tiny_encoder))
    assert events[-1].analysed == len(tracks) and events[-1].failed == 0
    for track in library.tracks():
        assert track.duration > 30 and track.status == "done"


def test_file_rewritten_mid_scan_is_redone_next_time(music_dir, tmp_path, tiny_encoder):
    from audio_factory import tone, write

    library = Library(tmp_path / "lib.sqlite3")
    victim = music_dir / "low_drone.wav"
    events = []
    for event in scan_mod.scan(music_dir, library=library, encoder=tiny_encoder, workers=1, prefetch=0):
        events.append(event)
        if isinstance(event, scan_mod.ScanStarted):
            write(victim, tone(3.0, freqs=(990.0,)), 22050)
            os.utime(victim, ns=(1, 1))  # a new identity even on coarse-mtime file systems
    failed = {Path(e.path).name: e.reason for e in events if isinstance(e, scan_mod.TrackFailed)}
    assert "changed while it was being read" in failed["low_drone.wav"]
    again = list(scan_mod.scan(music_dir, library=library, encoder=tiny_encoder))
    assert [Path(e.track.path).name for e in again if isinstance(e, scan_mod.TrackDone)] == ["low_drone.wav"]


def test_unreadable_subfolder_keeps_its_cached_songs(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    list(scan_mod.scan(music_dir, library=library, encoder=tiny_encoder))
    before = library.stats()["done"]
    hidden = music_dir / "sub_folder"
    moved = tmp_path / "elsewhere"
    hidden.rename(moved)
    hidden.mkdir()
    os.chmod(hidden, 0)  # root can still list it, so simulate the walk error directly below if needed
    try:
        events = list(scan_mod.scan(music_dir, library=library, encoder=tiny_encoder))
    finally:
        os.chmod(hidden, 0o755)
    started = next(e for e in events if isinstance(e, scan_mod.ScanStarted))
    if os.geteuid() != 0:
        assert started.pruned == 0 and library.stats()["done"] == before
    else:  # as root the folder is readable and empty: like an unmounted drive, its song is kept as missing
        assert (started.pruned, started.missing) == (0, 1) and library.stats()["done"] == before
    plan = library.plan_scan([], encoder_key=tiny_encoder.key, analysis_key=AnalysisSettings().key, root=str(music_dir),
                             keep_under=[str(music_dir)], prune=True)
    assert plan.pruned == 0, "nothing below an unreadable folder is pruned, even when asked to prune"


def test_a_file_stuck_in_decoding_is_skipped_and_the_scan_goes_on(music_dir, tmp_path, tiny_encoder):
    from audio_factory import tone, write

    slow = write(tmp_path / "slow" / "long.flac", tone(600.0), 22050)  # 10 minutes, full-track decode
    for name in ("a.wav", "b.wav"):
        write(slow.parent / name, tone(2.0), 22050)
    library = Library(tmp_path / "lib.sqlite3")
    events = list(scan_mod.scan(slow.parent, library=library, encoder=tiny_encoder, workers=1, prefetch=0,
                                hang_seconds=0.05, settings=scan_mod.AnalysisSettings(mode="full")))
    failed = {Path(e.path).name: e.reason for e in events if isinstance(e, scan_mod.TrackFailed)}
    assert "got stuck" in failed["long.flac"] and "next scan tries it again" in failed["long.flac"]
    assert isinstance(events[-1], scan_mod.ScanFinished)
