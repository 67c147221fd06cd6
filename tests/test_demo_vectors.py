"""The demo's shipped, precomputed analyses: the list is analysed before the encoder has loaded."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from audio_factory import tone, write  # noqa: E402
from musicrec_gui.core.config import AnalysisSettings  # noqa: E402
from musicrec_gui.core.encoder import (  # noqa: E402
    BUNDLED_ENCODERS, bundled_encoder_path, encoder_path_for, read_encoder_config,
)
from musicrec_gui.core.library import Library, iter_identities  # noqa: E402
from musicrec_gui.core.precomputed import (  # noqa: E402
    DEMO_VECTORS, PrecomputedError, PrecomputedSong, file_sha256, load_precomputed, seed_library, write_precomputed,
)
from musicrec_gui.core.scan import ScanFinished  # noqa: E402
from musicrec_gui.gui import engine as engine_mod  # noqa: E402
from musicrec_gui.gui import scanning as scanning_mod  # noqa: E402
from musicrec_gui.gui import session as session_mod  # noqa: E402
from musicrec_gui.gui.engine import Seeded  # noqa: E402
from musicrec_gui.gui.player import NullPlayer  # noqa: E402
from musicrec_gui.gui.window import MainWindow  # noqa: E402

DEMO = session_mod.demo_folder()
DEMO_SONGS = sorted(p.name for p in DEMO.iterdir() if p.suffix == ".ogg")
TIMEOUT_MS = 120_000


def musicnn_key() -> str:
    return read_encoder_config(bundled_encoder_path()).key


def test_the_shipped_file_matches_the_demo_and_every_bundled_encoder():
    shipped = load_precomputed(DEMO / DEMO_VECTORS)
    analysis = AnalysisSettings().key
    for name in BUNDLED_ENCODERS:
        config = read_encoder_config(encoder_path_for(name))
        songs = shipped.songs(encoder_key=config.key, analysis_key=analysis)
        assert sorted(songs) == DEMO_SONGS, name  # regenerate with scripts/make_demo_vectors.py
        for file, song in songs.items():
            assert song.size == (DEMO / file).stat().st_size and song.sha256 == file_sha256(DEMO / file)
            assert song.vector.shape == (config.embedding_size,) and len(song.slice_vectors) >= 1
            assert (song.tag_probabilities is not None) == config.has_tags
            assert song.title and song.duration > 0


def demo_copy(tmp_path: Path, *, changed: str | None = None) -> Path:
    """The demo folder copied (with its precomputed file); ``changed`` gets other audio."""
    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder)
    if changed:
        write(folder / changed, tone(20.0, freqs=(330.0, 495.0), noise=0.05, seed=4), 22050)
    return folder


def test_seeding_stores_matching_files_as_cache_entries_and_leaves_changed_ones(tmp_path):
    changed = DEMO_SONGS[3]
    folder = demo_copy(tmp_path, changed=changed)
    # Same size, other bytes: only the content hash tells.
    same_size = DEMO_SONGS[5]
    data = bytearray((folder / same_size).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / same_size).write_bytes(bytes(data))
    key, analysis = musicnn_key(), AnalysisSettings().key
    with Library(tmp_path / "library.sqlite3") as library:
        seeded = seed_library(library, folder, load_precomputed(folder / DEMO_VECTORS), encoder_key=key,
                              analysis_key=analysis, dimension=200)
        names = sorted(os.path.basename(track.path) for track, _ in seeded)
        assert names == sorted(set(DEMO_SONGS) - {changed, same_size})
        # The scan's own plan sees exactly those as analysed: they are keyed like any cache entry.
        found = [i for i in iter_identities(str(p) for p in sorted(folder.glob("*.ogg")))]
        plan = library.plan_scan(found, encoder_key=key, analysis_key=analysis, root=str(folder), dimension=200)
        assert plan.cached == len(DEMO_SONGS) - 2
        assert sorted(os.path.basename(t.path) for t in plan.todo) == sorted([changed, same_size])
        # Another encoder's key seeds nothing; seeding twice writes nothing more.
        assert seed_library(library, folder, load_precomputed(folder / DEMO_VECTORS), encoder_key="other",
                            analysis_key=analysis) == []
        assert seed_library(library, folder, load_precomputed(folder / DEMO_VECTORS), encoder_key=key,
                            analysis_key=analysis, dimension=200) == []


def test_a_damaged_or_foreign_file_is_refused_and_never_unpickled(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, format=np.array([{"a": 1}], dtype=object))  # needs pickle to read
    with pytest.raises(PrecomputedError):
        load_precomputed(bad)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(PrecomputedError):
        load_precomputed(tmp_path / "text.npz")
    song = PrecomputedSong(file="../escape.ogg", size=1, sha256="0" * 64, title="t", artist="", album="",
                           duration=1.0, vector=np.ones(4, np.float32), slice_vectors=np.ones((2, 4), np.float32),
                           offset_seconds=0.0, tag_probabilities=None)
    write_precomputed(tmp_path / "escape.npz", {("e", "a"): [song]})
    with pytest.raises(PrecomputedError, match="folder"):
        load_precomputed(tmp_path / "escape.npz")


@pytest.fixture()
def slow_encoder():
    """The real bundled encoder, loaded only once the test lets it (as a slow first start would)."""
    gate = threading.Event()

    def load(path):
        assert gate.wait(TIMEOUT_MS / 1000)
        return engine_mod._load_encoder(path)

    yield gate, load
    gate.set()




def open_demo(qtbot, env, loader, folder) -> MainWindow:
    window = MainWindow(env["library"], env["store"], encoder_path=bundled_encoder_path(), folder=folder,
                        encoder_loader=loader, player=NullPlayer("no audio in this test"))
    qtbot.addWidget(window)
    env["windows"].append(window)
    window.show()
    return window


def statuses(window) -> dict[str, str]:
    return {os.path.basename(t.path): t.status for t in window.songs.model.tracks()}


def finish_scan(qtbot, window, gate) -> ScanFinished:
    with qtbot.waitSignal(window.engine.event, check_params_cb=lambda e: isinstance(e, ScanFinished),
                          timeout=TIMEOUT_MS) as finished:
        gate.set()
    return finished.args[0]


def test_first_start_shows_the_demo_analysed_without_ever_loading_the_encoder(qtbot, env, slow_encoder):
    gate, loader = slow_encoder
    window = open_demo(qtbot, env, loader, DEMO)
    finished = []  # the scan's events reach this thread only once the event loop runs: none is missed
    window.engine.event.connect(lambda e: finished.append(e) if isinstance(e, ScanFinished) else None)
    qtbot.waitUntil(lambda: set(statuses(window).values()) == {"done"}, timeout=20_000)
    assert sorted(statuses(window)) == DEMO_SONGS
    # The first song is selected and its neighbours answered, without the encoder.
    qtbot.waitUntil(lambda: len(window.recommendations.rows) == 2, timeout=20_000)
    assert window.anchor is not None and window.session.song_tags(window.anchor)
    assert all(t.title and t.duration > 0 for t in window.songs.model.tracks())
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT_MS)
    # The scan finds every seeded entry valid: nothing to analyse, so TensorFlow is never imported.
    assert (finished[0].analysed, finished[0].failed, finished[0].cached) == (0, 0, len(DEMO_SONGS))
    assert not window.engine.encoder_loaded and not gate.is_set()


def test_a_demo_file_whose_content_differs_is_analysed_instead(qtbot, env, slow_encoder, tmp_path, monkeypatch):
    changed = DEMO_SONGS[0]
    folder = demo_copy(tmp_path, changed=changed)
    for module in (session_mod, scanning_mod):  # this copy is "the demo" of this test
        monkeypatch.setattr(module, "demo_folder", lambda: folder)
    gate, loader = slow_encoder
    seen = []
    window = open_demo(qtbot, env, loader, folder)
    window.engine.event.connect(lambda e: seen.append(e))
    qtbot.waitUntil(lambda: any(isinstance(e, Seeded) for e in seen), timeout=20_000)
    qtbot.waitUntil(lambda: list(statuses(window).values()).count("done") == len(DEMO_SONGS) - 1, timeout=20_000)
    assert statuses(window)[changed] == "pending"
    event = finish_scan(qtbot, window, gate)
    assert (event.analysed, event.cached) == (1, len(DEMO_SONGS) - 1)
    assert set(statuses(window).values()) == {"done"}
