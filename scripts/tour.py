"""Screenshots of the explorer, taken from the real app under Xvfb: a passage search with tag chips,
the match view, a path between two songs on the map, and the map itself.

    python scripts/tour.py [--folder DIR] [--size 1600x1000] [--out-dir docs/screenshots]

A fresh library and settings file (the folder is scanned with the bundled encoder), a HOME whose
ALSA default is the null device, and ``xvfb-run`` when no display is available. Writes
``explore-<size>.png``, ``match-<size>.png``, ``path-<size>.png`` and ``map-<size>.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def drive(folder: str, out_dir: Path, size: str, tmp: str) -> int:
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from musicrec_gui.core.library import Library
    from musicrec_gui.gui.preferences import open_store
    from musicrec_gui.gui.window import MainWindow

    app = QApplication(sys.argv[:1])
    width, height = (int(x) for x in size.split("x"))
    window = MainWindow(Library(Path(tmp) / "library.sqlite3"), open_store(str(Path(tmp) / "settings.ini")),
                        folder=folder)
    window.resize(width, height)
    window.move(0, 0)
    window.show()
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[str] = []

    def wait(condition, then, timeout_ms: int = 300_000) -> None:
        timer = QTimer(window)
        waited = {"ms": 0}

        def poll() -> None:
            waited["ms"] += 200
            if condition() or waited["ms"] > timeout_ms:
                timer.stop()
                QTimer.singleShot(800, then)  # let thumbnails and repaints land

        timer.timeout.connect(poll)
        timer.start(200)

    def save(widget, name: str) -> None:
        path = out_dir / f"{name}-{size}.png"
        widget.grab().save(str(path))
        shots.append(str(path))

    def shown() -> bool:
        return (not window.engine.scanning and window.anchor is not None and window.spectrogram_ready
                and bool(window.recommendations.rows) and window.recommendations.thumbnails_ready()
                and window.spectrogram_panel.moments is not None)

    def passage() -> None:
        moments = window.spectrogram_panel.moments
        first = moments[0] if len(moments) == 1 else moments[len(moments) // 2]
        window.session.set_passage((float(first[0]) - 1.0, float(first[1]) + 1.0))
        wait(lambda: bool(window.recommendations.rows) and window.recommendations.thumbnails_ready(), explore_shot)

    def explore_shot() -> None:
        save(window, "explore")
        window.recommendations.rows[0].why_button.click()
        view = window.explorer.match_view
        view.resize(min(1000, width - 40), min(700, height - 40))
        wait(lambda: all(view.ready), lambda: (save(view, "match"), view.close(), path()))

    def path() -> None:
        window.session.set_passage(None)
        tracks = [t for t in window.songs.model.tracks() if t.status == "done"]
        anchor = window.anchor
        end = max(tracks, key=lambda t: -float(window.recommender.index.unit[window.recommender.index.row_of(t.id)]
                                               @ window.recommender.index.unit[window.recommender.index.row_of(anchor.id)]))
        view = window.explorer.show_path(anchor, end)
        view.length_box.setValue(min(8, len(tracks)))
        view.move(window.x() + width - view.width() - 20, window.y() + 60)
        map_panel = getattr(window, "map", None)
        if map_panel is not None:
            window.left_tabs.setCurrentWidget(map_panel)
        QTimer.singleShot(1500, lambda: (save(window, "path"), save(view, "path-list"), view.close(), map_shot()))

    def map_shot() -> None:
        map_panel = getattr(window, "map", None)
        if map_panel is not None:
            window.left_tabs.setCurrentWidget(map_panel)
            QTimer.singleShot(1500, lambda: (save(window, "map"), finish()))
        else:
            finish()

    def finish() -> None:
        for shot in shots:
            print(f"wrote {shot}", flush=True)
        window.close()
        app.quit()

    wait(shown, passage)
    app.exec()
    window.engine.shutdown()
    return 0 if shots else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=str(ROOT / "resources" / "demo"))
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return drive(args.folder, args.out_dir.resolve(), args.size, os.environ["MUSICREC_TOUR_TMP"])
    with tempfile.TemporaryDirectory(prefix="musicrec-tour-") as tmp:
        Path(tmp, ".asoundrc").write_text("pcm.!default { type null }\n")
        folder = Path(args.folder).resolve()
        if folder != (ROOT / "resources" / "demo").resolve():
            # A copy in the temporary home: the window names it "~/Music/…", not this machine's path.
            copy = Path(tmp, "Music", folder.name)
            shutil.copytree(folder, copy)
            args.folder = str(copy)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", HOME=tmp, MUSICREC_TOUR_TMP=tmp)
        env.pop("QT_QPA_PLATFORM", None)
        command = [sys.executable, __file__, "--inside", "--folder", args.folder, "--size", args.size,
                   "--out-dir", str(args.out_dir.resolve())]
        if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            command = ["xvfb-run", "-a", "-s", f"-screen 0 {args.size}x24"] + command
        elif not os.environ.get("DISPLAY"):
            env["QT_QPA_PLATFORM"] = "offscreen"
        return subprocess.run(command, cwd=ROOT, env=env, timeout=900).returncode


if __name__ == "__main__":
    sys.exit(main())
