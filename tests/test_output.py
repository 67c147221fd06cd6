"""Output files and terminal output: never harm a file musicrec did not write, never pass on control characters.

Most tests use a library filled directly (no audio, no TensorFlow) with a stand-in encoder
config, so they are fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from musicrec_gui import cli
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig
from musicrec_gui.core.encoder import EncoderConfig
from musicrec_gui.core.library import FileIdentity, Library, Track
from musicrec_gui.core.names import single_line_text, terminal_text
from musicrec_gui.core.output import OutputRefused, check_embed_path, is_embed_file, write_atomically, write_embed_npz
from musicrec_gui.core.playlist import MARKER, check_playlist_path, is_musicrec_playlist, write_m3u8

REPO = Path(__file__).resolve().parents[1]
EVIL_TITLE = "Nice song\nhttp://evil/payload.mp3\n#EXTINF:1,x"
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x85\x7f"
NOT_UTF8 = os.fsdecode(b"/music/caf\xe9.flac")
WITH_NEWLINE = "/music/two\nlines.flac"
FORBIDDEN = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]]


def track(path: str, title: str = "t", artist: str = "", *, track_id: int = 1) -> Track:
    return Track(id=track_id, path=path, size=1, mtime_ns=1, title=title, artist=artist, album="",
                 duration=61.4, status="done", error="")


def listing(folder: Path) -> set[str]:
    return set(os.listdir(folder))


def assert_clean(text: str) -> None:
    bad = sorted({ch for ch in text if ch in FORBIDDEN and ch != "\n"})
    assert not bad, [hex(ord(ch)) for ch in bad]


def no_hang(function, *args, seconds: float = 10.0, **kwargs):
    """Call ``function`` in a thread; fail (rather than hang the suite) if it blocks."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- a library without audio -------------------------------------------------------------
@pytest.fixture()
def fake(tmp_path):
    """A library of five analysed songs (one with hostile tags and name) and an encoder config for it."""
    encoder = tmp_path / "enc" / "fake.keras"
    encoder.parent.mkdir()
    encoder.write_bytes(b"not a model: the commands used here read only the .json")
    config = EncoderConfig(name="fake", version="1", embedding_size=4, weights_sha256="0" * 64,
                           features=FeatureConfig(), architecture="fake")
    encoder.with_suffix(".json").write_text(json.dumps(config.to_dict()), encoding="utf-8")
    songs = [("/music/anchor.flac", "Anchor Song", "Band"),
             ("/music/evil" + ESCAPES + ".flac", EVIL_TITLE + ESCAPES, "Evil" + ESCAPES),
             (NOT_UTF8, "Café", "Band"),
             (WITH_NEWLINE, "Two lines", "Band"),
             ("/music/plain.flac", "Plain", "Other")]
    library_path = tmp_path / "lib.sqlite3"
    analysis_key = AnalysisSettings().key
    rng = np.random.default_rng(0)
    with Library(library_path) as library:
        todo = library.plan_scan([FileIdentity(path, 1, 1) for path, _, _ in songs],
                                 encoder_key=config.key, analysis_key=analysis_key).todo
        tags = {path: (title, artist) for path, title, artist in songs}
        for item in todo:
            title, artist = tags[item.path]
            library.record_result(item.id, encoder_key=config.key, analysis_key=analysis_key,
                                  vector=rng.normal(size=4), slice_vectors=rng.normal(size=(1, 4)),
                                  offset_seconds=0.0, title=title, artist=artist, album="", duration=60.0)
        failed = library.plan_scan([FileIdentity("/music/bad" + ESCAPES + ".mp3", 1, 1)],
                                   encoder_key=config.key, analysis_key=analysis_key).todo
        library.record_failure(failed[0].id, "decoder said " + ESCAPES, encoder_key=config.key,
                               analysis_key=analysis_key)
    return {"base": ["--library", str(library_path), "--encoder", str(encoder), "-q"], "tmp": tmp_path}


# -- (8) control characters and names ----------------------------------------------------
def test_terminal_and_line_text_drop_every_control_character():
    hostile = "".join(FORBIDDEN) + "ok é ♫" + NOT_UTF8
    shown = terminal_text(hostile)
    assert not set(shown) & set(FORBIDDEN) and "ok é ♫" in shown and "\\x1b" in shown and "\\x9b" in shown
    shown.encode("utf-8")
    line = single_line_text(EVIL_TITLE + "\u2028x")
    assert line == "Nice song http://evil/payload.mp3 #EXTINF:1,x x"


def test_tags_cannot_add_playlist_entries(tmp_path):
    out = tmp_path / "p.m3u8"
    write_m3u8(out, [track("/music/a.flac", EVIL_TITLE, "Evil\r\n" + ESCAPES)], title="Songs like " + EVIL_TITLE)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["/music/a.flac"]
    assert sum(line.startswith("#EXTINF") for line in lines) == 1
    assert sum(line.startswith("#PLAYLIST") for line in lines) == 1
    assert_clean("\n".join(lines))


def test_paths_a_playlist_cannot_hold_are_skipped_with_a_warning(tmp_path):
    out = tmp_path / "p.m3u8"
    tracks = [track("/music/ok é.flac", "ok"), track(NOT_UTF8, "cafe"), track(WITH_NEWLINE, "two")]
    result = write_m3u8(out, tracks, title="x")
    text = out.read_bytes().decode("utf-8")  # strictly UTF-8
    assert [line for line in text.splitlines() if not line.startswith("#")] == ["/music/ok é.flac"]
    assert result.written == 1 and result.not_utf8 == (NOT_UTF8,) and result.multi_line == (WITH_NEWLINE,)
    assert any("1 song whose file name is not valid UTF-8" in w for w in result.warnings)
    assert any("line break" in w for w in result.warnings)
    with pytest.raises(ValueError, match="none of the 1 songs"):
        write_m3u8(tmp_path / "q.m3u8", [track(NOT_UTF8)], title="x")
    assert not (tmp_path / "q.m3u8").exists()


def test_cli_similar_and_info_print_no_control_characters(fake, capsys):
    assert cli.main(fake["base"] + ["similar", "Anchor Song", "-k", "4"]) == 0
    out = capsys.readouterr().out
    assert "\\x1b]0;pwned\\x07" in out and "caf\\xe9" not in out and "café.flac" in out
    assert "two\\x0alines" in out
    assert_clean(out)
    assert len(out.splitlines()) == 6  # the anchor, the column header and four songs
    assert cli.main(fake["base"] + ["info", "--failures"]) == 0
    out = capsys.readouterr().out
    assert "decoder said \\x1b]0;pwned" in out
    assert_clean(out)
    assert cli.main(fake["base"] + ["similar", "Band"]) != 0  # several matches: listed, safely
    err = capsys.readouterr().err
    assert "songs match" in err
    assert_clean(err)


def test_cli_playlist_skips_unnameable_songs_and_says_so(fake, capsys):
    out = fake["tmp"] / "like.m3u8"
    assert cli.main(fake["base"] + ["playlist", "Anchor Song", "-k", "4", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"wrote 2 songs to {out}" in captured.out
    assert "skipped 1 song whose file name is not valid UTF-8" in captured.err
    assert "skipped 2 songs whose file names contain a line break" in captured.err  # \n, and NEL (U+0085)
    assert_clean(captured.err)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXTENC:UTF-8", MARKER]
    paths = [line for line in lines if not line.startswith("#")]
    assert paths[0] == "/music/anchor.flac"
    assert paths[1:] == ["/music/plain.flac"]


# -- (9) where musicrec writes ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["thesis.docx", "song.mp2", "song", "song.ogg ", "list.m3u8 ", "list.m3u8.bak"])
def test_playlist_needs_a_playlist_extension(name, tmp_path, fake, capsys):
    target = fake["tmp"] / name
    target.write_bytes(b"precious")
    with pytest.raises(OutputRefused, match=r"must end in \.m3u8 or \.m3u"):
        check_playlist_path(target, force=True)
    before = listing(fake["tmp"])
    assert cli.main(fake["base"] + ["playlist", "Anchor Song", "-o", str(target), "--force"]) == 2
    assert "must end in .m3u8 or .m3u" in capsys.readouterr().err
    assert target.read_bytes() == b"precious" and listing(fake["tmp"]) == before


def test_playlist_replaces_only_its_own_files(fake, capsys):
    tmp = fake["tmp"]
    foreign = tmp / "mine.m3u8"
    foreign.write_text("#EXTM3U\n/home/me/handmade.flac\n", encoding="utf-8")
    before = listing(tmp)
    # Refused before any work: the song does not even exist, yet the refusal is what is reported.
    assert cli.main(fake["base"] + ["playlist", "no such song", "-o", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "was not written by musicrec" in err and "--force" in err and err.count("\n") == 1
    assert foreign.read_text(encoding="utf-8") == "#EXTM3U\n/home/me/handmade.flac\n" and listing(tmp) == before

    assert cli.main(fake["base"] + ["playlist", "Anchor Song", "-o", str(foreign), "--force"]) == 0
    assert is_musicrec_playlist(foreign)
    os.chmod(foreign, 0o640)
    assert cli.main(fake["base"] + ["playlist", "Plain", "-o", str(foreign)]) == 0  # ours now: no --force needed
    text = foreign.read_text(encoding="utf-8")  # the title as the app writes it; entries as players parse them
    assert "#PLAYLIST:Songs like Other – Plain" in text and ",Other - Plain\n" in text
    assert stat.S_IMODE(foreign.stat().st_mode) == 0o640 and listing(tmp) == before
    capsys.readouterr()

    upper = tmp / "sub" / "deeper" / "Mixed.M3U"  # any case, missing folders created
    assert cli.main(fake["base"] + ["playlist", "Plain", "-o", str(upper)]) == 0
    assert is_musicrec_playlist(upper) and os.listdir(upper.parent) == ["Mixed.M3U"]


def test_folders_and_special_files_are_always_refused(tmp_path, fake, capsys):
    folder = tmp_path / "out.m3u8"
    folder.mkdir()
    (folder / "keep").write_text("x")
    fifo = tmp_path / "pipe.m3u8"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling.m3u8"
    dangling.symlink_to(tmp_path / "nowhere.m3u8")
    to_docx = tmp_path / "link.m3u8"
    (tmp_path / "thesis.docx").write_bytes(b"precious")
    to_docx.symlink_to(tmp_path / "thesis.docx")
    parent_is_file = tmp_path / "thesis.docx" / "x.m3u8"
    before = listing(tmp_path)
    for target, reason in [(folder, "it is a folder"), (fifo, "special file"), (dangling, "symbolic link"),
                           (to_docx, "symbolic link"), (parent_is_file, "is not a folder")]:
        with pytest.raises(OutputRefused, match=reason):
            no_hang(write_m3u8, target, [track("/music/a.flac")], title="x", force=True)
        assert cli.main(fake["base"] + ["playlist", "Anchor Song", "-o", str(target), "--force"]) == 2
        assert reason in capsys.readouterr().err
    assert listing(tmp_path) == before and os.listdir(folder) == ["keep"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and (tmp_path / "thesis.docx").read_bytes() == b"precious"


def test_a_link_to_a_musicrec_playlist_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.m3u8"
    write_m3u8(real, [track("/music/a.flac")], title="x")
    link = tmp_path / "link.m3u8"
    link.symlink_to(real)
    result = write_m3u8(link, [track("/music/b.flac")], title="y")
    assert result.path == real and link.is_symlink() and "/music/b.flac" in real.read_text(encoding="utf-8")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root for /dev/full and mknod")
def test_devices_are_refused_even_as_root(tmp_path, fake, capsys):
    for target in ["/dev/full", "/dev/null"]:
        assert cli.main(fake["base"] + ["playlist", "Anchor Song", "-o", target, "--force"]) == 2
        assert "must end in .m3u8" in capsys.readouterr().err
    device = tmp_path / "full.m3u8"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # /dev/full under a playlist's name
    link = tmp_path / "to_full.m3u8"
    link.symlink_to(device)
    for target in [device, link]:
        assert no_hang(cli.main, fake["base"] + ["playlist", "Anchor Song", "-o", str(target), "--force"]) == 2
        assert "special file" in capsys.readouterr().err
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "p.m3u8"
    write_m3u8(target, [track("/music/a.flac")], title="x")
    old = target.read_bytes()

    def fail(handle):
        handle.write(b"half a playl")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        write_atomically(target, fail)
    assert target.read_bytes() == old and os.listdir(tmp_path) == ["p.m3u8"]


def test_embed_output_rules(tmp_path, fake, capsys):
    ours = tmp_path / "ours.npz"
    write_embed_npz(ours, files=np.array(["a", "b"]), vectors=np.ones((2, 3), np.float32))
    assert is_embed_file(ours)
    empty = tmp_path / "empty.npz"
    write_embed_npz(empty, files=np.array([], dtype=str), vectors=np.zeros((0, 0), np.float32))
    assert is_embed_file(empty)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, files=np.array([{"x": 1}], dtype=object), vectors=np.ones((1, 2)))
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    lookalike = tmp_path / "mine.npz"  # a user's own arrays that happen to be called files and vectors
    np.savez(lookalike, files=np.array(["a", "b"]), vectors=np.random.rand(2, 300))
    for foreign in [other, pickled, text, lookalike]:
        assert not is_embed_file(foreign)
        with pytest.raises(OutputRefused, match="not written by musicrec") as refused:
            check_embed_path(foreign)
        assert refused.value.forceable
    assert check_embed_path(ours) == ours and check_embed_path(other, force=True) == other
    for bad in ["vectors.txt", "vectors", "vectors.npz "]:
        with pytest.raises(OutputRefused, match=r"must end in \.npz"):
            check_embed_path(tmp_path / bad)
    with pytest.raises(OutputRefused, match="folder"):
        check_embed_path(tmp_path)
    # The CLI checks before the scan: the folder does not exist, yet the refusal is what is reported.
    before = {p: p.read_bytes() for p in [other, pickled, text]}
    assert cli.main(fake["base"] + ["embed", str(tmp_path / "no such folder"), "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not written by musicrec" in err and "--force" in err
    assert {p: p.read_bytes() for p in before} == before
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


# -- a real full disk ---------------------------------------------------------------------
@pytest.fixture()
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)


def test_full_disk_keeps_the_old_files(small_disk, fake, capsys):
    playlist = small_disk / "like.m3u8"
    npz = small_disk / "vectors.npz"
    assert cli.main(fake["base"] + ["playlist", "Anchor Song", "-o", str(playlist)]) == 0
    write_embed_npz(npz, files=np.array(["a"]), vectors=np.ones((1, 4), np.float32))
    old_playlist, old_npz = playlist.read_bytes(), npz.read_bytes()
    fill(small_disk)
    capsys.readouterr()

    assert cli.main(fake["base"] + ["playlist", "Plain", "-k", "4", "-o", str(playlist)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "unchanged" in err
    with pytest.raises(OSError) as raised:
        write_embed_npz(npz, files=np.array(["a", "b"] * 500), vectors=np.ones((1000, 64), np.float32))
    assert raised.value.errno == errno.ENOSPC
    assert playlist.read_bytes() == old_playlist and npz.read_bytes() == old_npz and is_embed_file(npz)
    assert sorted(os.listdir(small_disk)) == ["filler", "like.m3u8", "vectors.npz"]


def test_cli_embed_on_a_full_disk_keeps_the_old_npz(small_disk, tmp_path, tiny_encoder_path, capsys):
    music = tmp_path / "empty music"
    music.mkdir()
    npz = small_disk / "vectors.npz"
    write_embed_npz(npz, files=np.array(["x"]), vectors=np.ones((1, 600), np.float32))  # an earlier embed
    old = npz.read_bytes()
    base = ["--library", str(tmp_path / "lib.sqlite3"), "--encoder", str(tiny_encoder_path), "-q"]
    fill(small_disk)
    capsys.readouterr()
    assert cli.main(base + ["embed", str(music), "--out", str(npz)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "error" in line] == [
        f"musicrec: error: cannot write {npz}: No space left on device; any earlier file of that name is unchanged."]
    assert npz.read_bytes() == old and sorted(os.listdir(small_disk)) == ["filler", "vectors.npz"]
    os.remove(small_disk / "filler")
    assert cli.main(base + ["embed", str(music), "--out", str(npz)]) == 0
    assert is_embed_file(npz) and np.load(npz, allow_pickle=False)["vectors"].shape[0] == 0


# -- (7) a closed pipe ---------------------------------------------------------------------
def test_closed_pipe_ends_quietly(fake):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before musicrec writes, as with `| head -1` on a long list
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from musicrec_gui.cli import main; sys.exit(main())",
             *fake["base"], "similar", "Anchor Song", "-k", "4"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    finally:
        os.close(write_end)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr and "Exception" not in done.stderr


def test_output_that_cannot_be_written_is_one_line_not_a_traceback(fake, tmp_path):
    command = [sys.executable, "-m", "musicrec_gui"] + fake["base"] + ["info"]
    with open("/dev/full", "w") as full:
        done = subprocess.run(command, cwd=REPO, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["musicrec: error: cannot write the output: No space left on device."]
    closed = subprocess.run(" ".join(map(shlex.quote, command)) + " >&-", shell=True, cwd=REPO,
                            stderr=subprocess.PIPE, text=True, timeout=60)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr


def test_paths_typed_by_the_user_are_printed_without_escape_sequences(tmp_path, capsys):
    folder = str(tmp_path / "no\x1b[2Jdir")
    assert cli.main(["--library", str(tmp_path / "lib.sqlite3"), "scan", folder]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J" in err
