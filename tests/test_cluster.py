"""``musicrec scan --ray``: the analysis on a real two-node Ray cluster started by the test, checked against a local scan."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from musicrec_gui import cli
from musicrec_gui.core.encoder import read_encoder_config
from musicrec_gui.core.library import Library

import local_ray  # noqa: E402

local_ray.use_own_token()  # before Ray is imported: it reads its authentication settings then
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'musicrec[cluster]'): the cluster "
                                        "analysis cannot be tested")

from local_ray import free_port, local_ray_cluster  # noqa: E402

HOSTILE = ["trunc_0300.flac", "trunc_0500.mp3", "flip_1.wav", "flip_6.ogg", "wrongext_flac_as.mp3", "zero.opus",
           "random_bytes.m4a", "source.aiff", "source.opus"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_ray_cluster(tmp_path_factory.mktemp("raynodes")) as address:
        yield address


@pytest.fixture()
def songs(music_dir, tmp_path):
    """The good songs, the bad files of the other scan tests, and a few of the hostile corpus."""
    from hostile import make_hostile_corpus

    corpus = tmp_path / "hostile"
    make_hostile_corpus(corpus)
    for name in HOSTILE:
        shutil.copy2(corpus / name, music_dir / "bad" / name)
    shutil.rmtree(corpus)
    return music_dir


def _vectors(library: Library, key: str, analysis_key: str) -> dict[str, np.ndarray]:
    ids, matrix = library.vectors(encoder_key=key, analysis_key=analysis_key)
    paths = {t.id: t.path for t in library.tracks()}
    return {paths[int(i)]: row for i, row in zip(ids, matrix)}


def _failures(library: Library) -> dict[str, tuple[str, str]]:
    return {t.path: (t.error_kind.value, t.error) for t in library.tracks(status="failed")}


def _scan(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.err


def test_ray_scan_matches_a_local_scan_cancels_and_resumes(cluster, songs, tmp_path, tiny_encoder_path, capsys):
    """Four runs on the cluster: shared files cancelled then resumed from the CLI, shipped bytes, all cached."""
    import threading

    from musicrec_gui.core import scan as scan_mod
    from musicrec_gui.core.cluster import RayAnalysis
    from musicrec_gui.core.encoder import LazyEncoder

    mtimes = {p: p.stat().st_mtime_ns for p in songs.rglob("*") if p.is_file() and not p.is_symlink()}
    base = ["--encoder", str(tiny_encoder_path), "-q"]
    local_lib, shared_lib, ship_lib = (tmp_path / f"{n}.sqlite3" for n in ("local", "shared", "ship"))
    code, local_err = _scan(["--library", str(local_lib), *base, "scan", str(songs)], capsys)
    assert code == 0, local_err

    # Shared files (the probe finds every node sees them), cancelled after 5 songs: those are kept.
    encoder, cancel = LazyEncoder(tiny_encoder_path), threading.Event()
    handled = []
    with Library(shared_lib) as library:
        for event in scan_mod.scan(songs, library=library, encoder=encoder, analysis=RayAnalysis(cluster),
                                   cancel=cancel):
            if isinstance(event, (scan_mod.TrackDone, scan_mod.TrackFailed)):
                handled.append(event)
                if len(handled) == 5:
                    cancel.set()
    assert isinstance(event, scan_mod.ScanFinished) and event.cancelled and len(handled) == 5
    # ... and the CLI's --ray run goes on from there: only the rest is analysed.
    code, shared_err = _scan(["--library", str(shared_lib), *base, "scan", str(songs), "--ray", cluster], capsys)
    assert code == 0, shared_err
    assert "2 nodes, 2 CPUs, files read by the nodes (shared)" in shared_err
    total = int(shared_err.split(" audio files")[0])
    assert f"{total - 5 + 2} to analyse" in shared_err  # the pipe and the dangling link never enter the library

    # Shipped bytes, through the scan's events: one per file, counted in order, from actors on both nodes.
    analysis = RayAnalysis(cluster, files="ship")
    with Library(ship_lib) as library:
        events = list(scan_mod.scan(songs, library=library, encoder=encoder, analysis=analysis))
    started = next(e for e in events if isinstance(e, scan_mod.ScanStarted))
    handled = [e for e in events if isinstance(e, (scan_mod.TrackDone, scan_mod.TrackFailed))]
    assert [e.completed for e in handled] == list(range(1, started.to_analyse + 1))
    assert events[-1].error == "" and not events[-1].cancelled
    # Both nodes analysed songs (every actor loads the encoder before the first song is handed out).
    assert analysis.summary.files == "ship" and len(analysis.summary.by_worker) == 2, analysis.summary
    assert sum(analysis.summary.by_worker.values()) + analysis.summary.here == started.to_analyse - 2

    config = read_encoder_config(tiny_encoder_path)
    analysis_key = cli.AnalysisSettings().key
    with Library(local_lib) as local:
        want_vectors, want_failures = _vectors(local, config.key, analysis_key), _failures(local)
        want_titles = {t.path: (t.title, t.duration) for t in local.tracks(status="done")}
    assert len(want_vectors) >= 12 and len(want_failures) >= 8
    for path in (shared_lib, ship_lib):
        with Library(path) as library:
            got = _vectors(library, config.key, analysis_key)
            assert set(got) == set(want_vectors)
            for song, vector in got.items():
                np.testing.assert_allclose(vector, want_vectors[song], rtol=1e-4, atol=1e-5, err_msg=song)
            # The same failures, of the same kinds, in the same words as a local scan.
            assert _failures(library) == want_failures
            assert {t.path: (t.title, t.duration) for t in library.tracks(status="done")} == want_titles

    # A second --ray run finds everything cached: nothing is sent to the cluster.
    code, again = _scan(["--library", str(shared_lib), *base, "scan", str(songs), "--ray", cluster], capsys)
    assert code == 0
    assert "analysed 0, failed 2" in again and "on the Ray cluster" not in again
    # Nothing on any node wrote to a music file.
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}


def test_ctrl_c_stops_a_ray_scan_as_it_stops_a_local_one(cluster, songs, tmp_path, tiny_encoder_path):
    """The real command, interrupted while the cluster works: exit 130, one line, no traceback, nothing left half-written."""
    import signal
    import time

    argv = [sys.executable, "-m", "musicrec_gui.cli", "--library", str(tmp_path / "lib.sqlite3"), "--encoder",
            str(tiny_encoder_path), "-q", "scan", str(songs), "--ray", cluster]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(cli.Path(__file__).resolve().parents[1])})
    try:
        first = process.stderr.readline()  # "N audio files: 0 already analysed, M to analyse"
        assert "to analyse" in first, first
        time.sleep(3)  # connected, the nodes probed, the actors loading the encoder
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGINT, rest
    assert "interrupted; finished songs are kept in the library" in rest and "Traceback" not in rest, rest
    with Library(tmp_path / "lib.sqlite3") as library:  # the library opens, whole, and is resumed from
        assert library.stats()["tracks"] >= 1


def test_unreachable_cluster_and_missing_ray_are_clear(tmp_path, tiny_encoder_path, capsys):
    port = free_port()  # nothing listens there
    argv = ["--library", str(tmp_path / "lib.sqlite3"), "--encoder", str(tiny_encoder_path), "scan", str(tmp_path),
            "--ray", f"127.0.0.1:{port}"]
    assert cli.main(argv) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in err and "Traceback" not in err
    assert cli.main(argv[:-1] + ["ray://10.0.0.1:10001"]) == cli.EXIT_FAILURE
    assert "ray start --address" in capsys.readouterr().err

    # Without Ray importable (a real interpreter where the import fails), --ray says how to install it.
    code = ("import sys; sys.modules['ray'] = None\n"
            "from musicrec_gui import cli; sys.exit(cli.main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(cli.Path(__file__).resolve().parents[1])})
    assert result.returncode == cli.EXIT_FAILURE
    assert "pip install 'musicrec[cluster]'" in result.stderr and "Traceback" not in result.stderr


def test_a_node_that_does_not_see_the_files_makes_auto_ship(tmp_path):
    from musicrec_gui.core.cluster import probe_node

    song = tmp_path / "a.wav"
    song.write_bytes(b"RIFF")
    st = song.stat()
    assert probe_node([(str(song), st.st_size, st.st_mtime_ns)])["seen"] == 1
    # Another mount (different mtime) or no mount at all: not seen, so "auto" ships the bytes.
    assert probe_node([(str(song), st.st_size, st.st_mtime_ns + 1), (str(tmp_path / "nope.wav"), 4, 0)])["seen"] == 0
