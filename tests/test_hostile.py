"""Hundreds of hostile files: every one ends as done or as a failure with a reason; no hang, no fd leak."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hostile import make_hostile_corpus
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.errors import FailureKind
from musicrec_gui.core.library import Library


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_hostile_corpus_scans_cleanly(tmp_path, tiny_encoder):
    root = tmp_path / "hostile"
    made = make_hostile_corpus(root)
    assert len(made) >= 200
    library = Library(tmp_path / "lib.sqlite3")
    list(scan_mod.scan(root / "loop_dir", library=library, encoder=tiny_encoder))  # warm up lazy imports
    fds_before = open_fds()
    started = time.monotonic()
    events = list(scan_mod.scan(root, library=library, encoder=tiny_encoder))
    elapsed = time.monotonic() - started
    done = {os.path.relpath(e.track.path, root) for e in events if isinstance(e, scan_mod.TrackDone)}
    failed = {os.path.relpath(e.path, root): e.reason for e in events if isinstance(e, scan_mod.TrackFailed)}
    kinds = {os.path.relpath(e.path, root): e.kind for e in events if isinstance(e, scan_mod.TrackFailed)}
    assert isinstance(events[-1], scan_mod.ScanFinished) and not events[-1].cancelled
    assert not done & set(failed)
    assert set(made) <= done | set(failed), sorted(set(made) - done - set(failed))[:10]
    for name, reason in failed.items():
        assert reason.strip() and "Traceback" not in reason and len(reason) < 300, (name, reason)
    for name, kind in made.items():
        if kind == "valid":
            assert name in done, (name, failed.get(name))
        if kind in ("empty", "garbage", "absurd rate", "absurd channels", "dangling", "link loop", "fifo"):
            assert name in failed, (name, kind)
    if os.geteuid() != 0:
        assert "permission denied" in failed["locked.wav"]
        assert kinds["locked.wav"] == FailureKind.UNREADABLE
    # Each failure is sorted where it happened, and none is an unexpected error.
    expected = {"empty": {FailureKind.EMPTY}, "garbage": {FailureKind.NOT_AUDIO},
                "absurd rate": {FailureKind.NOT_AUDIO}, "absurd channels": {FailureKind.NOT_AUDIO},
                "fifo": {FailureKind.UNREADABLE}, "dangling": {FailureKind.UNREADABLE},
                "link loop": {FailureKind.UNREADABLE},
                "truncated": {FailureKind.TRUNCATED, FailureKind.NOT_AUDIO, FailureKind.TOO_SHORT},
                "bitflip": {FailureKind.TRUNCATED, FailureKind.NOT_AUDIO, FailureKind.TOO_SHORT}}
    for name, kind in kinds.items():
        assert isinstance(kind, FailureKind) and kind != FailureKind.OTHER, (name, kind, failed[name])
        if made.get(name) in expected:
            assert kind in expected[made[name]], (name, made[name], kind, failed[name])
    assert FailureKind.TRUNCATED in kinds.values()
    assert open_fds() <= fds_before, "file handles leaked"
    # (After the count: a read keeps its read-only connection open for the next read.)
    stored = {os.path.relpath(t.path, root): t.error_kind for t in library.tracks(status="failed")}
    assert stored and all(kinds[name] == kind for name, kind in stored.items())
    assert elapsed < 300
    stats = library.stats()
    assert stats["done"] == len(done) and stats["pending"] == 0
