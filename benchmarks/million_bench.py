"""A million songs: start-up, filtering, top-10 queries with exclusions, the map, memory.

    python benchmarks/million_bench.py [--tracks 1000000] [--baseline DIR] [--db PATH] [--only core|list]
                                       [--ann-compare 200000]
    python benchmarks/million_bench.py --db PATH --exact-sizes 100000,200000,500000,1000000

Fills a real library file (or reuses ``--db`` if it already holds ``--tracks`` songs) with
generated songs whose 200-d vectors look like an encoder's: 300 styles of Zipf-distributed
sizes, each a non-negative centre plus variation along 16 directions of its own and a little
noise (songs of one style differ in a few ways, not in all 200 at once); an artist's songs are
of one style, an album is one artist's. Then, each in a fresh process: the real main window
(offscreen) — process start → window shown with the list filled, filter keystrokes, the first
click (builds the index), top-10 queries with the same artist and album excluded, the Map tab,
and the process's peak RSS; the same on ``--baseline DIR`` (a ``git archive`` of an older tree)
in the same run; the song list alone (``list``: launch → first rows shown → all rows in, filter
keystrokes typed a letter at a time, RSS), on both trees too; and the ANN libraries' build time,
memory, query time and recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(os.environ.get("SCALE_BENCH_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

from musicrec_gui.core.config import AnalysisSettings  # noqa: E402

KEY = "bench"
STYLES = 300


def song_vectors(n: int, d: int = 200, *, seed: int = 0, chunk: int = 100_000):
    """Yield ``(first_row, vectors [shape=(m, d)] float32, style [shape=(m,)])`` chunks of ``n`` generated songs."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, (STYLES, d)).astype(np.float32)
    directions = (0.35 * rng.standard_normal((STYLES, 16, d))).astype(np.float32)
    sizes = rng.zipf(1.6, STYLES).astype(float)
    styles = rng.choice(STYLES, n, p=sizes / sizes.sum())
    for first in range(0, n, chunk):
        style = styles[first:first + chunk]
        latent = rng.standard_normal((len(style), 16)).astype(np.float32)
        v = centres[style] + np.einsum("mk,mkd->md", latent, directions[style])
        v += 0.05 * rng.standard_normal(v.shape).astype(np.float32)
        yield first, np.maximum(v, 0, out=v), style


def fill_library(path: Path, n: int, *, tag_names: tuple[str, ...] = ()) -> None:
    """A new library file of ``n`` analysed songs (vectors under encoder key :data:`KEY`), in bulk.

    One transaction, journal off, rows from generators: the whole file is written in a few minutes.
    With ``tag_names``, each song also gets tag probabilities whose top tag is its style's
    (style ``s``: ``tag_names[s % len(tag_names)]``), as an encoder's tag head would give.
    """
    from musicrec_gui.core.library import Library

    Library(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -200000")
    analysis = AnalysisSettings().key
    with conn:
        for first, vectors, style in song_vectors(n):
            # An artist's songs share a style (about 15 songs each); an album is one artist's (about 5).
            artist = style * 10_000 + (np.arange(first, first + len(style)) * 7919) % max(1, n // STYLES // 15 + 1)
            rows = range(first, first + len(style))
            conn.executemany(
                "INSERT INTO tracks (id, path, size, mtime_ns, title, artist, album, duration, status) "
                "VALUES (?, ?, 1000, 1, ?, ?, ?, 200.0, 'done')",
                ((i + 1, os.fsencode(f"/music/artist{a}/album{a}-{i % 3}/track {i}.flac"), f"Track {i}",
                  f"Artist {a}", f"Album {a}-{i % 3}") for i, a in zip(rows, artist.tolist())))
            conn.executemany(
                "INSERT INTO vectors (track_id, encoder_key, analysis_key, vector, slice_vectors, n_slices, "
                f"offset_seconds, tags) VALUES (?, '{KEY}', '{analysis}', ?, ?, 1, 0.0, ?)",
                ((i + 1, v.tobytes(), v.tobytes(), t) for i, v, t in zip(rows, vectors, _tag_blobs(style, tag_names))))
    conn.close()


def _tag_blobs(style: np.ndarray, tag_names: tuple[str, ...]):
    """Each song's tag probabilities as the vectors table stores them (None without ``tag_names``)."""
    if not tag_names:
        return [None] * len(style)
    probabilities = np.full((len(style), len(tag_names)), 0.05, np.float32)
    probabilities[np.arange(len(style)), style % len(tag_names)] = 0.9
    return [row.tobytes() for row in probabilities]


def _bundled_tag_names() -> tuple[str, ...]:
    from musicrec_gui.core.encoder import bundled_encoder_path, read_encoder_config

    return tuple(read_encoder_config(bundled_encoder_path()).labels)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_core(path: str) -> dict:
    """What the app does with the library, without the window: open it, list the songs as the song
    list reads them, build the vector index, query it (exact; then through the ANN index when this
    tree has one), in this tree or a baseline's (``SCALE_BENCH_TREE``)."""
    t0 = time.perf_counter()
    from musicrec_gui.core.library import Library
    from musicrec_gui.core.recommend import VectorIndex

    analysis = AnalysisSettings().key
    library = Library(path)
    out = {"open_s": time.perf_counter() - t0}
    t = time.perf_counter()
    tracks = library.tracks(under="/music", encoder_key=KEY, analysis_key=analysis)
    out.update(list_s=time.perf_counter() - t, list_rss_mb=_rss_mb(), tracks=len(tracks))
    t = time.perf_counter()
    index = VectorIndex.from_library(library, encoder_key=KEY, analysis_key=analysis, tracks=tracks, under="/music")
    out.update(index_s=time.perf_counter() - t, index_rss_mb=_rss_mb())
    rng = np.random.default_rng(7)
    anchors = [tracks[i].id for i in rng.choice(len(tracks), 200, replace=False)]
    options = {"k": 10, "exclude_same_artist": True, "exclude_same_album": True}

    def timed(queries):
        times, found = [], []
        for track_id in queries:
            t = time.perf_counter()
            found.append([r.track.id for r in index.similar(track_id, **options)])
            times.append(1000 * (time.perf_counter() - t))
        return times, found

    exact_times, exact = timed(anchors[:50])  # exact at a million: ~0.2 s each, 50 are enough
    out.update(exact_ms_median=float(np.median(exact_times)), exact_ms_p95=float(np.percentile(exact_times, 95)))
    if hasattr(index, "build_ann"):
        exact += timed(anchors[50:])[1]
        t = time.perf_counter()
        built = index.build_ann()
        out.update(ann_ready_s=time.perf_counter() - t, ann_built=built, ann_rss_mb=_rss_mb(),
                   ann_loaded=getattr(index, "ann_loaded", False), ann_builds=getattr(index, "ann_builds", 1),
                   **{f"ann_{step}_s": s for step, s in getattr(index, "ann_seconds", {}).items()})
        graph = getattr(index, "ann_graph_path", None)
        if graph is not None and Path(graph).exists():
            out["ann_file_mb"] = Path(graph).stat().st_size / 1e6
        if built:
            timed(anchors[:10])  # warm-up
            times, found = timed(anchors)
            recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact)])
            out.update(ann_ms_median=float(np.median(times)), ann_ms_p95=float(np.percentile(times, 95)),
                       recall_at_10=float(recall))
    out["peak_rss_mb"] = _rss_mb()
    return out


def child_list(path: str) -> dict:
    """The song list as the app shows it (session + list panel, offscreen, no encoder): process start →
    first rows shown → all rows in (sorted by title), then typing 4-letter words a letter at a time
    (each pass timed without the debounce, with the view's layout), and the process's RSS."""
    launched = float(os.environ.get("MILLION_BENCH_LAUNCHED") or time.time())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication

    from musicrec_gui.core.library import Library
    from musicrec_gui.gui.session import Session
    from musicrec_gui.gui.songlist import SongListPanel

    class Engine(QObject):
        event = Signal(object)

    app = QApplication([])
    library = Library(path)
    session = Session(library, "/nonexistent/encoder.keras")
    session.encoder_key = KEY  # the list shows each song's status under the encoder in use
    panel = SongListPanel(session, Engine())
    panel.resize(900, 700)
    panel.show()
    session.show_folder("/music")
    app.processEvents()
    first = time.time() - launched
    first_rows = panel.model.rowCount()
    longest = 0.0
    while getattr(session, "loading", False):
        t = time.perf_counter()
        app.processEvents()
        longest = max(longest, time.perf_counter() - t)
    all_in = time.time() - launched
    t = time.perf_counter()
    app.processEvents()  # what the list does once all are in (the filter's index)
    after = time.perf_counter() - t
    rows = panel.model.rowCount()
    keystrokes = {}
    for word in ("trac", "1234", "7777", "lbum"):
        times = []
        for end in range(1, len(word) + 1):
            t = time.perf_counter()
            panel._apply_filter(word[:end])
            app.processEvents()
            times.append(1000 * (time.perf_counter() - t))
        keystrokes[word] = {"ms": [round(x, 1) for x in times], "shown": panel.proxy.rowCount()}
        t = time.perf_counter()
        panel._apply_filter("")
        app.processEvents()
        keystrokes[word]["clear_ms"] = round(1000 * (time.perf_counter() - t), 1)
    all_ms = [x for k in keystrokes.values() for x in k["ms"]]
    return {"first_rows_s": round(first, 2), "first_rows": first_rows, "all_rows_s": round(all_in, 2),
            "rows": rows, "longest_event_s": round(longest, 2), "index_after_s": round(after, 2),
            "keystroke_ms_p50": round(float(np.percentile(all_ms, 50)), 1),
            "keystroke_ms_p95": round(float(np.percentile(all_ms, 95)), 1), "keystrokes": keystrokes,
            "rss_mb": round(_rss_now_mb()), "peak_rss_mb": round(_rss_mb())}


def child_app(path: str) -> dict:
    """The whole app as a user meets it (the real main window, offscreen): process start → list
    filled, the first song picked (the vector index built, the ANN graph loaded) and answered, the
    Map tab drawn; then memory: private (anonymous) and file-backed (the memory-mapped graph) RSS,
    the peak, and whether TensorFlow was imported."""
    launched = float(os.environ.get("MILLION_BENCH_LAUNCHED") or time.time())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from musicrec_gui.core.library import Library
    from musicrec_gui.gui.player import NullPlayer
    from musicrec_gui.gui.preferences import open_store
    from musicrec_gui.gui.window import MainWindow

    app = QApplication([])
    tmp = tempfile.mkdtemp(prefix="million-app")
    window = MainWindow(Library(path), open_store(str(Path(tmp) / "s.ini")), player=NullPlayer("benchmark"),
                        autostart=False)
    window.resize(1600, 1000)
    window.show()
    window.session.encoder_key = KEY
    window.session.show_folder("/music")

    def wait(condition, limit=1800.0):
        deadline = time.perf_counter() + limit
        while not condition() and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.005)

    wait(lambda: not window.session.loading)
    out = {"list_s": round(time.time() - launched, 1), "list_rss": _rss_parts()}
    t = time.perf_counter()
    window.select_track(window.songs.model.track_at(12345).id)  # (as older trees spell it too)
    wait(lambda: len(window.recommendations.rows) > 0)
    out.update(first_answer_s=round(time.perf_counter() - t, 1), answer_rss=_rss_parts())
    t = time.perf_counter()
    drawn = []
    window.map.ready.connect(lambda: drawn.append(True))
    window.left_tabs.setCurrentWidget(window.map)
    wait(lambda: bool(drawn))
    wait(lambda: False, 1.0)  # the level of detail's first drawing
    out.update(map_s=round(time.perf_counter() - t, 1), map_rss=_rss_parts(), peak_rss_mb=round(_rss_mb()),
               tensorflow_imported="tensorflow" in sys.modules, songs=window.songs.model.rowCount())
    return out


def _rss_parts() -> dict:
    """Private (anonymous) and file-backed resident memory, MB."""
    with open("/proc/self/status") as status:
        parts = dict(line.split(":", 1) for line in status if line.startswith(("RssAnon", "RssFile")))
    return {key: round(int(value.split()[0]) / 1024) for key, value in parts.items()}


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
def child_exact_sizes(arg: str) -> dict:
    """Exact top-10 with the same artist and album excluded, on the first n songs of the library
    for each n of ``arg`` ("path,n1,n2,..."), each on an index of exactly those songs: where exact
    search stops meeting the 20 ms p95 target (what sets ``ANN_MIN_SONGS``)."""
    from musicrec_gui.core.library import Library
    from musicrec_gui.core.recommend import VectorIndex

    path, *sizes = arg.split(",")
    analysis = AnalysisSettings().key
    library = Library(path)
    tracks = library.tracks(under="/music", encoder_key=KEY, analysis_key=analysis)
    ids, raw = library.vectors(encoder_key=KEY, analysis_key=analysis, under="/music")
    by_id = {t.id: t for t in tracks}
    ordered = [by_id[i] for i in ids.tolist()]
    del tracks, by_id
    options = {"k": 10, "exclude_same_artist": True, "exclude_same_album": True}
    out = {}
    for n in sorted(int(s) for s in sizes):
        n = min(n, len(ordered))
        # An exact index whatever the size (ANN above every n): the time the exact path costs.
        index = VectorIndex(ordered[:n], raw[:n], copy=n < len(ordered), ann_min_songs=10**9)
        rng = np.random.default_rng(7)
        anchors = [ordered[i].id for i in rng.choice(n, 200, replace=False)]
        for track_id in anchors[:10]:  # warm-up
            index.similar(track_id, **options)
        times, cpu = [], []
        for track_id in anchors:
            t, c = time.perf_counter(), time.thread_time()
            index.similar(track_id, **options)
            times.append(1000 * (time.perf_counter() - t))
            cpu.append(1000 * (time.thread_time() - c))
        # Wall time is what a click waits; CPU time tells the machine's load from the code's cost.
        out[str(n)] = {"exact_ms_median": float(np.median(times)), "exact_ms_p95": float(np.percentile(times, 95)),
                       "cpu_ms_median": float(np.median(cpu)), "cpu_ms_p95": float(np.percentile(cpu, 95)),
                       "load_average": os.getloadavg()[0]}
        print(n, out[str(n)], file=sys.stderr, flush=True)
        del index
    return out


def child_ann_compare(n: str) -> dict:
    """usearch, faiss (IVF and HNSW) and hnswlib on the first ``n`` generated songs: build time,
    memory, query p95 and recall@10 against exact search (what chose usearch)."""
    n = int(n)
    v = np.concatenate([c[1] for c in song_vectors(n)])
    u = v - v.mean(0)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    queries = np.random.default_rng(5).choice(n, 300, replace=False)
    exact = []
    for r in queries:
        s = u @ u[r]
        s[r] = -9
        exact.append(set(np.argpartition(-s, 10)[:10].tolist()))
    results = {}

    def measure(name, build, search):
        t = time.perf_counter()
        extra = build()
        built = time.perf_counter() - t
        recall, times = 0.0, []
        for r, e in zip(queries, exact):
            t = time.perf_counter()
            keys = [k for k in search(r) if k != r][:10]
            times.append(1000 * (time.perf_counter() - t))
            recall += len(set(keys) & e) / 10
        results[name] = {"build_s": built, "recall": recall / len(queries), "p95_ms": float(np.percentile(times, 95)),
                         "extra_mb": extra}
        print(name, results[name], file=sys.stderr, flush=True)

    from usearch.index import Index
    box = {}

    def usearch_build():
        box["u"] = Index(ndim=u.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128,
                         expansion_search=128)
        box["u"].add(np.arange(n), u, copy=False, threads=2)
        return box["u"].memory_usage / 1e6
    measure("usearch HNSW f32, vectors not copied (M=16, ef 128/128)", usearch_build,
            lambda r: box["u"].search(u[r], 80, threads=1).keys.tolist())
    del box["u"]
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        def ivf_build():
            faiss.omp_set_num_threads(2)
            lists = int(4 * np.sqrt(n))
            box["f"] = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(u.shape[1]), u.shape[1], lists,
                                                     faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
            box["f"].train(u[np.random.default_rng(0).choice(n, min(n, 50 * lists), replace=False)])
            box["f"].add(u)
            box["f"].nprobe = 64
            faiss.omp_set_num_threads(1)
            return n * u.shape[1] * 2 / 1e6
        measure("faiss IVF, fp16 codes (4·√n lists, nprobe 64)", ivf_build,
                lambda r: box["f"].search(u[r:r + 1], 80)[1][0].tolist())

        def fh_build():
            faiss.omp_set_num_threads(2)
            box["h"] = faiss.IndexHNSWSQ(u.shape[1], faiss.ScalarQuantizer.QT_fp16, 16, faiss.METRIC_INNER_PRODUCT)
            box["h"].hnsw.efConstruction = 128
            box["h"].add(u)
            box["h"].hnsw.efSearch = 128
            faiss.omp_set_num_threads(1)
            return n * u.shape[1] * 2 / 1e6 + n * 16 * 2 * 4 / 1e6
        measure("faiss HNSW, fp16 codes (M=16, ef 128/128)", fh_build,
                lambda r: box["h"].search(u[r:r + 1], 80)[1][0].tolist())
        box.clear()
    try:
        import hnswlib
    except ImportError:
        hnswlib = None
    if hnswlib is not None:
        def hl_build():
            box["l"] = hnswlib.Index(space="ip", dim=u.shape[1])
            box["l"].init_index(max_elements=n, ef_construction=128, M=16)
            box["l"].add_items(u, num_threads=2)
            box["l"].set_ef(128)
            return n * (u.shape[1] * 4 + 16 * 2 * 4) / 1e6
        measure("hnswlib (M=16, ef 128/128; float32 copy)", hl_build,
                lambda r: box["l"].knn_query(u[r], 80, num_threads=1)[0][0].tolist())
    return results


def run_child(kind: str, arg: str, *, tree: str | None = None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run([sys.executable, __file__, "--child", kind, arg, out.name],
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SCALE_BENCH_TREE": tree or "",
                                   "MILLION_BENCH_LAUNCHED": repr(time.time())})
        text = Path(out.name).read_text()
        if not text:
            raise SystemExit(f"the {kind} step failed (exit {done.returncode}) before writing its results")
        return json.loads(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--db", help="library file to fill, or to reuse if it already holds --tracks songs")
    parser.add_argument("--baseline", metavar="DIR", help="also run each step on the tree in DIR")
    parser.add_argument("--ann-compare", type=int, default=0, metavar="N",
                        help="compare the ANN libraries on N songs (0: skip)")
    parser.add_argument("--only", choices=["core", "list", "app"], help="run one step (all by default)")
    parser.add_argument("--exact-sizes", metavar="N,N,...",
                        help="only time exact top-10 queries on the first N songs for each N (sets ANN_MIN_SONGS)")
    parser.add_argument("--tags", action="store_true",
                        help="a new library's songs get tag probabilities over the bundled encoder's tags, as the "
                             "default encoder stores them (the app's tag: filter and map colours then have work)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, arg, out = args.child
        result = {"core": child_core, "list": child_list, "app": child_app, "ann": child_ann_compare,
                  "exact": child_exact_sizes}[kind](arg)
        Path(out).write_text(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db or Path(tmp) / "million.sqlite3")
        have = 0
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                have = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        if have != args.tracks:
            db.unlink(missing_ok=True)
            t = time.perf_counter()
            fill_library(db, args.tracks, tag_names=_bundled_tag_names() if args.tags else ())
            print(f"filled {args.tracks:,} songs in {time.perf_counter() - t:.0f} s "
                  f"({db.stat().st_size / 1e9:.1f} GB)", file=sys.stderr)
        if args.exact_sizes:
            print(json.dumps(run_child("exact", f"{db},{args.exact_sizes}"), indent=1))
            return
        for step in ("core", "list", "app"):
            if args.only not in (None, step):
                continue
            if step == "core":
                graphs = db.with_name(db.name + ".ann")
                if (graphs / "musicrec-ann.json").is_file():  # musicrec's saved graphs: the first start builds anew
                    shutil.rmtree(graphs)
                # The first start builds the graph and saves it beside the library; the second loads it.
                results = {"this tree, first start": run_child("core", str(db)),
                           "this tree, second start": run_child("core", str(db))}
            else:
                results = {"this tree": run_child(step, str(db))}
            if args.baseline:
                results["baseline"] = run_child(step, str(db), tree=args.baseline)
            print(json.dumps({step: results}, indent=1), flush=True)
        if args.ann_compare:
            print(json.dumps(run_child("ann", str(args.ann_compare)), indent=1))


if __name__ == "__main__":
    main()
