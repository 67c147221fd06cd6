"""Whole-song scan speed: ``musicrec scan`` (default spread analysis) beside bliss-rs, in one run.

    python benchmarks/bliss_bench.py [--songs 64] [--repeats 2] [--corpus ~/.cache/musicrec-corpus]

The song set: ``--songs`` whole corpus tracks of 1 to 5 minutes, picked deterministically
(manifest rows sorted by package and path, then one package after another in turn), linked
into a temporary folder. Every candidate runs in its own fresh process on the same folder,
and the candidates alternate (the order is reversed on every other repeat) because these
machines are shared and noisy:

- ``musicrec scan`` with the bundled musicnn encoder, a fresh library each time: the wall
  time of the whole command (process start, TensorFlow's import and the model load
  included), the scan's own rate (``ScanFinished``: analysed / seconds; the lazy encoder
  load happens inside it) and the rate without the encoder load (TensorFlow import + model
  load, timed in the process, subtracted);
- the same with the compact encoder (``resources/encoder/compact.keras``), for reference;
- bliss-rs (``bliss-audio`` on PyPI, ``bliss_audio.Song(path)`` analyses a whole song) in
  2 worker processes; its Python binding holds the GIL during analysis, so 2 threads would
  run one song at a time (measured once with ``--bliss-threads``);
- ``musicrec scan`` again on the musicnn library: nothing new, the wall time of the command;
- with ``--baseline DIR``: ``musicrec scan`` (musicnn) from another source tree, e.g. the
  commit before a change (``git archive HEAD~1 | tar -x -C DIR``), in the same run.

CPU seconds (user + system of the child) are given beside each wall time: on a shared
machine they vary less than wall time. Output is Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # for training.config (last: a checkout under test still comes first)
from training.config import corpus_dir  # noqa: E402 - the one corpus setting

DEFAULT_CORPUS = corpus_dir()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--min-seconds", type=float, default=60.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--bliss-threads", action="store_true",
                        help="also time bliss with a ThreadPoolExecutor(2) in one process (once)")
    parser.add_argument("--only", default="", help="comma-separated subset: musicnn,student,compact,bliss,rescan")
    parser.add_argument("--student", type=Path, default=ROOT / "resources" / "encoder" / "student.keras",
                        help="the distilled student encoder (training/distill.py), measured as 'student'")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another musicrec source tree (e.g. `git archive` of an older commit) to time as "
                             "'musicnn (baseline)' in the same run")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- child processes ---------------------------------------------------------------
def worker_musicrec(folder: str, library: str, encoder: str, out: str) -> None:
    """``musicrec scan`` as the CLI runs it, noting the ScanFinished event and the encoder load time."""
    t_main = time.perf_counter()
    from musicrec_gui import cli
    from musicrec_gui.core import encoder as encoder_mod
    from musicrec_gui.core import scan as scan_mod

    record: dict = {"load_seconds": 0.0, "done_times": []}
    original_scan, original_load = scan_mod.scan, encoder_mod.LazyEncoder.load

    def load(self):
        t = time.perf_counter()
        try:
            return original_load(self)
        finally:
            if "loaded_at" not in record:
                record["load_seconds"] = time.perf_counter() - t
                record["loaded_at"] = time.perf_counter()

    def scan(*args, **kwargs):
        for event in original_scan(*args, **kwargs):
            if isinstance(event, scan_mod.TrackDone):
                record["done_times"].append(time.perf_counter())
            if isinstance(event, scan_mod.ScanFinished):
                record["finished"] = {"analysed": event.analysed, "failed": event.failed, "cached": event.cached,
                                      "seconds": event.seconds, "stages": event.stage_seconds}
            yield event

    scan_mod.scan = scan
    encoder_mod.LazyEncoder.load = load
    argv = ["scan", folder, "--library", library, "-q"] + (["--encoder", encoder] if encoder else [])
    code = cli.main(argv)
    record["exit"] = code
    record["in_process_seconds"] = time.perf_counter() - t_main
    record["tf_imported"] = "tensorflow" in sys.modules
    Path(out).write_text(json.dumps(record))


def _bliss_one(path: str):
    from bliss_audio import Song

    t = time.perf_counter()
    try:
        song = Song(path)
    except BaseException as err:  # noqa: BLE001 - a file it cannot open is a Rust panic (PanicException)
        return path, None, f"{type(err).__name__}: {str(err)[:200]}", time.perf_counter() - t
    return path, float(song.duration), len(song.analysis), time.perf_counter() - t


def worker_bliss(folder: str, out: str, how: str) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    files = sorted(str(p) for p in Path(folder).iterdir())
    start = time.perf_counter()
    if how == "processes":
        # spawn: bliss's native threads make fork unsafe (a forked pool hung in a trial).
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_bliss_one, files))
    else:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(_bliss_one, files))
    seconds = time.perf_counter() - start
    failed = [r for r in results if r[1] is None]
    Path(out).write_text(json.dumps({"analysed": len(results) - len(failed), "failed": len(failed),
                                     "errors": [r[2] for r in failed][:5], "seconds": seconds,
                                     "features": sorted({r[2] for r in results if r[1] is not None})}))


# -- orchestration (never imports TensorFlow) -------------------------------------------
def pick_songs(corpus: Path, n: int, lo: float, hi: float) -> list[dict]:
    rows = list(csv.DictReader(open(corpus / "manifest.tsv", newline=""), delimiter="\t"))
    rows = [r for r in rows if lo <= float(r["seconds"]) <= hi and (corpus / r["path"]).is_file()]
    rows.sort(key=lambda r: (r["package"], r["path"]))
    by_pkg: dict[str, list] = {}
    for r in rows:
        by_pkg.setdefault(r["package"], []).append(r)
    picked: list[dict] = []
    while len(picked) < n and any(by_pkg.values()):
        for pkg in sorted(by_pkg):
            if by_pkg[pkg] and len(picked) < n:
                picked.append(by_pkg[pkg].pop(0))
    return picked


def child(args: list[str], root: Path = ROOT) -> tuple[float, float]:
    """Run this script as a child; (wall seconds, CPU seconds of the child and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(root), "MUSICREC_BENCH_ROOT": str(root)}
    subprocess.run([sys.executable, __file__, "--worker", *args], check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, os.environ.get("MUSICREC_BENCH_ROOT", str(ROOT)))
    if args.worker:
        kind, *rest = args.worker
        if kind == "musicrec":
            worker_musicrec(*rest)
        else:
            worker_bliss(*rest)
        return
    if not (args.corpus / "manifest.tsv").exists():
        sys.exit(f"No corpus at {args.corpus}; fetch it with: python3 ../shared/corpus/fetch_corpus.py {args.corpus}")
    only = set(filter(None, args.only.split(","))) or {"musicnn", "compact", "bliss", "rescan"} | (
        {"student"} if args.student.is_file() else set())
    picked = pick_songs(args.corpus, args.songs, args.min_seconds, args.max_seconds)
    total_seconds = sum(float(r["seconds"]) for r in picked)
    packages = len({r["package"] for r in picked})
    encoders = {"musicnn": "", "compact": str(ROOT / "resources" / "encoder" / "compact.keras"), "baseline": "",
                "student": str(args.student)}
    if args.baseline:
        only.add("baseline")
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "songs"
        folder.mkdir()
        for i, r in enumerate(picked):
            src = args.corpus / r["path"]
            os.symlink(src, folder / f"{i:03d}{src.suffix}")
            src.read_bytes()  # into the page cache, so that no candidate pays the first read
        print(f"{len(picked)} songs from {packages} packages, {total_seconds / 60:.1f} min of audio "
              f"({total_seconds / len(picked):.0f} s average)", file=sys.stderr)

        def run_musicrec(name: str, rep: int) -> None:
            library = tmp / f"{name}-{rep}.sqlite3"
            out = tmp / f"{name}-{rep}.json"
            root = args.baseline if name == "baseline" else ROOT
            wall, cpu = child(["musicrec", str(folder), str(library), encoders[name], str(out)], root)
            record = json.loads(out.read_text())
            record.update(wall=wall, cpu=cpu)
            runs.setdefault(name, []).append(record)
            fin = record["finished"]
            print(f"  {name}: {fin['analysed']} songs, wall {wall:.1f} s, scan {fin['seconds']:.1f} s, "
                  f"load {record['load_seconds']:.1f} s, cpu {cpu:.1f} s, stages "
                  + ", ".join(f"{k} {v:.1f}" for k, v in fin["stages"].items()), file=sys.stderr)
            if name == "musicnn" and "rescan" in only:
                out2 = tmp / f"rescan-{rep}.json"
                wall2, cpu2 = child(["musicrec", str(folder), str(library), "", str(out2)])
                rescan = json.loads(out2.read_text())
                rescan.update(wall=wall2, cpu=cpu2)
                runs.setdefault("rescan", []).append(rescan)
                print(f"  rescan: wall {wall2:.2f} s, analysed {rescan['finished']['analysed']}, "
                      f"TensorFlow imported: {rescan['tf_imported']}", file=sys.stderr)

        def run_bliss(how: str) -> None:
            out = tmp / f"bliss-{how}.json"
            wall, cpu = child(["bliss", str(folder), str(out), how])
            record = json.loads(out.read_text())
            record.update(wall=wall, cpu=cpu)
            runs.setdefault(f"bliss-{how}", []).append(record)
            print(f"  bliss ({how}): {record['analysed']} songs, {record['seconds']:.1f} s, wall {wall:.1f} s, "
                  f"cpu {cpu:.1f} s, failed {record['failed']}", file=sys.stderr)

        order = [c for c in ("musicnn", "student", "bliss", "baseline", "compact")
                 if c in only or (c == "musicnn" and "rescan" in only)]
        for rep in range(args.repeats):
            print(f"repeat {rep + 1}/{args.repeats}", file=sys.stderr)
            for name in (order if rep % 2 == 0 else order[::-1]):
                if name == "bliss":
                    run_bliss("processes")
                else:
                    run_musicrec(name, rep)
        if args.bliss_threads:
            run_bliss("threads")

    def med(values):
        return statistics.median(values)

    print(f"\n## Whole-song scan beside bliss-rs ({os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})\n")
    print(f"{len(picked)} whole songs (1–5 min) from {packages} corpus packages, {total_seconds / 60:.1f} min of "
          f"audio; medians of {args.repeats} alternating repeats (each value: median [min–max]).\n")
    print("| candidate | songs | songs/s (whole command) | songs/s (scan) | songs/s (scan, encoder load excluded) "
          "| wall s | encoder load s | CPU s | decode s | features s | inference s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rates = {}
    labels = {"musicnn": "musicrec scan, musicnn encoder, spread 8",
              "baseline": f"baseline: musicrec scan from {args.baseline}, musicnn, spread 8",
              "compact": "musicrec scan, compact encoder, spread 8",
              "student": "musicrec scan, distilled student of musicnn, spread 8"}
    for name in ("musicnn", "student", "baseline", "compact"):
        if name not in runs:
            continue
        rs = runs[name]
        n = rs[0]["finished"]["analysed"]
        whole = [r["finished"]["analysed"] / r["wall"] for r in rs]
        own = [r["finished"]["analysed"] / r["finished"]["seconds"] for r in rs]
        warm = [r["finished"]["analysed"] / (r["finished"]["seconds"] - r["load_seconds"]) for r in rs]
        rates[name] = (med(whole), med(own), med(warm))
        st = {k: med([r["finished"]["stages"][k] for r in rs]) for k in ("decode", "features", "inference")}
        print(f"| {labels[name]} | {n} | {med(whole):.2f} [{min(whole):.2f}–{max(whole):.2f}] "
              f"| {med(own):.2f} [{min(own):.2f}–{max(own):.2f}] | **{med(warm):.2f}** [{min(warm):.2f}–{max(warm):.2f}] "
              f"| {med([r['wall'] for r in rs]):.1f} | {med([r['load_seconds'] for r in rs]):.1f} "
              f"| {med([r['cpu'] for r in rs]):.1f} | {st['decode']:.1f} | {st['features']:.1f} | {st['inference']:.1f} |")
    for how in ("processes", "threads"):
        key = f"bliss-{how}"
        if key not in runs:
            continue
        rs = runs[key]
        n = rs[0]["analysed"]
        whole = [r["analysed"] / r["wall"] for r in rs]
        own = [r["analysed"] / r["seconds"] for r in rs]
        rates[key] = (med(whole), med(own), med(own))
        label = "2 processes" if how == "processes" else "ThreadPoolExecutor(2), one process"
        print(f"| bliss-rs (bliss-audio {_bliss_version()}), whole songs, {label} | {n} | "
              f"{med(whole):.2f} [{min(whole):.2f}–{max(whole):.2f}] | **{med(own):.2f}** [{min(own):.2f}–{max(own):.2f}] "
              f"| — | {med([r['wall'] for r in rs]):.1f} | — | {med([r['cpu'] for r in rs]):.1f} | | | |")
    if "rescan" in runs:
        rs = runs["rescan"]
        walls = [r["wall"] for r in rs]
        print(f"\nRescan with nothing new (`musicrec scan`, whole command): **{med(walls):.2f} s** "
              f"[{min(walls):.2f}–{max(walls):.2f}], analysed {rs[0]['finished']['analysed']}, "
              f"TensorFlow imported: {rs[0]['tf_imported']}.")
    if "musicnn" in rates and "baseline" in rates:
        m, b = rates["musicnn"], rates["baseline"]
        print(f"\nmusicrec (musicnn) / baseline: {m[0] / b[0]:.2f}× whole command, {m[1] / b[1]:.2f}× scan, "
              f"{m[2] / b[2]:.2f}× with the encoder load excluded.")
    for name in ("musicnn", "student"):
        if name in rates and "bliss-processes" in rates:
            m, b = rates[name], rates["bliss-processes"]
            print(f"\nmusicrec ({name}) / bliss-rs: {m[0] / b[0]:.2f}× whole command, {m[1] / b[1]:.2f}× scan, "
                  f"{m[2] / b[1]:.2f}× with the encoder load excluded.")
    for rs in runs.values():
        for r in rs:
            r.pop("done_times", None)
    print("\n<details><summary>raw</summary>\n\n```json\n" + json.dumps(runs, indent=1, default=str)[:20000]
          + "\n```\n</details>")


def _bliss_version() -> str:
    try:
        from importlib.metadata import version

        return version("bliss-audio")
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    main()
