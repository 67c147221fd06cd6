"""The library map at 100 000 to 1 000 000 songs: first draw, pan/zoom frames, hover, memory.

    python benchmarks/map_bench.py [--tracks 1000000] [--db PATH] [--baseline DIR] [--size 1600x1000]
                                   [--frames 30] [--screenshots DIR]
    python benchmarks/map_bench.py --quality LIBRARY --encoder-key KEY [--analysis-key spread8]

The first form fills a real library file with ``million_bench.fill_library`` (or reuses ``--db``
if it already holds ``--tracks`` songs): 200-d vectors of 300 styles of Zipf-distributed sizes,
each style's songs tagged with its tag. Then, in a fresh process for this tree and one for
``--baseline DIR`` (a ``git archive`` of an older tree), the real main window offscreen at
``--size``: Map tab opened → first frame (coloured by album), colour by top tag, pan and zoom
frames with the whole map in view and zoomed in to fewer than 40 000 songs (each: change the view range,
``processEvents()`` and a forced repaint with ``grab()``), the level of detail computed again
once the view stops, the hover lookup, 20 songs a scan adds, and the process's peak RSS.
``--screenshots DIR`` saves the window at the whole map and zoomed in (this tree only).

The second form measures how well PCA, t-SNE and UMAP (if installed) keep each song's ten
nearest songs near it on the map (scikit-learn's trustworthiness, k = 10), on the real song
vectors of a library, and times each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(os.environ.get("SCALE_BENCH_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from million_bench import KEY, fill_library  # noqa: E402

from musicrec_gui.core.config import AnalysisSettings  # noqa: E402

TAGS = ("rock", "electronic", "jazz", "classical", "pop", "ambient", "hip hop", "folk", "metal", "soul",
        "techno", "blues", "punk", "reggae", "country", "house", "funk", "piano", "experimental", "dance")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_window(db: str, size: str, frames: int, shots: str) -> dict:
    """The Map tab of the real window on ``db``, in this tree or a baseline's (``SCALE_BENCH_TREE``)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    from musicrec_gui.core.library import Library, Track
    from musicrec_gui.gui.player import NullPlayer
    from musicrec_gui.gui.preferences import open_store
    from musicrec_gui.gui.window import MainWindow

    app = QApplication.instance() or QApplication([])
    library = Library(db)
    tmp = tempfile.mkdtemp(prefix="map_bench")
    window = MainWindow(library, open_store(str(Path(tmp) / "s.ini")), player=NullPlayer("benchmark"),
                        autostart=False)
    width, height = (int(v) for v in size.split("x"))
    window.resize(width, height)
    window.show()
    window.session.encoder_key = KEY
    window.session.show_folder("/music")
    window.session.tag_names = TAGS
    panel, view = window.map, window.map.view
    layers = getattr(panel, "layers", None)  # None: a tree without level of detail
    app.processEvents()
    out = {"rss_before_map_mb": _rss_mb()}

    def settle() -> float:
        """Run the level of detail's pending refresh now (it waits for the view to stop); ms."""
        start = time.perf_counter()
        if layers is not None:
            layers.refresh()
        return 1000 * (time.perf_counter() - start)

    t = time.perf_counter()
    window.left_tabs.setCurrentIndex(1)
    while panel.map is None:
        app.processEvents()
        time.sleep(0.001)
    settle()
    panel.plot.grab()
    out["first_draw_s"] = time.perf_counter() - t
    out["songs"] = len(panel.map)
    t = time.perf_counter()
    panel.colour_box.setCurrentIndex(panel.colour_box.findData("tag"))
    settle()
    panel.plot.grab()
    out["recolour_s"] = time.perf_counter() - t

    def frame(change) -> float:
        start = time.perf_counter()
        change()
        app.processEvents()
        panel.plot.grab()
        return 1000 * (time.perf_counter() - start)

    def drawn() -> int:
        return sum(len(item.data) for item in panel.group_items)

    rng = np.random.default_rng(1)
    panel.show_all()
    settle()
    (x0, x1), (y0, y1) = view.viewRange()
    span = max(x1 - x0, y1 - y0)
    out["level_out"] = getattr(layers, "level", "all")
    out["drawn_out"] = drawn()
    out["pan_out_ms"] = [frame(lambda: view.translateBy(x=span * 0.02 * rng.choice([-1, 1]), y=span * 0.01))
                         for _ in range(frames)]
    out["zoom_out_ms"] = [frame(lambda s=s: view.scaleBy((s, s)))
                          for s in ([1 / 1.1] * 5 + [1.1] * 5) * max(1, frames // 10)]
    panel.show_all()
    out["refresh_out_ms"] = [settle() for _ in range(10)]
    if shots:
        window.grab().save(str(Path(shots) / "map-million.png"))
    hover_probes = [QPointF(float(x), float(y)) for x, y in zip(rng.uniform(x0, x1, 1000), rng.uniform(y0, y1, 1000))]
    start = time.perf_counter()
    panel.track_id_at(hover_probes[0])  # builds the k-d tree or the grid
    out["hover_first_ms"] = 1000 * (time.perf_counter() - start)
    out["hover_out_us"] = [1e6 * _timed(panel.track_id_at, p) for p in hover_probes]
    # Zoomed in around the middle of the map's densest part until fewer than 40 000 songs are in
    # view (from the points: the same view on both trees).
    centre = np.median(panel.map.points, axis=0)
    out["zoom_in"] = _zoom_until(view, panel.map.points, centre, 40_000)
    settle()
    out["level_in"] = getattr(layers, "level", "all")
    out["drawn_in"] = drawn()
    (x0, x1), (y0, y1) = view.viewRange()
    out["pan_in_ms"] = [frame(lambda: view.translateBy(x=(x1 - x0) * 0.02 * rng.choice([-1, 1]), y=0))
                        for _ in range(frames)]
    out["refresh_in_ms"] = [settle() for _ in range(10)]
    (x0, x1), (y0, y1) = view.viewRange()
    hover_probes = [QPointF(float(x), float(y)) for x, y in zip(rng.uniform(x0, x1, 1000), rng.uniform(y0, y1, 1000))]
    out["hover_in_us"] = [1e6 * _timed(panel.track_id_at, p) for p in hover_probes]
    if shots:  # the right edge of the map's rightmost cluster, zoomed in to its real points
        edge = panel.map.points[np.argsort(panel.map.points[:, 0])[int(0.998 * len(panel.map))]]
        panel.show_all()
        _zoom_until(view, panel.map.points, edge, 30_000)
        settle()
        app.processEvents()
        window.grab().save(str(Path(shots) / "map-million-zoom.png"))
    out["rss_before_add_mb"] = _rss_mb()
    # A scan finishing 20 songs: placed, then drawn at the next flush (and the level refreshed).
    songs = len(panel.map)
    vectors = np.abs(rng.standard_normal((20, panel.map.basis.dimension))).astype(np.float32)
    start = time.perf_counter()
    for i in range(20):
        new = Track(10_000_000 + i, f"/music/new/{i}.flac", 1, 1, f"New {i}", "Artist 1", "Album 1", 200.0,
                    "done", "")
        panel._add(new, vectors[i])
    panel._draw_added()
    settle()
    out["add_20_ms"] = 1000 * (time.perf_counter() - start)
    assert len(panel.map) == songs + 20
    out["peak_rss_mb"] = _rss_mb()
    if layers is None:  # nothing is computed once the view stops
        out["refresh_out_ms"] = out["refresh_in_ms"] = []
    return out


def _zoom_until(view, points: np.ndarray, centre: np.ndarray, songs: int) -> float:
    """Halve the view around ``centre`` until fewer than ``songs`` points are in it; the zoom factor."""
    from PySide6.QtCore import QRectF

    (x0, x1), (y0, y1) = view.viewRange()
    half, zoom = max(x1 - x0, y1 - y0) / 2, 1.0
    while True:
        x, y = float(centre[0]), float(centre[1])
        view.setRange(QRectF(x - half, y - half, 2 * half, 2 * half), padding=0)
        (x0, x1), (y0, y1) = view.viewRange()
        inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
        if inside.sum() < songs:
            return zoom
        half, zoom = half / 2, zoom * 2


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def run_child(db: Path, args, *, tree: str | None = None, shots: str = "") -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run([sys.executable, __file__, "--child", str(db), out.name, "--size", args.size,
                               "--frames", str(args.frames), "--screenshots", shots],
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SCALE_BENCH_TREE": tree or ""})
        text = Path(out.name).read_text()
        if not text:
            raise SystemExit(f"the window step failed (exit {done.returncode}) before writing its results")
        return json.loads(text)


def ensure_library(db: Path, tracks: int) -> None:
    have = 0
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            have = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    if have != tracks:
        db.unlink(missing_ok=True)
        t = time.perf_counter()
        fill_library(db, tracks, tag_names=TAGS)
        print(f"filled {tracks:,} songs in {time.perf_counter() - t:.0f} s ({db.stat().st_size / 1e9:.1f} GB)",
              file=sys.stderr)


def report(results: dict[str, dict], size: str) -> None:
    names = list(results)
    first = results[names[0]]

    def row(step: str, cell) -> None:
        print(f"| {step} | " + " | ".join(cell(results[n]) for n in names) + " |")

    def times(key: str, unit: str = "ms", digits: int = 1):
        return lambda r: (f"{percentile(r[key], 50):.{digits}f} / {percentile(r[key], 95):.{digits}f} {unit}"
                          if r.get(key) else "—")

    print(f"\n## Library map, {first['songs']:,} songs, window {size} (offscreen)\n")
    print("| step | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    row("Map tab opened → first frame drawn (coloured by album)", lambda r: f"{r['first_draw_s']:.1f} s")
    row("colour by top tag (regroup + redraw)", lambda r: f"{r['recolour_s']:.1f} s")
    row("whole map in view: what is drawn", lambda r: f"{r['level_out']}, {r['drawn_out']:,} points")
    row("frame: pan, whole map in view (median / p95)", times("pan_out_ms"))
    row("frame: zoom ×1.1 in and out, whole map (median / p95)", times("zoom_out_ms"))
    row("level of detail computed once the view stops, whole map (median / p95)", times("refresh_out_ms"))
    row("zoomed in (< 40 000 songs in view): what is drawn",
        lambda r: f"×{r['zoom_in']:.0f}: {r['level_in']}, {r['drawn_in']:,} points")
    row("frame: pan, zoomed in (median / p95)", times("pan_in_ms"))
    row("level of detail computed once the view stops, zoomed in (median / p95)", times("refresh_in_ms"))
    row("first hover (builds the k-d tree / the grid)", lambda r: f"{r['hover_first_ms']:.0f} ms")
    row("hover lookup, whole map / zoomed in (median / p95)",
        lambda r: f"{times('hover_out_us', 'µs', 0)(r)}; {times('hover_in_us', 'µs', 0)(r)}")
    row("a scan finished 20 songs: placed and drawn", lambda r: f"{r['add_20_ms']:.0f} ms")
    row("peak RSS: before the Map tab → map drawn and used → after the scan's songs (the map's vector copy grows)",
        lambda r: f"{r['rss_before_map_mb']:.0f} → {r['rss_before_add_mb']:.0f} → {r['peak_rss_mb']:.0f} MB")


def bench_map(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db or Path(tmp) / "map.sqlite3")
        ensure_library(db, args.tracks)
        shots = str(Path(args.screenshots).resolve()) if args.screenshots else ""
        results = {"this tree": run_child(db, args, shots=shots)}
        if args.baseline:
            results["baseline"] = run_child(db, args, tree=str(Path(args.baseline).resolve()))
        report(results, args.size)


def bench_quality(path: str, encoder_key: str, analysis_key: str) -> None:
    from sklearn.manifold import TSNE, trustworthiness

    from musicrec_gui.core.library import Library
    from musicrec_gui.core.projection import fit_basis
    from musicrec_gui.core.recommend import normalise_rows

    library = Library(path)
    _ids, vectors = library.vectors(encoder_key=encoder_key, analysis_key=analysis_key)
    library.close()
    unit = normalise_rows(vectors - vectors.mean(axis=0))  # the geometry the recommendations compare
    methods = {"PCA (musicrec)": lambda: fit_basis(vectors).project(vectors),
               "t-SNE (scikit-learn)": lambda: TSNE(2, init="pca", random_state=0, metric="cosine").fit_transform(unit)}
    try:
        import umap

        methods["UMAP (umap-learn)"] = lambda: umap.UMAP(metric="cosine", random_state=0).fit_transform(unit)
    except ImportError:
        pass
    print(f"{len(vectors)} songs, {vectors.shape[1]}-d\n\n| method | trustworthiness (k=10) | fit |\n|---|---|---|")
    for name, fit in methods.items():
        t = time.perf_counter()
        points = fit()
        seconds = time.perf_counter() - t
        score = trustworthiness(unit, points, n_neighbors=10, metric="cosine")
        print(f"| {name} | {score:.3f} | {seconds:.2f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--db", help="library file to fill, or to reuse if it already holds --tracks songs")
    parser.add_argument("--baseline", metavar="DIR", help="also measure the tree in DIR (a git archive)")
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--screenshots", metavar="DIR", default="", help="save the window's map here")
    parser.add_argument("--quality", metavar="LIBRARY", help="measure projection quality on this library's vectors")
    parser.add_argument("--encoder-key", default="")
    parser.add_argument("--analysis-key", default=AnalysisSettings().key)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db, out = args.child
        result = child_window(db, args.size, args.frames, args.screenshots)
        Path(out).write_text(json.dumps(result))
        sys.stdout.flush()
        os._exit(0)  # as the app ends: no interpreter finalization after Qt (gui/app.py)
    if args.quality:
        bench_quality(args.quality, args.encoder_key, args.analysis_key)
    else:
        bench_map(args)


if __name__ == "__main__":
    main()
