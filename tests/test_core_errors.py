"""One error base, failure kinds, concurrent readers, pruning other encoders' vectors, the runtime module.

Real SQLite files, real audio and real Keras encoders throughout."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audio_factory import tone, write
from musicrec_gui import cli
from musicrec_gui.core import audio, runtime
from musicrec_gui.core import library as library_mod
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings, ConfigError, FeatureConfig
from musicrec_gui.core.encoder import EncoderError, read_encoder_config
from musicrec_gui.core.errors import RETRIED_KINDS, FailureKind, MusicrecError
from musicrec_gui.core.library import FileIdentity, Library, LibraryError, Track
from musicrec_gui.core.output import OutputRefused
from musicrec_gui.core.playlist import PlaylistError, display_name, playlist_title, write_m3u8

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


# -- 1. one error base ---------------------------------------------------------------------------
def test_every_expected_error_is_a_musicrec_error(tmp_path):
    caught: list[MusicrecError] = []
    for action in (
        lambda: Library(tmp_path),  # a folder
        lambda: audio.load_audio(tmp_path / "missing.wav"),
        lambda: read_encoder_config(tmp_path / "none.json"),
        lambda: AnalysisSettings(mode="loud"),
        lambda: FeatureConfig.from_dict({"sample_rate": "fast"}),
        lambda: write_m3u8(tmp_path / "x.txt", [], title="t"),
        lambda: write_m3u8(tmp_path / "x.m3u8", [Track(1, "a\nb.ogg", 1, 1, "t", "", "", 0.0, "done", "")], title="t"),
    ):
        with pytest.raises(MusicrecError) as info:
            action()
        caught.append(info.value)
    kinds = [type(err) for err in caught]
    assert kinds[:2] == [library_mod.NotALibraryError, audio.AudioError]
    assert issubclass(kinds[2], EncoderError) and kinds[3:5] == [ConfigError, ConfigError]
    assert kinds[5:] == [OutputRefused, PlaylistError]
    # Those that were ValueErrors still are, for callers that caught them so.
    assert all(isinstance(err, ValueError) for err in caught[3:])
    assert all(str(err).strip() for err in caught)
    assert issubclass(cli.CliError, MusicrecError) and issubclass(library_mod.LibraryBusyError, MusicrecError)


def test_the_cli_prints_any_musicrec_error_in_one_line(tmp_path, capsys):
    assert cli.main(["--library", str(tmp_path), "info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("musicrec: error: ") and err.count("\n") == 1 and "Traceback" not in err


# -- 2. failure kinds ----------------------------------------------------------------------------
def kind_of(path, **kwargs) -> FailureKind:
    with pytest.raises(audio.AudioError) as info:
        audio.load_audio(path, **kwargs)
    assert isinstance(info.value.kind, FailureKind)
    return info.value.kind


def test_failure_kinds_are_decided_where_the_file_fails(tmp_path):
    good = write(tmp_path / "good.flac", tone(20.0), 22050)
    data = good.read_bytes()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "page.mp3").write_bytes(b"<html>not audio</html>" * 50)
    (tmp_path / "cut.flac").write_bytes(data[: int(len(data) * 0.99)])  # the last frame cut in half
    write(tmp_path / "no_samples.wav", np.zeros(0, np.float32), 22050)
    os.mkfifo(tmp_path / "pipe.ogg")
    assert kind_of(tmp_path / "empty.wav") == FailureKind.EMPTY == "empty"
    assert kind_of(tmp_path / "page.mp3") == FailureKind.NOT_AUDIO
    assert kind_of(tmp_path / "cut.flac") == FailureKind.TRUNCATED
    assert kind_of(tmp_path / "no_samples.wav") == FailureKind.TOO_SHORT
    assert kind_of(tmp_path / "pipe.ogg") == FailureKind.UNREADABLE
    assert kind_of(tmp_path / "gone.ogg") == FailureKind.VANISHED
    assert kind_of(good, time_limit=1e-9) == FailureKind.TIMED_OUT
    assert RETRIED_KINDS == {"timed_out", "vanished", "changed"}
    assert FailureKind.parse("timeout") is FailureKind.TIMED_OUT and FailureKind.parse("??") is FailureKind.OTHER
    assert f"{FailureKind.TRUNCATED}" == "truncated" and FailureKind.TRUNCATED.label == "damaged or truncated"


def test_scan_events_the_library_and_the_cli_carry_the_kind(music_dir, tmp_path, tiny_encoder, tiny_encoder_path,
                                                             capsys):
    library = Library(tmp_path / "lib.sqlite3")
    events = list(scan_mod.scan(music_dir, library=library, encoder=tiny_encoder))
    kinds = {Path(e.path).name: e.kind for e in events if isinstance(e, scan_mod.TrackFailed)}
    assert kinds == {"empty.flac": "empty", "not_audio.mp3": "not_audio", "text.wav": "not_audio",
                     "truncated.ogg": "truncated",  # its first 200 bytes: an Ogg header, cut off
                     "pipe.wav": "unreadable", "dangling_link.ogg": "unreadable"}
    assert all(isinstance(k, FailureKind) for k in kinds.values())
    stored = {Path(t.path).name: t.error_kind for t in library.tracks(status="failed")}
    assert stored == {n: k for n, k in kinds.items() if n not in ("pipe.wav", "dangling_link.ogg")}
    keyed = library.tracks(encoder_key=tiny_encoder.key, analysis_key=AnalysisSettings().key)
    assert {Path(t.path).name: t.error_kind for t in keyed if t.status == "failed"} == stored
    assert all(t.error_kind is None for t in keyed if t.status != "failed")
    library.close()
    assert cli.main(["--library", str(tmp_path / "lib.sqlite3"), "--encoder", str(tiny_encoder_path), "info"]) == 0
    out = capsys.readouterr().out
    assert "(empty file) " in out and "empty.flac: empty file (0 bytes)" in out


# -- the schema-2 library of the release before this one ----------------------------------------
def test_a_schema_2_library_upgrades_keeping_its_tracks_vectors_and_failures(tmp_path, capsys):
    """tests/data/library-schema2.sqlite3 was written by the schema-2 code (tests/data/make_library_schema2.py)."""
    path = tmp_path / "old.sqlite3"
    shutil.copy(DATA / "library-schema2.sqlite3", path)
    old, new = "old-enc-1-aaaaaaaaaaaa-bbbbbbbb", "new-enc-2-cccccccccccc-dddddddd"
    with Library(path, recover=False) as library:
        assert library.recovered_from is None
        assert library._conn.execute("PRAGMA user_version").fetchone()[0] == library_mod.SCHEMA_VERSION == 3
        tracks = {Path(t.path).name: t for t in library.tracks()}
        assert [tracks[n].id for n in ("one.ogg", "two.flac", "bad.mp3", "slow.wav", "three.ogg", "new.mp3",
                                       "empty.wav")] == [1, 2, 3, 4, 5, 6, 7]
        assert {n: (t.status, t.error_kind) for n, t in tracks.items()} == {
            "one.ogg": ("done", None), "two.flac": ("done", None), "three.ogg": ("done", None),
            "bad.mp3": ("failed", "not_audio"), "slow.wav": ("failed", "timed_out"),  # was "timeout"
            "new.mp3": ("pending", None), "empty.wav": ("failed", "empty")}
        assert tracks["three.ogg"].missing and tracks["empty.wav"].error == "the file is empty (0 bytes)"
        ids, vectors = library.vectors(encoder_key=old, analysis_key="excerpt30")
        assert list(ids) == [1, 2, 5] and vectors.shape == (3, 32)
        ids, vectors = library.vectors(encoder_key=new, analysis_key="spread8")
        assert list(ids) == [1, 2] and vectors.shape == (2, 16)
        np.testing.assert_allclose(library.tag_probabilities(1, encoder_key=new, analysis_key="spread8"),
                                   [0.1, 0.9, 0.5])
        assert library.slice_vectors(1, encoder_key=old, analysis_key="excerpt30")[0].shape == (3, 32)
        assert library.get_meta("last_folder") == "/music"
        found = [FileIdentity(t.path, t.size, t.mtime_ns) for t in tracks.values()]
        plan = library.plan_scan(found, encoder_key=new, analysis_key="spread8")
        # The time-out is tried again (as before the rename); the other failures wait.
        assert sorted(Path(t.path).name for t in plan.todo) == ["new.mp3", "slow.wav", "three.ogg"]
        assert plan.cached == 2 and plan.failed == 2
        assert [u.vectors for u in library.vector_usage()] == [2, 3]


# -- 3. readers have connections of their own ----------------------------------------------------
def test_a_read_on_another_thread_goes_on_while_a_write_is_held_open(tmp_path):
    path = tmp_path / "lib.sqlite3"
    library = Library(path)
    library.plan_scan([FileIdentity("/music/a.ogg", 1, 1)], encoder_key="e", analysis_key="a")
    holding, release = threading.Event(), threading.Event()

    def writer():
        with library._writing() as conn:  # the scan's write path: the owner connection, under its lock
            conn.execute("UPDATE tracks SET title = 'half-written'")
            conn.execute("INSERT INTO tracks (path, size, mtime_ns) VALUES (x'2f622e6f6767', 2, 2)")
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        seen: dict = {}

        def reader():
            start = time.monotonic()
            seen["tracks"] = library.tracks()
            seen["stats"] = library.stats()
            seen["seconds"] = time.monotonic() - start

        other = threading.Thread(target=reader)
        other.start()
        other.join(10)
        assert not other.is_alive(), "the read waited for the write"
        assert seen["seconds"] < 5
        # It sees the last committed state, never half a write.
        assert [t.title for t in seen["tracks"]] == ["a"] and seen["stats"]["tracks"] == 1
    finally:
        release.set()
        thread.join(10)
    assert [t.title for t in library.tracks()] == ["half-written", ""]  # committed, seen by the next read
    library.close()


def test_close_is_idempotent_from_any_thread_and_leaves_only_the_library(tmp_path):
    path = tmp_path / "lib.sqlite3"
    library = Library(path)
    library.plan_scan([FileIdentity(f"/music/{i}.ogg", 1, 1) for i in range(20)], encoder_key="e", analysis_key="a")
    results = []
    barrier = threading.Barrier(6)

    def reader():
        barrier.wait()
        results.append(len(library.tracks()))

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [20] * 6
    assert len(library._idle_readers) <= library_mod.MAX_IDLE_READERS
    closer = threading.Thread(target=library.close)
    closer.start()
    closer.join(10)
    library.close()
    assert library.closed
    with pytest.raises(LibraryError, match="was closed"):
        library.tracks()
    with pytest.raises(LibraryError, match="was closed"):
        library.set_meta("x", "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib.sqlite3"]  # the WAL was checkpointed and removed


def test_read_connections_are_read_only_and_refuse_a_replaced_file(tmp_path):
    path = tmp_path / "lib.sqlite3"
    library = Library(path)
    with library._reading() as conn:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO meta VALUES ('x', 'y')")
    library._idle_readers.clear()  # the next read opens a new connection
    aside = tmp_path / "aside.sqlite3"
    os.rename(path, aside)
    shutil.copy(aside, path)
    with pytest.raises(LibraryError, match="moved or replaced"):
        library.stats()
    library.close()


# -- 4. the vectors of encoders no longer used ---------------------------------------------------
def test_info_shows_space_per_encoder_and_prune_vectors_deletes_the_others(music_dir, tmp_path, tiny_encoder_path,
                                                                            capsys):
    from conftest import build_tiny_encoder

    other_path = tmp_path / "other" / "other.keras"
    build_tiny_encoder(other_path, seed=8)
    lib = tmp_path / "lib.sqlite3"
    base = ["--library", str(lib), "-q"]
    assert cli.main(base + ["--encoder", str(other_path), "scan", str(music_dir)]) == 0
    assert cli.main(base + ["--encoder", str(tiny_encoder_path), "scan", str(music_dir)]) == 0
    capsys.readouterr()
    keep, drop = read_encoder_config(tiny_encoder_path).key, read_encoder_config(other_path).key
    with Library(lib) as library:
        paths_before = [(t.id, t.path) for t in library.tracks()]
        usage = {u.encoder_key: u for u in library.vector_usage()}
        n_slices = library._conn.execute("SELECT sum(n_slices) FROM vectors WHERE encoder_key = ?",
                                         (keep,)).fetchone()[0]
    assert usage[keep].vectors == usage[drop].vectors == 12 and usage[keep].failures == 4
    # Each song's slice vectors and its song vector, 16 float32 each.
    assert usage[keep].bytes == (n_slices + 12) * 16 * 4
    size = cli._size(usage[drop].bytes)
    assert re.fullmatch(r"\d+\.\d kB", size)

    assert cli.main(base + ["--encoder", str(tiny_encoder_path), "info"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("vectors:") and keep in l)
    assert line.startswith(f"vectors:  12 songs, {cli._size(usage[keep].bytes)}, 4 failed for ")
    assert line.endswith("(in use)")
    assert f"{size} belong to other encoders; 'musicrec prune-vectors' deletes them." in out

    assert cli.main(base + ["--encoder", str(tiny_encoder_path), "prune-vectors"]) == 0  # without --yes: a dry run
    out = capsys.readouterr().out
    assert f"other:    {drop}" in out and f"would delete 12 song vectors ({size}) and 4 failure records" in out
    with Library(lib) as library:
        assert len(library.vector_usage()) == 2

    assert cli.main(base + ["--encoder", str(tiny_encoder_path), "prune-vectors", "--yes", "--compact"]) == 0
    assert f"deleted 12 song vectors ({size}) and 4 failure records of 1 other encoder" in capsys.readouterr().out
    with Library(lib) as library:
        assert [u.encoder_key for u in library.vector_usage()] == [keep]
        assert [(t.id, t.path) for t in library.tracks()] == paths_before  # the file list is kept
        assert library.stats()["done"] == 12 and library.stats()["failed"] == 4
        assert library._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert cli.main(base + ["--encoder", str(tiny_encoder_path), "prune-vectors", "--yes"]) == 0
    assert "nothing to delete" in capsys.readouterr().out
    assert cli.main(base + ["--encoder", str(tiny_encoder_path), "scan", str(music_dir)]) == 0
    assert "12 already analysed, 2 to analyse, 4 failed before" in capsys.readouterr().err  # 2: the pipe and the link
    # The pruned encoder's songs go back to pending for it: it analyses them again if used again.
    with Library(lib) as library:
        plan = library.plan_scan([FileIdentity(t.path, t.size, t.mtime_ns) for t in library.tracks()],
                                 encoder_key=drop, analysis_key=AnalysisSettings().key)
        assert plan.cached == 0 and len(plan.todo) == 16


def test_prune_vectors_needs_an_encoder_to_keep(tmp_path, capsys):
    lib = tmp_path / "lib.sqlite3"
    Library(lib).close()
    assert cli.main(["--library", str(lib), "--encoder", str(tmp_path / "none.keras"), "prune-vectors", "--yes"]) == 1
    assert "nothing was deleted" in capsys.readouterr().err


# -- 5. one runtime module -----------------------------------------------------------------------
def test_only_the_runtime_module_reads_the_environment():
    readers = []
    for path in sorted((ROOT / "musicrec_gui").rglob("*.py")):
        if "gui" in path.relative_to(ROOT / "musicrec_gui").parts[:1] or path.name == "runtime.py":
            continue
        if re.search(r"os\.environ|os\.getenv|TF_CPP_MIN_LOG_LEVEL", path.read_text(encoding="utf-8")):
            readers.append(str(path.relative_to(ROOT)))
    assert readers == []


def test_runtime_reads_musicrec_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSICREC_LIBRARY", str(tmp_path / "x.sqlite3"))
    assert runtime.library_override() == tmp_path / "x.sqlite3" == library_mod.default_library_path()
    monkeypatch.setenv("MUSICREC_LIBRARY", "")
    assert runtime.library_override() is None and library_mod.default_library_path().name == "library.sqlite3"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("MUSICREC_DEBUG", "1")
    runtime.quiet_tensorflow()
    assert runtime.debug() and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    monkeypatch.setenv("MUSICREC_DEBUG", "0")
    runtime.quiet_tensorflow()
    assert not runtime.debug() and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user's own choice is kept
    runtime.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


# -- 6. one playlist title -----------------------------------------------------------------------
def test_the_playlist_title_is_the_same_for_the_app_and_the_cli():
    song = Track(1, "/m/a.ogg", 1, 1, "Blue", "Ann", "", 0.0, "done", "")
    assert playlist_title(song) == "Songs like Ann – Blue" and display_name(song) == "Ann – Blue"
    assert playlist_title(Track(2, "/m/b.ogg", 1, 1, "Solo", "", "", 0.0, "done", "")) == "Songs like Solo"
