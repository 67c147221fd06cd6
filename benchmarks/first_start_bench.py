"""First start on the demo: time from process start to a shown, analysed song list.

    python benchmarks/first_start_bench.py [--runs 2]

Each run is a fresh process with a fresh library and settings, the real bundled encoder and
offscreen Qt, opening

- the demo folder itself: its songs are seeded from ``resources/demo/vectors.npz`` before the
  encoder loads ("after");
- a copy of the demo folder: the same songs, not the demo, so they are analysed as any folder
  would be — load the encoder, then scan ("before", the app without shipped vectors).

It prints the seconds until every row says "analysed" and until the first song's
recommendations are shown, and the worst stall of the event loop meanwhile.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def child(folder: str, tmp: str) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from musicrec_gui.core.runtime import quiet_tensorflow

    quiet_tensorflow()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from musicrec_gui.core.library import Library
    from musicrec_gui.gui.player import NullPlayer
    from musicrec_gui.gui.preferences import open_store
    from musicrec_gui.gui.window import MainWindow

    app = QApplication([])
    library = Library(os.path.join(tmp, "library.sqlite3"))
    window = MainWindow(library, open_store(os.path.join(tmp, "settings.ini")), folder=folder,
                        player=NullPlayer("benchmark"))
    window.show()
    marks: dict[str, float] = {"window": time.perf_counter() - STARTED}
    last = [time.perf_counter()]
    worst = [0.0]

    def poll() -> None:
        now = time.perf_counter()
        worst[0] = max(worst[0], now - last[0])
        last[0] = now
        tracks = window.songs.model.tracks()
        if "analysed" not in marks and tracks and all(t.status == "done" for t in tracks):
            marks["analysed"] = now - STARTED
        if "recommendations" not in marks and len(window.recommendations.rows) >= 2:
            marks["recommendations"] = now - STARTED
        if "analysed" in marks and "recommendations" in marks or now - STARTED > 300:
            marks["worst_stall"] = worst[0]
            marks["encoder_loaded"] = window.engine.encoder_loaded
            print(json.dumps(marks), flush=True)
            sys.stdout.flush()
            os._exit(0)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(poll)
    timer.start()
    app.exec()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "TMP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    from musicrec_gui.core.resources import resource_path

    demo = resource_path("demo")
    results: dict[str, list[dict]] = {"demo (shipped vectors)": [], "copy of the demo (analysed)": []}
    with tempfile.TemporaryDirectory(prefix="musicrec-first-start-") as tmp:
        copy = Path(tmp, "copy")
        shutil.copytree(demo, copy)
        for run in range(args.runs):
            for label, folder in (("demo (shipped vectors)", demo), ("copy of the demo (analysed)", copy)):
                state = Path(tmp, f"{run}-{len(results[label])}-{label[:4]}")
                state.mkdir()
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", QT_QPA_PLATFORM="offscreen")
                out = subprocess.run([sys.executable, __file__, "--child", str(folder), str(state)], env=env,
                                     capture_output=True, text=True, timeout=600)
                line = next((x for x in out.stdout.splitlines() if x.startswith("{")), None)
                if line is None:
                    print(out.stdout, out.stderr, file=sys.stderr)
                    return 1
                results[label].append(json.loads(line))
                print(label, results[label][-1], flush=True)
    print("\n| first start | analysed list shown (s) | recommendations shown (s) | worst event-loop stall (ms) |")
    print("|---|---|---|---|")
    for label, runs in results.items():
        med = sorted(runs, key=lambda r: r["analysed"])[len(runs) // 2]
        print(f"| {label} | {med['analysed']:.2f} | {med['recommendations']:.2f} | {1000 * med['worst_stall']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
