"""``musicrec mpd`` against a real MPD started by the test (loopback port, null audio output)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from audio_factory import make_tagged_songs, tone, write
from musicrec_gui import cli
from musicrec_gui.core import scan as scan_mod
from musicrec_gui.core.config import AnalysisSettings
from musicrec_gui.core.library import Library, real_path
from musicrec_gui.core.recommend import VectorIndex

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("mpd") is None,
                                reason="needs MPD (Debian package mpd; scripts/bootstrap.sh test installs it)")
mpd = pytest.importorskip("mpd", reason="needs python-mpd2 (pip install -e '.[mpd]'; bootstrap.sh test installs it)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


@contextlib.contextmanager
def running_mpd(state: Path, music: Path, songs: int):
    """A real MPD on 127.0.0.1 with a null output, its database of ``music`` built; stopped on exit."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "playlists").mkdir(exist_ok=True)
    port = _free_port()
    config = state / "mpd.conf"
    config.write_text(f'''music_directory "{music}"
playlist_directory "{state / 'playlists'}"
db_file "{state / 'database'}"
state_file "{state / 'state'}"
log_file "{state / 'mpd.log'}"
bind_to_address "127.0.0.1"
bind_to_address "{state / 'socket'}"
port "{port}"
zeroconf_enabled "no"
auto_update "no"
audio_output {{
    type "null"
    name "null"
}}
''')
    log = open(state / "mpd.out", "w")
    process = subprocess.Popen(["mpd", "--no-daemon", "--stderr", str(config)], stdout=log, stderr=subprocess.STDOUT)
    client = mpd.MPDClient()
    client.timeout = 10
    try:
        def connected():
            if process.poll() is not None:
                raise AssertionError(f"mpd exited with {process.returncode}: {(state / 'mpd.out').read_text()}")
            try:
                client.connect("127.0.0.1", port)
                return True
            except OSError:
                return False

        _wait(connected, 20, "MPD to listen")
        client.update()
        _wait(lambda: "updating_db" not in client.status() and int(client.stats()["songs"]) == songs, 30,
              "MPD's database")
        yield port, client, process
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


class Child:
    """``musicrec mpd`` in its own process; its output lines are read as they come."""

    def __init__(self, args: list[str]):
        self.process = subprocess.Popen([sys.executable, "-m", "musicrec_gui.cli", *args], cwd=ROOT,
                                        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def _drain(self):
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def wait_for(self, text: str, timeout: float = 20) -> str:
        def seen():
            self._drain()
            if self.process.poll() is not None and self._queue.empty():
                time.sleep(0.2)
                self._drain()
                found = [line for line in self.lines if text in line]
                if not found:
                    raise AssertionError(f"musicrec mpd exited ({self.process.returncode}) without saying {text!r}:\n"
                                         + "\n".join(self.lines))
            return next((line for line in self.lines if text in line), None)

        return _wait(seen, timeout, f"{text!r} from musicrec mpd; it said:\n" + "\n".join(self.lines))

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_encoder_path, tiny_encoder):
    """Tagged songs in a music directory, scanned into a musicrec library, and a real MPD playing from it."""
    root = tmp_path_factory.mktemp("mpd")
    music = root / "music"
    songs = make_tagged_songs(music)
    library_path = root / "library.sqlite3"
    with Library(library_path) as library:
        events = list(scan_mod.scan(music, library=library, encoder=tiny_encoder))
        assert events[-1].analysed == len(songs) and not events[-1].failed
    with running_mpd(root / "mpd", music, len(songs)) as (port, client, _):
        yield {"music": music, "songs": songs, "library": library_path, "encoder": tiny_encoder_path, "port": port,
               "client": client, "socket": root / "mpd" / "socket"}


def _similar(world, song: Path, capsys, *options: str) -> list[str]:
    """The paths ``musicrec similar`` lists for ``song``."""
    capsys.readouterr()
    assert cli.main(["--library", str(world["library"]), "--encoder", str(world["encoder"]), "similar", str(song),
                     "--folder", str(world["music"]), *options]) == 0
    out = capsys.readouterr().out
    return [line.rsplit("|  ", 1)[1] for line in out.splitlines() if re.match(r"^\s+\d+\s+\d+ %", line)]


def _queue_paths(world) -> list[str]:
    return [real_path(world["music"] / item["file"]) for item in world["client"].playlistinfo()]


def _uri(world, path: Path) -> str:
    return path.relative_to(world["music"]).as_posix()


def test_the_queue_gets_the_neighbours_similar_gives_and_never_a_song_twice(world, capsys):
    music = world["music"]
    first = world["songs"][0]  # Ada Drone's first song
    expected = _similar(world, first, capsys, "-k", "3", "--exclude-artist")
    assert len(expected) == 3 and all("Bea Pulse" in path for path in expected)
    mtimes = {p: p.stat().st_mtime_ns for p in world["songs"]}
    child = Child(["--library", str(world["library"]), "--encoder", str(world["encoder"]), "mpd", "--host", "127.0.0.1",
                   "--port", str(world["port"]), "--music-dir", str(music), "--ahead", "3", "--exclude-artist"])
    try:
        _run_the_queue(world, child, first, expected)
    except AssertionError as err:
        child._drain()
        raise AssertionError(f"{err}\nmusicrec mpd said:\n" + "\n".join(child.lines)) from None
    finally:
        child.stop()
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}  # musicrec only read the music


def _run_the_queue(world, child, first, expected):
    client, music = world["client"], world["music"]
    child.wait_for("keeping MPD's queue")
    client.clear()
    client.add(_uri(world, first))
    client.play(0)
    _wait(lambda: int(client.status()["playlistlength"]) == 4, 20, "three songs queued after the first")
    assert _queue_paths(world) == [real_path(first)] + expected
    child.wait_for("queued")

    # Each song played next tops the queue up to three ahead with its own neighbours (the other
    # artist's), never a song played or queued; when none is left it says so and adds nothing.
    with Library(world["library"]) as library:
        index = VectorIndex.from_library(library, encoder_key=_encoder_key(world), analysis_key=AnalysisSettings().key,
                                         under=str(music))
    by_path = {t.path: t for t in index.tracks}
    position = 1
    while position < len(_queue_paths(world)):
        queued = _queue_paths(world)
        playing = by_path[queued[position]]
        need = 3 - (len(queued) - position - 1)
        want = index.similar(playing.id, k=need, exclude_same_artist=True,
                             exclude_ids=[by_path[p].id for p in queued]) if need > 0 else []
        client.play(position)
        if want:
            _wait(lambda: len(_queue_paths(world)) == len(queued) + len(want), 20,
                  f"{len(want)} songs queued after {playing.title}")
            assert _queue_paths(world)[len(queued):] == [r.track.path for r in want]
            assert all(r.track.artist != playing.artist for r in want)
        elif need > 0:
            child.wait_for(f"no song left to add after {playing.artist} - {playing.title}")
            assert len(_queue_paths(world)) == len(queued)
        position += 1
    final = _queue_paths(world)
    assert sorted(final) == sorted(real_path(p) for p in world["songs"])  # each song once

    # A song MPD plays that musicrec has not analysed: said once, nothing added after it.
    extra = write(music / "new" / "unscanned.flac", tone(30.0, freqs=(700.0,)), 22050)
    try:
        client.update()
        _wait(lambda: "updating_db" not in client.status() and int(client.stats()["songs"]) == len(world["songs"]) + 1, 20,
              "MPD to find the new song")
        client.clear()
        client.add("new/unscanned.flac")
        client.play(0)
        line = child.wait_for("is not in musicrec's library")
        assert "new/unscanned.flac" in line and "musicrec scan" in line
        time.sleep(0.5)
        assert int(client.status()["playlistlength"]) == 1
    finally:
        client.stop()
        extra.unlink()
        client.update()

    # Ctrl-C ends it cleanly, at once, while it waits on MPD's idle.
    child.process.send_signal(signal.SIGINT)
    assert child.process.wait(10) == 0
    child.wait_for("stopped; MPD's queue is left as it is.")


def _encoder_key(world) -> str:
    from musicrec_gui.core.encoder import read_encoder_config

    return read_encoder_config(world["encoder"]).key


def test_clear_errors_for_a_wrong_port_folder_or_missing_package(world, capsys, monkeypatch, tmp_path):
    base = ["--library", str(world["library"]), "--encoder", str(world["encoder"]), "mpd", "--host", "127.0.0.1"]
    closed = _free_port()
    assert cli.main(base + ["--port", str(closed), "--music-dir", str(world["music"])]) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to MPD at 127.0.0.1:{closed}" in err and "--port" in err
    # Over TCP MPD does not tell its music directory: the user is asked for it.
    assert cli.main(base + ["--port", str(world["port"])]) == 1
    assert "pass --music-dir" in capsys.readouterr().err
    # A folder with no analysed song: nothing to do, and how to fix it.
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    assert cli.main(base + ["--port", str(world["port"]), "--music-dir", str(empty)]) == 1
    assert f"run 'musicrec scan {empty}'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "mpd", None)  # as if python-mpd2 were not installed
    assert cli.main(base + ["--port", str(world["port"]), "--music-dir", str(world["music"])]) == 1
    assert "pip install 'musicrec[mpd]'" in capsys.readouterr().err


def test_over_its_local_socket_mpd_names_its_music_directory(world):
    child = Child(["--library", str(world["library"]), "--encoder", str(world["encoder"]), "mpd",
                   "--host", str(world["socket"])])
    try:
        line = child.wait_for("keeping MPD's queue")
        assert f"at {world['socket']}" in line and f"below {real_path(world['music'])}" in line
        child.process.send_signal(signal.SIGTERM)  # a logout, or systemd stopping it: the same clean stop
        assert child.process.wait(10) == 0
    finally:
        child.stop()


def test_mpd_going_away_is_said_plainly(tmp_path, world):
    music = world["music"]
    with running_mpd(tmp_path / "second", music, len(world["songs"])) as (port, _, server):
        child = Child(["--library", str(world["library"]), "--encoder", str(world["encoder"]), "mpd",
                       "--host", "127.0.0.1", "--port", str(port), "--music-dir", str(music)])
        try:
            child.wait_for("keeping MPD's queue")
            server.terminate()
            server.wait(10)
            assert child.process.wait(10) == 1
            line = child.wait_for("lost the connection to MPD")
            assert "Start 'musicrec mpd' again" in line
        finally:
            child.stop()
