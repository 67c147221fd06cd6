"""The beets plugin (beetsplug/musicrec.py) in a real beets library made by the test, run through beets' own CLI."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from audio_factory import make_tagged_songs, tone, write
from musicrec_gui import cli

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("beets", reason="needs beets (pip install -e '.[beets]'; bootstrap.sh test installs it)")
BEET = Path(sys.executable).with_name("beet")


def _beet(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BEET), *args], env=env, capture_output=True, text=True, timeout=300)
    return result


def _files(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``folder``: its content's hash and its mtime."""
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _beets_rows(database: Path) -> list:
    """What beets' database says of its items and albums (and their flexible attributes)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return [conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
                for table in ("items", "item_attributes", "albums", "album_attributes")]


def test_beet_similar_and_musicrecscan_read_beets_and_write_nothing_of_the_users(tmp_path, tiny_encoder_path, capsys):
    music = tmp_path / "music"
    songs = make_tagged_songs(music, seconds=8.0)
    beetsdir = tmp_path / "beets"
    beetsdir.mkdir()
    library = tmp_path / "musicrec.sqlite3"
    database = beetsdir / "library.db"
    (beetsdir / "config.yaml").write_text(f"""directory: {music}
library: {database}
plugins: musicrec
musicrec:
    library: {library}
    encoder: {tiny_encoder_path}
""")
    env = {**os.environ, "BEETSDIR": str(beetsdir), "HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # A real beets library: imported as is (no autotagging, no copying, no tag writing).
    imported = _beet(env, "import", "-A", "-C", "-W", "-q", str(music))
    assert imported.returncode == 0, imported.stderr
    listed = _beet(env, "ls", "-f", "$path")
    assert sorted(listed.stdout.split("\n")[:-1]) == sorted(map(str, songs))
    files, rows = _files(music), _beets_rows(database)

    # Before a scan: the plugin says what to do.
    before = _beet(env, "similar", "title:Song A1")
    assert before.returncode == 0, before.stderr
    assert "not in musicrec's library yet: run 'beet musicrecscan'" in before.stdout

    # Analyse the items of one artist, then all: only new files are analysed.
    first = _beet(env, "musicrecscan", "artist:Ada Drone")
    assert first.returncode == 0, first.stderr
    assert "analysed 5, failed 0, unchanged 0" in first.stdout
    scan = _beet(env, "musicrecscan")
    assert scan.returncode == 0, scan.stderr
    assert "analysed 5, failed 0, unchanged 5" in scan.stdout

    # beet similar lists what 'musicrec similar' lists for the same song, with the same exclusion.
    similar = _beet(env, "similar", "title:Song A1", "-k", "3", "--exclude-artist", "-f", "$artist|$path")
    assert similar.returncode == 0, similar.stderr
    lines = similar.stdout.splitlines()
    assert lines[0] == f"songs like: Ada Drone|{songs[0]}"
    shown = [re.match(r"^\s+\d+ %  (.*)$", line).group(1).split("|") for line in lines[1:]]
    capsys.readouterr()
    assert cli.main(["--library", str(library), "--encoder", str(tiny_encoder_path), "similar", str(songs[0]), "-k", "3",
                     "--exclude-artist"]) == 0
    expected = [line.rsplit("|  ", 1)[1] for line in capsys.readouterr().out.splitlines()
                if re.match(r"^\s+\d+\s+\d+ %", line)]
    assert [path for _, path in shown] == expected and len(expected) == 3
    assert {artist for artist, _ in shown} == {"Bea Pulse"}

    # Several items: one answer each.
    both = _beet(env, "similar", "title:Song B", "-k", "1")
    assert both.stdout.count("songs like:") == 2

    # The plugin wrote neither the music files nor beets' database; only musicrec's library.
    assert _files(music) == files
    assert _beets_rows(database) == rows
    assert library.exists()

    # A song beets knows but musicrec has not analysed, and a query that matches nothing.
    extra = write(music / "Extra" / "lonely.flac", tone(8.0, freqs=(700.0,)), 22050)
    assert _beet(env, "import", "-A", "-C", "-W", "-q", "-s", str(extra)).returncode == 0
    lonely = _beet(env, "similar", "path:" + str(extra))
    assert "songs like:" in lonely.stdout and "not in musicrec's library yet" in lonely.stdout
    nothing = _beet(env, "similar", "title:No Such Song")
    assert nothing.returncode == 1 and "no item matches the query 'title:No Such Song'" in nothing.stderr


def test_bad_plugin_settings_are_explained(tmp_path, tiny_encoder_path):
    beetsdir = tmp_path / "beets"
    beetsdir.mkdir()
    (beetsdir / "config.yaml").write_text(f"""directory: {tmp_path}
library: {beetsdir / 'library.db'}
plugins: musicrec
musicrec:
    library: {tmp_path / 'musicrec.sqlite3'}
    encoder: {tiny_encoder_path}
    mode: sideways
""")
    song = write(tmp_path / "one.flac", tone(4.0), 22050)
    env = {**os.environ, "BEETSDIR": str(beetsdir), "HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    assert _beet(env, "import", "-A", "-C", "-W", "-q", "-s", str(song)).returncode == 0
    result = _beet(env, "musicrecscan")
    assert result.returncode == 1
    assert "musicrec section of beets' config" in result.stderr and "mode: spread" in result.stderr
