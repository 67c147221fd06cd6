"""The library never loses or touches what is not ours: wrong --library paths, busy, read-only and
full disks, concurrent creation, failures keyed like vectors, unmounted drives, symlinked folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from musicrec_gui import cli
from musicrec_gui.core import library as library_mod
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.library import Library, LibraryError

ROOT = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@contextlib.contextmanager
def small_disk(where: Path, size: str = "2m"):
    """A real, tiny tmpfs (needs root): a disk that fills up, or is remounted read-only."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount to make a small disk")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
    return filler


def scanned(folder, library, encoder, **kwargs):
    events = list(scan_mod.scan(folder, library=library, encoder=encoder, **kwargs))
    assert isinstance(events[-1], scan_mod.ScanFinished)
    return events


def started(events) -> scan_mod.ScanStarted:
    return next(e for e in events if isinstance(e, scan_mod.ScanStarted))


# -- 2. a mistyped --library --------------------------------------------------------------------
def test_a_mistyped_library_path_is_refused_and_left_untouched(tmp_path, music_dir, capsys):
    song = music_dir / "low_drone.wav"
    other_db = tmp_path / "firefox.sqlite"
    conn = sqlite3.connect(other_db)
    conn.execute("CREATE TABLE moz_places (url TEXT)")
    conn.execute("INSERT INTO moz_places VALUES ('https://example.org')")
    conn.commit()
    conn.close()
    empty_db = tmp_path / "photos.db"  # another program's database, still without tables
    conn = sqlite3.connect(empty_db)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    empty_notes = tmp_path / "notes"
    empty_notes.touch()
    text = tmp_path / "thesis.docx"
    text.write_bytes(b"PK\x03\x04 not a database" * 50)
    diary = tmp_path / "diary.md"
    diary.touch()
    links = tmp_path / "links"
    links.mkdir()
    (links / "to-diary.sqlite3").symlink_to(diary)  # a link named like a library, to a user's file
    (links / "into-music.sqlite3").symlink_to(music_dir / "new_song.wav")  # dangling, into the music
    os.link(diary, links / "hard.sqlite3")  # an empty file that is also a user's file
    before_music = tree_digest(music_dir)
    before = {p: digest(p) for p in (song, other_db, empty_db, empty_notes, text, diary)}
    for target, expected in [(music_dir, "is a folder"), (song, "audio file"), (other_db, "another program"),
                             (empty_db, "another program"), (empty_notes, "is empty and is not a musicrec library"),
                             (text, "not an SQLite database"), (Path("/dev/null"), "not a regular file"),
                             (tmp_path / "new.flac", "audio file"), (links / "to-diary.sqlite3", "is empty"),
                             (links / "into-music.sqlite3", "audio file"), (links / "hard.sqlite3", "is empty"),
                             (str(tmp_path / "newdir") + "/", "names a folder")]:
        with pytest.raises(library_mod.NotALibraryError, match=expected):
            Library(target)
        assert cli.main(["--library", str(target), "info"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("musicrec: error:") and expected in err, err
    (links / "dangling.sqlite3").symlink_to(tmp_path / "nowhere.sqlite3")
    with pytest.raises(library_mod.NotALibraryError, match="does not exist"):
        Library(links / "dangling.sqlite3")
    assert {p: digest(p) for p in before} == before
    assert tree_digest(music_dir) == before_music
    assert not (tmp_path / "new.flac").exists() and not (tmp_path / "newdir").exists()
    assert not (tmp_path / "nowhere.sqlite3").exists()
    assert not [n for n in siblings(other_db) if "broken" in n]
    assert Path("/dev/null").is_char_device()


def test_a_newer_librarys_pending_wal_is_not_checkpointed(tmp_path):
    path = tmp_path / "lib.sqlite3"
    Library(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("PRAGMA user_version = 99")
    writer.execute("INSERT INTO meta VALUES ('from', 'the future')")
    # The newer musicrec is killed with its changes still in the WAL.
    child = subprocess.run([sys.executable, "-c", "import os, sqlite3, sys\n"
                            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                            "c.execute('PRAGMA wal_autocheckpoint = 0')\n"
                            "c.execute(\"INSERT INTO meta VALUES ('more', 'x')\")\n"
                            "os._exit(0)\n", str(path)], check=True)
    del child
    # The database and its WAL (the -shm index is shared memory that every reader marks).
    data = [path, tmp_path / "lib.sqlite3-wal"]
    writer_files = {p.name: digest(p) for p in data}
    with pytest.raises(LibraryError, match="newer musicrec"):
        Library(path)
    assert {p.name: digest(p) for p in data} == writer_files
    writer.close()


# -- 1. only a corrupt library of ours is set aside, never onto an earlier one -------------------
def test_newer_schema_is_left_exactly_as_it_is(tmp_path, capsys):
    path = tmp_path / "lib.sqlite3"
    Library(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = digest(path)
    for _ in range(3):
        assert cli.main(["--library", str(path), "info"]) == 1
        assert "upgrade musicrec" in capsys.readouterr().err
    assert digest(path) == before and siblings(path) == ["lib.sqlite3"]


def test_a_busy_library_waits_then_says_so_and_is_not_moved(tmp_path, monkeypatch, capsys):
    path = tmp_path / "lib.sqlite3"
    with Library(path) as library:
        library.set_meta("last_folder", "/music")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(library_mod, "BUSY_TIMEOUT", 0.3)
    try:
        start = time.monotonic()
        with pytest.raises(library_mod.LibraryBusyError, match="in use by another program"):
            Library(path)
        assert time.monotonic() - start < 5
        assert cli.main(["--library", str(path), "info"]) == 1
        err = capsys.readouterr().err
        assert "in use by another program" in err and err.count("\n") == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not [n for n in siblings(path) if "broken" in n]
    assert Library(path).get_meta("last_folder") == "/music"


def test_corrupt_library_of_ours_is_set_aside_under_a_fresh_name_each_time(tmp_path):
    path = tmp_path / "lib.sqlite3"
    asides = []
    for round_ in range(3):  # within one second: the timestamped names must not collide
        with Library(path) as library:
            library.set_meta("round", str(round_))
        data = bytearray(path.read_bytes())
        data[100:4096] = os.urandom(3996)  # page 1's schema, after the header with our application id
        data[4096:] = os.urandom(len(data) - 4096)
        path.write_bytes(bytes(data))
        library = Library(path)
        assert library.recovered_from is not None
        asides.append(library.recovered_from)
        library.close()
    assert len(set(asides)) == 3 and all(a.exists() for a in asides)
    contents = {digest(a) for a in asides}
    assert len(contents) == 3, "no damaged library overwrote an earlier one"


def test_read_only_library_gives_one_line_and_stays_as_it_is(tmp_path, music_dir, tiny_encoder_path, capsys):
    with small_disk(tmp_path / "disk", "4m") as disk:
        path = disk / "lib.sqlite3"
        assert cli.main(["--library", str(path), "--encoder", str(tiny_encoder_path), "-q", "scan",
                         str(music_dir)]) == 0
        capsys.readouterr()
        before = tree_digest(disk)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for args in (["info"], ["scan", str(music_dir)]):
            code = cli.main(["--library", str(path), "--encoder", str(tiny_encoder_path), "-q"] + args)
            err = capsys.readouterr().err
            assert code == 1 and "read-only" in err and "Traceback" not in err, err
        assert tree_digest(disk) == before


# -- 7. a full disk, at open and in the middle of a scan -----------------------------------------
def test_full_disk_never_costs_the_library(tmp_path, music_dir, good_library_dir, tiny_encoder_path, capsys):
    with small_disk(tmp_path / "disk", "3m") as disk:
        path = disk / "lib.sqlite3"
        half = tmp_path / "half"
        shutil.copytree(good_library_dir, half)
        for name in ["low_drone.wav", "bright_pulse.ogg", "mid_chord.aiff"]:
            (half / name).unlink()
        base = ["--library", str(path), "--encoder", str(tiny_encoder_path), "-q"]
        assert cli.main(base + ["scan", str(half)]) == 0
        capsys.readouterr()
        with Library(path) as library:
            done_before = library.stats()["done"]
        filler = fill(disk)
        # The scan of the whole folder meets the full disk: one line, exit 1, nothing lost.
        code = cli.main(base + ["scan", str(music_dir)])
        err = capsys.readouterr().err
        assert code == 1 and "musicrec: error:" in err and "Traceback" not in err, err
        assert "full" in err or "disk error" in err
        for _ in range(4):  # the original report: four 'info' runs on a full disk left "songs: 0"
            cli.main(base + ["info"])
            capsys.readouterr()
        with pytest.raises(LibraryError):
            Library(disk / "new.sqlite3")  # a new library on a full disk: a message, not a half file
        assert not [n for n in os.listdir(disk) if "broken" in n]
        filler.unlink()
        with Library(path, recover=False) as library:
            assert library.stats()["done"] >= done_before
            assert library._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ids, _ = library.vectors(encoder_key=library_key(tiny_encoder_path), analysis_key=AnalysisSettings().key)
            assert len(ids) == library.stats()["done"]
        assert cli.main(base + ["scan", str(music_dir)]) == 0


def library_key(encoder_path) -> str:
    from musicrec_gui.core.encoder import read_encoder_config

    return read_encoder_config(encoder_path).key


# -- 3. creating a new library from several processes at once ------------------------------------
@pytest.mark.parametrize("name", ["lib{}.sqlite3", "music-cache-{}"])
def test_concurrent_creation_of_a_new_library(tmp_path, name):
    code = ("import sys, time; from musicrec_gui.core.library import Library\n"
            "t = float(sys.argv[2])\n"
            "while time.time() < t: pass\n"
            "lib = Library(sys.argv[1]); lib.set_meta('x', '1'); print(lib.stats()['tracks']); lib.close()\n")
    failures = []
    for round_ in range(4):
        path = tmp_path / name.format(round_)
        go = time.time() + 1.5
        children = [subprocess.Popen([sys.executable, "-c", code, str(path), str(go)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        for child in children:
            out, err = child.communicate(timeout=60)
            if child.returncode != 0:
                failures.append(err.strip().splitlines()[-1])
        assert not [n for n in os.listdir(tmp_path) if "broken" in n]
    assert not failures, failures
    assert not [p.name for p in tmp_path.iterdir() if "musicrec-new" in p.name], "no temporary file is left"


# -- 4. failures keyed like vectors; time-outs retried; broken encoders; options -----------------
def test_failures_are_keyed_by_encoder_and_analysis(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    first = scanned(music_dir, library, tiny_encoder)
    failed = {Path(e.path).name for e in first if isinstance(e, scan_mod.TrackFailed)}
    assert "not_audio.mp3" in failed
    again = scanned(music_dir, library, tiny_encoder)
    assert started(again).to_analyse == 2 and started(again).failed_before == 4  # pipe + dangling: not tracks
    other = AnalysisSettings(mode="excerpt", excerpt_seconds=10)
    retried = scanned(music_dir, library, tiny_encoder, settings=other)
    names = {Path(e.path).name for e in retried if isinstance(e, scan_mod.TrackFailed)}
    assert "not_audio.mp3" in names, "a failure under one analysis says nothing of another"
    keyed = library.tracks(status="failed", encoder_key=tiny_encoder.key, analysis_key=other.key)
    assert "not_audio.mp3" in {Path(t.path).name for t in keyed}
    track = library.track_by_path(str(music_dir / "bad" / "truncated.ogg"))
    library.record_failure(track.id, "decoding ran past its time limit", encoder_key=tiny_encoder.key,
                           analysis_key=AnalysisSettings().key, kind="timeout")
    plan = library.plan_scan(library_mod_identities(music_dir), encoder_key=tiny_encoder.key,
                             analysis_key=AnalysisSettings().key)
    assert track.id in {t.id for t in plan.todo}, "a time-out is tried again on the next scan"
    retry = scanned(music_dir, library, tiny_encoder, retry_failed=True)
    assert started(retry).failed_before == 0
    assert "not_audio.mp3" in {Path(e.path).name for e in retry if isinstance(e, scan_mod.TrackFailed)}


def library_mod_identities(folder: Path):
    from musicrec_gui.core.audio import find_audio_files

    return [i for i in library_mod.iter_identities(find_audio_files(folder)) if isinstance(i, library_mod.FileIdentity)]


def test_an_encoder_that_outputs_nan_is_an_encoder_error_not_bad_songs(music_dir, tmp_path, capsys):
    import keras

    from musicrec_gui.core.config import FeatureConfig
    from musicrec_gui.core.encoder import EncoderConfig, save_encoder

    inputs = keras.Input((128, 128, 1))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(8)
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.full((1, 8), np.nan, np.float32), np.zeros(8, np.float32)])
    path = tmp_path / "nan.keras"
    save_encoder(model, path, EncoderConfig(name="nan", version="1", embedding_size=8, weights_sha256="",
                                            features=FeatureConfig()))
    library_path = tmp_path / "lib.sqlite3"
    code = cli.main(["--library", str(library_path), "--encoder", str(path), "-q", "scan", str(music_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "encoder" in err and "non-finite" in err, err
    with Library(library_path) as library:
        assert library._conn.execute("SELECT count(*) FROM failures").fetchone()[0] == 0
        assert library.stats()["done"] == 0


@pytest.mark.parametrize("option", [["--excerpt-seconds", "nan"], ["--excerpt-seconds", "1e-9"],
                                    ["--excerpt-seconds", "inf"], ["--excerpt-seconds", "-3"],
                                    ["scan", "--workers", "500"], ["scan", "--workers", "0"]])
def test_nonsense_options_are_usage_errors(option, tmp_path, capsys):
    argv = ["--library", str(tmp_path / "lib.sqlite3")] + (option + [str(tmp_path)] if option[0] == "scan"
                                                          else option + ["info"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "expected" in capsys.readouterr().err
    assert not (tmp_path / "lib.sqlite3").exists()


# -- 5. an unmounted drive keeps its cache --------------------------------------------------------
def test_rescanning_an_empty_mount_point_keeps_the_songs_as_missing(music_dir, tmp_path, tiny_encoder, capsys):
    library = Library(tmp_path / "lib.sqlite3")
    scanned(music_dir, library, tiny_encoder)
    done = library.stats()["done"]
    unplugged = tmp_path / "unplugged"
    music_dir.rename(unplugged)
    music_dir.mkdir()  # the bare mount point
    events = scanned(music_dir, library, tiny_encoder)
    assert started(events).pruned == 0 and started(events).missing == library.stats()["tracks"]
    assert library.stats()["done"] == done and library.stats()["missing"] == started(events).missing
    # A whole subtree gone while the rest is present: kept as missing too.
    music_dir.rmdir()
    unplugged.rename(music_dir)
    sub = music_dir / "sub_folder"
    sub.rename(tmp_path / "sub_away")
    events = scanned(music_dir, library, tiny_encoder)
    assert (started(events).pruned, started(events).missing, started(events).to_analyse) == (0, 1, 2)
    (tmp_path / "sub_away").rename(sub)
    events = scanned(music_dir, library, tiny_encoder)
    assert started(events).missing == 0 and started(events).cached == done
    assert library.stats()["missing"] == 0
    # Files gone from a folder that is otherwise present are forgotten; --prune forgets the rest.
    (music_dir / "low_drone.wav").unlink()
    assert started(scanned(music_dir, library, tiny_encoder)).pruned == 1
    shutil.rmtree(sub)
    library.close()
    assert cli.main(["--library", str(tmp_path / "lib.sqlite3"), "--encoder", str(tiny_encoder.model_path),
                     "scan", str(music_dir)]) == 0
    assert "kept as missing" in capsys.readouterr().err
    assert cli.main(["--library", str(tmp_path / "lib.sqlite3"), "--encoder", str(tiny_encoder.model_path),
                     "scan", "--prune", str(music_dir)]) == 0
    assert "1 removed files forgotten" in capsys.readouterr().err


# -- 10. a folder reached through a symbolic link is one folder ----------------------------------
def test_a_folder_reached_through_a_link_is_stored_once(music_dir, tmp_path, tiny_encoder):
    library = Library(tmp_path / "lib.sqlite3")
    link = tmp_path / "link-to-music"
    link.symlink_to(music_dir, target_is_directory=True)
    scanned(music_dir, library, tiny_encoder)
    count = library.stats()["tracks"]
    events = scanned(link, library, tiny_encoder)
    assert library.stats()["tracks"] == count and started(events).to_analyse == 2
    assert library.track_by_path(str(link / "low_drone.wav")) is not None
    assert len(library.tracks(under=link)) == count


# -- 7. a stored vector of the wrong length ------------------------------------------------------
def test_a_vector_of_the_wrong_length_is_one_line_and_a_rescan_heals_it(music_dir, tmp_path, tiny_encoder_path,
                                                                          capsys):
    path = tmp_path / "lib.sqlite3"
    base = ["--library", str(path), "--encoder", str(tiny_encoder_path), "-q"]
    assert cli.main(base + ["scan", str(music_dir)]) == 0
    conn = sqlite3.connect(path)
    conn.execute("UPDATE vectors SET vector = x'00000000' WHERE track_id = (SELECT min(track_id) FROM vectors)")
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert cli.main(base + ["similar", "bright_pulse_2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "musicrec scan" in err and "Traceback" not in err
    assert cli.main(base + ["scan", str(music_dir)]) == 0
    assert "analysed 1, " in capsys.readouterr().err, "the scan rewrote the damaged vector, and only it"
    assert cli.main(base + ["similar", "bright_pulse_2"]) == 0
    assert "songs like" in capsys.readouterr().out


def test_a_damaged_library_replaced_meanwhile_is_not_moved(tmp_path):
    path = tmp_path / "lib.sqlite3"
    Library(path).close()
    checked = os.open(path, os.O_RDONLY)  # the file this process found damaged
    try:
        path.unlink()
        Library(path).close()  # another process made a new, healthy library meanwhile
        assert library_mod._set_aside(path, checked) is None
    finally:
        os.close(checked)
    assert sorted(p.name for p in tmp_path.iterdir() if "broken" in p.name) == []
    with Library(path, recover=False) as library:
        assert library.stats()["tracks"] == 0


def test_when_the_fresh_library_cannot_be_made_the_user_hears_where_the_old_one_went(tmp_path):
    with small_disk(tmp_path / "disk", "512k") as disk:
        path = disk / "lib.sqlite3"
        with Library(path) as library:
            library.set_meta("x", "1")
        data = bytearray(path.read_bytes())
        data[100:] = os.urandom(len(data) - 100)
        path.write_bytes(bytes(data))
        filler = fill(disk)
        # Room to open and check the damaged file, not to build a new library beside it.
        os.truncate(filler, filler.stat().st_size - 40 * 1024)
        with pytest.raises(LibraryError, match="first moved to .*broken"):
            Library(path)
        filler.unlink()
        assert [p.name for p in disk.iterdir() if "broken" in p.name and not p.name.endswith(("-wal", "-shm"))]


# -- an existing library from the previous release --------------------------------------------------
def test_a_schema_1_library_upgrades_keeping_its_files_and_vectors(tmp_path, capsys):
    """tests/data/library-schema1.sqlite3 was written with the previous release's schema (SCHEMA_VERSION 1)."""
    path = tmp_path / "old.sqlite3"
    shutil.copy(Path(__file__).parent / "data" / "library-schema1.sqlite3", path)
    with Library(path, recover=False) as library:
        assert library._conn.execute("PRAGMA user_version").fetchone()[0] == library_mod.SCHEMA_VERSION
        tracks = {Path(t.path).name: t for t in library.tracks()}
        assert sorted(tracks) == ["bad.mp3", "new.flac", "one.ogg", "two.ogg"]
        assert [tracks[n].id for n in ("one.ogg", "two.ogg", "bad.mp3", "new.flac")] == [1, 2, 3, 4]
        ids, vectors = library.vectors(encoder_key="musicrec-0.2.0-9d363427d397", analysis_key="excerpt30")
        assert list(ids) == [1, 2] and vectors.shape == (2, 32)
        # A version-1 failure carries no encoder or analysis: it is tried once more.
        assert tracks["bad.mp3"].status == "pending" and not tracks["bad.mp3"].missing
        assert library.get_meta("last_folder") == "/music"
        plan = library.plan_scan([library_mod.FileIdentity(t.path, t.size, t.mtime_ns) for t in tracks.values()],
                                 encoder_key="musicrec-0.2.0-9d363427d397", analysis_key="excerpt30")
        assert sorted(Path(t.path).name for t in plan.todo) == ["bad.mp3", "new.flac"] and plan.cached == 2
        # Another encoder (the new default) re-analyses every song; the file list stays as it is.
        plan = library.plan_scan([library_mod.FileIdentity(t.path, t.size, t.mtime_ns) for t in tracks.values()],
                                 encoder_key="musicnn-msd-1.0.0", analysis_key=AnalysisSettings().key)
        assert len(plan.todo) == 4 and plan.pruned == 0
        assert {Path(t.path).name: t.id for t in library.tracks()} == {n: t.id for n, t in tracks.items()}
