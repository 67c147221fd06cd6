"""End-to-end: real files → scan → library → recommendations → CLI."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.encoder import read_encoder_config
from musicrec_gui.core.library import Library
from musicrec_gui.core.recommend import VectorIndex
from musicrec_gui import cli


def run_scan(folder, library, encoder, **kwargs):
    events = list(scan_mod.scan(folder, library=library, encoder=encoder, **kwargs))
    assert isinstance(events[-1], scan_mod.ScanFinished)
    return events


def test_scan_lists_every_failure_and_keeps_going(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    events = run_scan(music_dir, library, tiny_encoder)
    failed = {os.path.basename(e.path): e.reason for e in events if isinstance(e, scan_mod.TrackFailed)}
    done = {os.path.basename(e.track.path) for e in events if isinstance(e, scan_mod.TrackDone)}
    assert set(failed) == {"truncated.ogg", "not_audio.mp3", "empty.flac", "text.wav", "dangling_link.ogg",
                           "pipe.wav"}
    assert "empty" in failed["empty.flac"]
    assert "named pipe" in failed["pipe.wav"]
    assert "not an audio file that MP3 can read (it is a web page)" in failed["not_audio.mp3"]
    assert all(reason and "Traceback" not in reason for reason in failed.values())
    # Every good format, silence, a 0.1-s clip and odd names all end as done.
    for name in ["low_drone.wav", "low_drone_2.flac", "bright_pulse.ogg", "bright_pulse_2.mp3", "noise_wash.opus",
                 "noise_wash_2.m4a", "mid_chord.aiff", "mid_chord_2.wav", "silence.wav", "tiny_clip.flac",
                 "Ünïcødé ♫ 曲 – ‘quotes’.wav", os.fsdecode(b"latin1_\xe9t\xe9.wav")]:
        assert name in done, name
    finished = events[-1]
    assert finished.analysed == len(done) and finished.failed == len(failed) and not finished.cancelled
    stats = library.stats()
    assert stats["done"] == len(done) and stats["failed"] == len(failed) - 2  # the pipe and the dangling link never enter it
    tags = {t.title: t for t in library.tracks(status="done")}
    assert "Ünïcødé ♫ 曲 – ‘quotes’" in tags


def test_rescan_recomputes_nothing_then_only_changes(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    run_scan(music_dir, library, tiny_encoder)
    mtimes = {p: p.stat().st_mtime_ns for p in music_dir.rglob("*") if p.is_file() and not p.is_symlink()}
    second = run_scan(music_dir, library, tiny_encoder)
    started = next(e for e in second if isinstance(e, scan_mod.ScanStarted))
    assert started.to_analyse == 2  # the pipe and the dangling link cannot even be stat'ed as files
    assert second[-1].analysed == 0
    # The scan never touched a music file.
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}

    changed = music_dir / "low_drone.wav"
    from audio_factory import tone, write
    write(changed, tone(5.0, freqs=(880.0,)), 22050)
    os.remove(music_dir / "mid_chord.aiff")
    third = run_scan(music_dir, library, tiny_encoder)
    started = next(e for e in third if isinstance(e, scan_mod.ScanStarted))
    assert started.pruned == 1
    assert [os.path.basename(e.track.path) for e in third if isinstance(e, scan_mod.TrackDone)] == ["low_drone.wav"]
    assert library.track_by_path(str(music_dir / "mid_chord.aiff")) is None


def test_new_encoder_recomputes_vectors_not_file_list(music_dir, tmp_path, tiny_encoder):
    from conftest import build_tiny_encoder
    from musicrec_gui.core.encoder import Encoder

    library = Library(tmp_path / "lib.sqlite3")
    run_scan(music_dir, library, tiny_encoder)
    ids_before = {t.path: t.id for t in library.tracks()}
    other = Encoder(build_tiny_encoder(tmp_path / "other.keras", seed=11) and tmp_path / "other.keras")
    assert other.key != tiny_encoder.key
    events = run_scan(music_dir, library, other)
    assert events[-1].analysed == len([t for t in ids_before.values()]) - library.stats()["failed"]
    assert {t.path: t.id for t in library.tracks()} == ids_before
    assert len(library.vectors(encoder_key=tiny_encoder.key, analysis_key=AnalysisSettings().key)[0]) == events[-1].analysed


def test_cancel_between_files_keeps_finished_work(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    gen = scan_mod.scan(music_dir, library=library, encoder=tiny_encoder)
    done = 0
    for event in gen:
        if isinstance(event, scan_mod.TrackDone):
            done += 1
            if done == 3:
                gen.close()
                break
    assert library.stats()["done"] == 3
    events = run_scan(music_dir, library, tiny_encoder)
    assert events[-1].analysed == 12 - 3


def test_recommendations_find_the_sibling_recording(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    run_scan(music_dir, library, tiny_encoder)
    index = VectorIndex.from_library(library, encoder_key=tiny_encoder.key, analysis_key=AnalysisSettings().key)
    anchor = library.track_by_path(str(music_dir / "bright_pulse.ogg"))
    results = index.similar(anchor.id, k=3)
    assert len(results) == 3 and all(r.track.id != anchor.id for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert os.path.basename(results[0].track.path) == "bright_pulse_2.mp3"


def test_cli_scan_similar_embed_playlist_info(music_dir, tmp_path, tiny_encoder_path, capsys):
    lib = tmp_path / "cli.sqlite3"
    base = ["--library", str(lib), "--encoder", str(tiny_encoder_path), "-q"]
    assert cli.main(base + ["scan", str(music_dir)]) == 0
    err = capsys.readouterr().err
    assert "failed 6" in err and "not_audio.mp3: not an audio file that MP3 can read" in err

    assert cli.main(base + ["similar", str(music_dir / "low_drone.wav"), "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("songs like: low_drone") and len(out) == 5 and "song pairs" in out[1]
    # The tiny test encoder is untrained: the other drone is near, though silence may be nearer.
    assert [line.split()[0] for line in out[2:]] == ["1", "2", "3"] and "low_drone_2.flac" in "".join(out[2:])
    percents = [int(line.split()[1]) for line in out[2:]]
    assert all(line.split()[2] == "%" for line in out[2:]) and 100 >= percents[0] >= percents[1] >= percents[2] >= 0

    assert cli.main(base + ["similar", "bright_pulse_2"]) == 0
    assert "bright_pulse.ogg" in capsys.readouterr().out

    npz = tmp_path / "vectors.npz"
    assert cli.main(base + ["embed", str(music_dir), "--out", str(npz)]) == 0
    data = np.load(npz, allow_pickle=False)
    assert data["vectors"].shape == (12, 16) and len(data["files"]) == 12
    audible = [i for i, f in enumerate(data["files"]) if not f.endswith("silence.wav")]
    np.testing.assert_allclose(np.linalg.norm(data["vectors"][audible], axis=1), 1.0, rtol=1e-5)
    # The song vectors themselves, scaled to unit length: not centred on the rest of the library.
    with Library(lib) as library:
        track = library.track_by_path(str(music_dir / "low_drone.wav"))
        ids, stored = library.vectors(encoder_key=read_encoder_config(tiny_encoder_path).key,
                                      analysis_key=AnalysisSettings().key)
    row = list(data["files"]).index(str(music_dir / "low_drone.wav"))
    expected = stored[list(ids).index(track.id)]
    np.testing.assert_allclose(data["vectors"][row], expected / np.linalg.norm(expected), rtol=1e-5)

    m3u = tmp_path / "out" / "like.m3u8"
    assert cli.main(base + ["playlist", "mid_chord_2", "-k", "3", "-o", str(m3u)]) == 0
    lines = m3u.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and sum(1 for l in lines if l.startswith("#EXTINF")) == 4
    assert lines[5].endswith("mid_chord_2.wav")

    assert cli.main(base + ["info"]) == 0
    out = capsys.readouterr().out
    assert "12 analysed, 4 failed" in out and "tiny-test" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["scan", "/no/such/folder"], "does not exist"),
        (["similar", "no song of this name"], "no analysed song matches"),
        (["similar", "x", "-k", "0"], "-k must be at least 1"),
        (["playlist", "x", "-o", "out.mp3"], "refusing to write a playlist"),
        (["embed", ".", "--out", "vectors.txt"], "must end in .npz"),
    ],
)
def test_cli_errors_are_clear_and_nonzero(argv, message, tmp_path, tiny_encoder_path, capsys):
    code = cli.main(["--library", str(tmp_path / "l.sqlite3"), "--encoder", str(tiny_encoder_path)] + argv)
    assert code != 0
    assert message in capsys.readouterr().err


def test_cli_refuses_a_file_as_folder_and_a_missing_encoder(tmp_path, capsys):
    song = tmp_path / "a.wav"
    song.write_bytes(b"x")
    assert cli.main(["--library", str(tmp_path / "l.sqlite3"), "--encoder", str(tmp_path / "none.keras"),
                     "scan", str(tmp_path)]) == 1
    assert "no encoder at" in capsys.readouterr().err
    assert cli.main(["--library", str(tmp_path / "l.sqlite3"), "scan", str(song)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_cli_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["similar"])
    assert exc.value.code == 2


def test_unreadable_library_gives_clear_cli_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["--library", str(blocker / "lib.sqlite3"), "info"]) == 1
    assert "Cannot create the library folder" in capsys.readouterr().err


def test_a_scan_of_listed_files_analyses_them_and_forgets_nothing(good_library_dir, tmp_path, tiny_encoder):
    """What ``beet musicrecscan`` does: a list of files, not a folder; other songs of the library stay."""
    library = Library(tmp_path / "lib.sqlite3")
    run_scan(good_library_dir, library, tiny_encoder)
    everything = {t.path for t in library.tracks(status="done")}
    listed = sorted(good_library_dir.glob("*.wav"))[:1] + [tmp_path / "gone.flac"]
    events = run_scan(None, library, tiny_encoder, files=listed, prune=True)
    started = next(e for e in events if isinstance(e, scan_mod.ScanStarted))
    assert started.total == 2 and started.cached == 1 and started.pruned == 0 and started.missing == 0
    failed = [e for e in events if isinstance(e, scan_mod.TrackFailed)]
    assert [os.path.basename(e.path) for e in failed] == ["gone.flac"] and "no such file" in failed[0].reason
    assert {t.path for t in library.tracks(status="done")} == everything
    new = tmp_path / "new.wav"
    shutil.copy(sorted(good_library_dir.glob("*.wav"))[0], new)
    events = run_scan(None, library, tiny_encoder, files=[new])
    assert events[-1].analysed == 1 and library.track_by_path(str(new)).status == "done"
    library.close()


def test_an_interrupt_that_a_c_extension_turned_into_an_import_error_is_still_an_interrupt():
    """SIGTERM landing while scipy's C extension initialised (seen in CI) came back as "ImportError:
    initialization failed" raised from the interrupt; the CLI must stop as for the interrupt itself."""
    from musicrec_gui import cli

    def chained(interrupt):
        try:
            raise interrupt
        except KeyboardInterrupt as err:
            try:
                raise ImportError("initialization failed") from err  # as pybind11 reports it
            except ImportError as wrapped:
                return wrapped

    terminated = chained(cli._Terminated())
    assert isinstance(cli._interrupt_behind(terminated), cli._Terminated)
    assert type(cli._interrupt_behind(chained(KeyboardInterrupt()))) is KeyboardInterrupt
    assert cli._interrupt_behind(ImportError("no module named x")) is None
    try:
        try:
            raise ValueError("first")
        except ValueError:
            raise ImportError("while handling")  # implicit context, no interrupt in it
    except ImportError as unrelated:
        assert cli._interrupt_behind(unrelated) is None
