"""Re-analyse from a song's context menu: real audio files, the tiny real encoder, offscreen Qt."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

from audio_factory import GOOD_SONGS, tone, write  # noqa: E402
from musicrec_gui.core.scan import ScanFinished  # noqa: E402
from musicrec_gui.gui.engine import Reanalysed, ReanalysisFinished  # noqa: E402
from musicrec_gui.gui.models import REANALYSING_TEXT, SongTableModel  # noqa: E402
from musicrec_gui.gui.player import NullPlayer  # noqa: E402
from musicrec_gui.gui.window import MainWindow  # noqa: E402

TIMEOUT_MS = 60_000




def make_window(qtbot, env, encoder, folder) -> MainWindow:
    window = MainWindow(env["library"], env["store"], encoder_path=encoder, folder=folder,
                        player=NullPlayer("no audio in this test"))
    qtbot.addWidget(window)
    env["windows"].append(window)
    window.show()
    return window


def folder_state(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file's size, mtime and content hash: what musicrec must never change."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def replace_content_keeping_identity(path: Path, data_or_signal, rate: int | None = None) -> None:
    """Give a file other content of the same size and mtime: a change no size+mtime check sees."""
    before = path.stat()
    if rate is None:
        path.write_bytes(data_or_signal)
    else:
        write(path, data_or_signal, rate)
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def song_vector(window, track_id: int) -> np.ndarray | None:
    session = window.session
    ids, vectors = session.library.vectors(encoder_key=session.encoder_key, analysis_key=session.analysis.key)
    hits = np.flatnonzero(ids == track_id)
    return vectors[hits[0]] if hits.size else None


def track_named(window, name: str):
    return next(t for t in window.songs.model.tracks() if os.path.basename(t.path) == name)


def status_text(window, track_id: int) -> str:
    model = window.songs.model
    return model.data(model.index(model.row_of(track_id), SongTableModel.STATUS))


def reanalyse_action(window, track):
    menu = window.song_actions.menu_for(track, window.songs)
    action = next(a for a in menu.actions() if a.text() == "Re-analyse")
    assert action.isEnabled() and action.statusTip()
    return action


def wait_finished(qtbot, window, trigger):
    with qtbot.waitSignal(window.engine.event, check_params_cb=lambda e: isinstance(e, ReanalysisFinished),
                          timeout=TIMEOUT_MS) as finished:
        trigger()
    return finished.args[0]


def test_reanalyse_replaces_a_valid_result_and_never_touches_the_file(qtbot, env, tiny_encoder_path,
                                                                       good_library_dir, tmp_path):
    folder = tmp_path / "music"
    shutil.copytree(good_library_dir, folder)
    window = make_window(qtbot, env, tiny_encoder_path, folder)
    qtbot.waitUntil(lambda: not window.engine.scanning, timeout=TIMEOUT_MS)
    name, seconds, rate, channels, _ = GOOD_SONGS[0]  # a WAV: other audio of the same length has the same size
    track = track_named(window, name)
    window.select_track(track.id)
    old = song_vector(window, track.id)
    assert old is not None and track.status == "done"

    replace_content_keeping_identity(folder / name, tone(seconds, sample_rate=rate, freqs=(2500.0,), noise=0.3,
                                                         seed=99, channels=channels), rate)
    # A rescan trusts size + mtime: the stale vector stays. That is what Re-analyse is for.
    with qtbot.waitSignal(window.engine.event, check_params_cb=lambda e: isinstance(e, ScanFinished),
                          timeout=TIMEOUT_MS):
        window.commands.rescan.trigger()
    assert np.array_equal(song_vector(window, track.id), old)

    before = folder_state(folder)
    action = reanalyse_action(window, track)
    statuses = []
    finished = wait_finished(qtbot, window, lambda: (action.trigger(), statuses.append(status_text(window, track.id))))
    assert statuses == [REANALYSING_TEXT]  # the row said so while it waited
    assert not finished.cancelled and not finished.error
    new = song_vector(window, track.id)
    assert new is not None and not np.allclose(new, old)
    assert status_text(window, track.id) == "analysed"
    assert window.anchor.id == track.id and window.anchor.status == "done"
    assert window.recommender.index is None or np.allclose(
        window.recommender.index._raw[window.recommender.index._row[track.id]], new)
    qtbot.waitUntil(lambda: len(window.recommendations.rows) == 2, timeout=10_000)
    assert folder_state(folder) == before  # only read


def test_reanalyse_during_a_scan_goes_before_the_scans_next_songs(qtbot, env, tiny_encoder_path, good_library_dir,
                                                                  tmp_path):
    folder = tmp_path / "many"
    for i in range(6):
        shutil.copytree(good_library_dir, folder / f"copy{i}")
    window = make_window(qtbot, env, tiny_encoder_path, folder)
    seen = []
    window.engine.event.connect(lambda e: seen.append(e))
    qtbot.waitUntil(lambda: sum(t.status == "done" for t in window.songs.model.tracks()) >= 2, timeout=TIMEOUT_MS)
    done = next(t for t in window.songs.model.tracks() if t.status == "done")
    before = folder_state(folder)
    finished = wait_finished(qtbot, window, reanalyse_action(window, done).trigger)
    assert not finished.error and window.engine.scanning  # the scan goes on meanwhile
    with qtbot.waitSignal(window.engine.event, check_params_cb=lambda e: isinstance(e, ScanFinished),
                          timeout=TIMEOUT_MS) as scan_end:
        pass
    event = scan_end.args[0]
    assert not event.cancelled and event.analysed + event.cached == 48  # not restarted, not cut short
    results = [e for e in seen if isinstance(e, Reanalysed)]
    assert len(results) == 1 and results[0].track_id == done.id
    assert all(t.status == "done" for t in window.songs.model.tracks())
    assert folder_state(folder) == before


def test_a_song_that_now_fails_shows_as_failed_and_leaves_the_index(qtbot, env, tiny_encoder_path,
                                                                    good_library_dir, tmp_path):
    folder = tmp_path / "music"
    shutil.copytree(good_library_dir, folder)
    window = make_window(qtbot, env, tiny_encoder_path, folder)
    qtbot.waitUntil(lambda: not window.engine.scanning, timeout=TIMEOUT_MS)
    name = GOOD_SONGS[1][0]
    track = track_named(window, name)
    window.select_track(track.id)
    qtbot.waitUntil(lambda: window.recommender.index is not None, timeout=10_000)
    size = (folder / name).stat().st_size
    replace_content_keeping_identity(folder / name, np.random.default_rng(5).bytes(size))
    assert window.failures.count() == 0
    finished = wait_finished(qtbot, window, reanalyse_action(window, track).trigger)
    assert not finished.error
    assert status_text(window, track.id) == "failed" and window.anchor.status == "failed"
    assert window.failures.count() == 1
    assert song_vector(window, track.id) is None
    qtbot.waitUntil(lambda: "could not be analysed" in window.recommendations.message.text(), timeout=10_000)
    other = track_named(window, GOOD_SONGS[0][0])
    window.select_track(other.id)
    qtbot.waitUntil(lambda: len(window.recommendations.rows) == 2, timeout=10_000)
    assert track.id not in window.recommender.index
    assert all(row.track.id != track.id for row in window.recommendations.rows)
