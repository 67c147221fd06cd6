"""The library map at 100 000 songs: projection, first draw, pan/zoom frames, hover.

    python benchmarks/map_bench.py [--tracks 100000] [--size 1600x1000] [--frames 60]
    python benchmarks/map_bench.py --quality LIBRARY --encoder-key KEY [--analysis-key spread8]

The first form fills a real library file (``scale_bench.fill_library``) with generated songs:
200-d vectors in 300 clusters, as an encoder's would bunch by style. It times the projection
(fitted and stored, then read back from the cache), then opens the real main window offscreen
at ``--size`` on the Map tab and times the first draw, pan and zoom frames (each: change the
view range, ``processEvents()`` and a forced repaint with ``grab()``), and the hover lookup.

The second form measures how well PCA, t-SNE and UMAP (if installed) keep each song's ten
nearest songs near it on the map (scikit-learn's trustworthiness, k = 10), on the real song
vectors of a library, and times each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale_bench import fill_library  # noqa: E402

from musicrec_gui.core.config import AnalysisSettings  # noqa: E402


def clustered_vectors(n: int, d: int = 200, clusters: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, (clusters, d))
    sizes = rng.zipf(1.6, clusters).astype(float)  # a few big styles, many small ones
    labels = rng.choice(clusters, n, p=sizes / sizes.sum())
    return np.maximum(centres[labels] + 0.4 * rng.standard_normal((n, d)), 0).astype(np.float32)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_map(tracks: int, size: str, frames: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    from musicrec_gui.core.library import Library
    from musicrec_gui.core.projection import LibraryMap
    from musicrec_gui.gui.player import NullPlayer
    from musicrec_gui.gui.preferences import open_store
    from musicrec_gui.gui.window import MainWindow

    analysis = AnalysisSettings().key
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "big.sqlite3"
        t = time.perf_counter()
        key = fill_library(db, tracks, vectors=clustered_vectors(tracks))
        print(f"filled {tracks:,} songs in {time.perf_counter() - t:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")
        library = Library(db)
        keys = {"encoder_key": key, "analysis_key": analysis, "under": "/music"}
        t = time.perf_counter()
        LibraryMap.from_library(library, use_cache=False, **keys)
        read_and_fit = time.perf_counter() - t
        t = time.perf_counter()
        ids, vectors = library.vectors(encoder_key=key, analysis_key=analysis, under="/music")
        read = time.perf_counter() - t
        t = time.perf_counter()
        first = LibraryMap.from_library(library, **keys)  # fits and stores the basis
        fit_store = time.perf_counter() - t
        t = time.perf_counter()
        cached = LibraryMap.from_library(library, **keys)
        hit = time.perf_counter() - t
        assert first.fitted and not cached.fitted
        t = time.perf_counter()
        for i in range(1000):
            cached.add(int(ids[i]), vectors[i] * 1.01)
        add_us = (time.perf_counter() - t) / 1000 * 1e6

        app = QApplication.instance() or QApplication([])
        width, height = (int(v) for v in size.split("x"))
        window = MainWindow(library, open_store(str(Path(tmp) / "s.ini")), player=NullPlayer("benchmark"),
                            autostart=False)
        window.resize(width, height)
        window.show()
        window.session.encoder_key = key
        window.session.show_folder("/music")
        panel = window.map
        app.processEvents()
        t = time.perf_counter()
        window.left_tabs.setCurrentIndex(1)
        while panel.map is None:
            app.processEvents()
            time.sleep(0.001)
        panel.plot.grab()
        first_draw = time.perf_counter() - t
        shown = sum(len(item.data) for item in panel.group_items)

        def frame(change) -> float:
            start = time.perf_counter()
            change()
            app.processEvents()
            panel.plot.grab()
            return 1000 * (time.perf_counter() - start)

        def one_paint(change) -> float:
            start = time.perf_counter()
            change()
            panel.plot.viewport().repaint()
            return 1000 * (time.perf_counter() - start)

        results = {}
        view = panel.view
        rng = np.random.default_rng(1)
        panel.show_all()
        (x0, x1), (y0, y1) = view.viewRange()
        span = max(x1 - x0, y1 - y0)
        results["pan, whole map in view"] = [frame(lambda: view.translateBy(x=span * 0.02 * rng.choice([-1, 1]),
                                                                              y=span * 0.01)) for _ in range(frames)]
        results["pan, whole map in view, one paint (viewport.repaint())"] = [
            one_paint(lambda: view.translateBy(x=span * 0.02 * rng.choice([-1, 1]), y=0)) for _ in range(frames)]
        # Zoom steps of ×1.1 around the whole map: every frame shows most of the points.
        results["zoom in and out, whole map"] = [frame(lambda s=s: view.scaleBy((s, s)))
                                                 for s in ([1 / 1.1] * 5 + [1.1] * 5) * max(1, frames // 10)]
        panel.show_all()
        view.scaleBy((0.1, 0.1))
        results["pan, zoomed ×10"] = [frame(lambda: view.translateBy(x=span * 0.002, y=0)) for _ in range(frames)]
        panel.show_all()
        t = time.perf_counter()
        panel.colour_box.setCurrentIndex(panel.colour_box.findData("artist"))
        recolour = time.perf_counter() - t
        t = time.perf_counter()
        panel._redraw_points()
        redraw = time.perf_counter() - t
        # A scan finishing songs: 20 songs placed, then drawn at the next flush.
        from musicrec_gui.core.library import Track

        t = time.perf_counter()
        for i in range(20):
            new = Track(10_000_000 + i, f"/music/new/{i}.flac", 1, 1, f"New {i}", "Artist 1", "Album 1", 200.0,
                        "done", "")
            panel._add(new, vectors[i] + 0.01)
        panel._draw_added()
        added_ms = 1000 * (time.perf_counter() - t)
        # Hover: the song under the mouse, as a mouse move asks for it.
        (x0, x1), (y0, y1) = view.viewRange()
        probes = [QPointF(float(x), float(y)) for x, y in zip(rng.uniform(x0, x1, 2000), rng.uniform(y0, y1, 2000))]
        panel.track_id_at(probes[0])  # builds the k-d tree once
        hover = []
        for probe in probes:
            t = time.perf_counter()
            panel.track_id_at(probe)
            hover.append(1e6 * (time.perf_counter() - t))
        t = time.perf_counter()
        panel._tree = None
        panel.track_id_at(probes[0])
        tree_ms = 1000 * (time.perf_counter() - t)

        print(f"\n## Library map, {tracks:,} songs, window {size} (offscreen)\n")
        print("| step | time |\n|---|---|")
        print(f"| read the folder's vectors ({vectors.shape[0]:,} × {vectors.shape[1]}) | {read * 1000:.0f} ms |")
        print(f"| projection, no cache: read + fit (PCA) + place every song | {read_and_fit * 1000:.0f} ms |")
        print(f"| projection, first time: read + fit + place + store the basis | {fit_store * 1000:.0f} ms |")
        print(f"| projection, cache hit: read + place on the cached basis | {hit * 1000:.0f} ms |")
        print(f"| place one song a scan finished | {add_us:.0f} µs |")
        print(f"| Map tab opened → first frame drawn ({shown:,} points) | {first_draw * 1000:.0f} ms |")
        for name, times in results.items():
            print(f"| frame: {name} (median / p95 / max of {len(times)}) | "
                  f"{percentile(times, 50):.1f} / {percentile(times, 95):.1f} / {max(times):.1f} ms |")
        print(f"| colour by artist (regroup + redraw) | {recolour * 1000:.0f} ms |")
        print(f"| redraw every point (after a refit at +25 % songs, or a new colouring) | {redraw * 1000:.0f} ms |")
        print(f"| a scan finished 20 songs: placed and drawn (appended) | {added_ms:.0f} ms |")
        print(f"| hover lookup (median / p95 of {len(hover)}) | {percentile(hover, 50):.0f} / "
              f"{percentile(hover, 95):.0f} µs |")
        print(f"| k-d tree build (once per change of the points) | {tree_ms:.0f} ms |")
        window.close()
        library.close()
    sys.stdout.flush()
    os._exit(0)  # as the app ends: no interpreter finalization after Qt (gui/app.py)


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
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--quality", metavar="LIBRARY", help="measure projection quality on this library's vectors")
    parser.add_argument("--encoder-key", default="")
    parser.add_argument("--analysis-key", default=AnalysisSettings().key)
    args = parser.parse_args()
    if args.quality:
        bench_quality(args.quality, args.encoder_key, args.analysis_key)
    else:
        bench_map(args.tracks, args.size, args.frames)


if __name__ == "__main__":
    main()
