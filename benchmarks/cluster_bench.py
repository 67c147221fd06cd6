"""Songs/s of a local scan beside the same scan on a local two-node Ray cluster, in one run.

    python benchmarks/cluster_bench.py [--songs 64] [--corpus ~/.cache/musicrec-corpus]

The song set: ``--songs`` corpus tracks of 1 to 5 minutes, picked as bliss_bench.py picks them
(generated 2-minute songs in several formats when there is no corpus). The same files are
analysed with the bundled musicnn encoder (spread analysis, the default), each time into a
fresh library:

- ``local``: ``core.scan.scan`` in this process (2 decoding threads, the encoder on the scan's
  thread: ``musicrec scan``);
- ``ray shared`` and ``ray ship``: ``scan(..., analysis=RayAnalysis(...))`` against two Ray nodes
  started on this machine by tests/local_ray.py (one CPU each, one actor each): the nodes read
  the files themselves, or this process's node reads them and Ray carries the bytes.

Both use this machine's cores, so the cluster's numbers show its overhead, not a speed-up.
For each: the wall time of the scan, the time to the first analysed song (the encoder load:
TensorFlow's import and the model, in this process or in every actor, plus Ray's start of the
actors) and the rate after it. For the local scan also the CPU seconds per song (user +
system of this process over the scan, encoder loaded beforehand), the stage times, and the
bytes read per song (``rchar`` of /proc/self/io: what a node reads from a shared mount) beside
the files' mean size (what "ship" sends) and the result sent back per song. From those, on
paper: the hours for 500 000 songs on N workers. Output is Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # local_ray (the test's two-node cluster), audio_factory

import local_ray  # noqa: E402

local_ray.use_own_token()  # before Ray is imported

from training.config import corpus_dir  # noqa: E402

SONGS_500K = 500_000


def pick(corpus: Path, n: int, folder: Path) -> list[Path]:
    """Link ``n`` corpus songs (1–5 min) into ``folder``, or write generated ones there."""
    folder.mkdir(parents=True, exist_ok=True)
    if (corpus / "manifest.tsv").exists():
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bliss_bench import pick_songs

        rows = pick_songs(corpus, n, 60.0, 300.0)
        paths = []
        for i, row in enumerate(rows):
            source = corpus / row["path"]
            target = folder / f"{i:03d}{source.suffix}"
            target.symlink_to(source)
            paths.append(target)
        return paths
    from audio_factory import tone, write

    formats = [".flac", ".ogg", ".mp3", ".wav"]
    return [write(folder / f"{i:03d}{formats[i % 4]}", tone(120.0, sample_rate=44100, freqs=(110.0 * (1 + i % 7),),
                                                            noise=0.02, seed=i, channels=2), 44100)
            for i in range(n)]


def run(folder: Path, library_path: Path, encoder, analysis=None) -> dict:
    from musicrec_gui.core import scan as scan_mod
    from musicrec_gui.core.library import Library

    usage = resource.getrusage(resource.RUSAGE_SELF)
    io_before = _rchar()
    started = time.perf_counter()
    first = None
    with Library(library_path) as library:
        for event in scan_mod.scan(folder, library=library, encoder=encoder, analysis=analysis):
            if isinstance(event, (scan_mod.TrackDone, scan_mod.TrackFailed)) and first is None:
                first = time.perf_counter() - started
            finished = event
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    done = finished.analysed
    assert done and not finished.error, finished
    return {"wall": wall, "first": first, "songs": done, "failed": finished.failed,
            "cpu": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
            "rchar": _rchar() - io_before, "stages": finished.stage_seconds,
            "rate": done / wall, "rate_after_first": (done - 1) / max(1e-9, wall - first)}


def _rchar() -> int:
    try:
        for line in open("/proc/self/io"):
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=64)
    parser.add_argument("--corpus", type=Path, default=corpus_dir())
    args = parser.parse_args(argv)

    from musicrec_gui.core import features as features_mod
    from musicrec_gui.core.cluster import RayAnalysis
    from musicrec_gui.core.encoder import LazyEncoder, bundled_encoder_path, read_encoder_config

    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        tmp = Path(tmp)
        paths = pick(args.corpus, args.songs, tmp / "music")
        sizes = [os.path.getsize(os.path.realpath(p)) for p in paths]
        encoder = LazyEncoder(bundled_encoder_path())
        config = read_encoder_config(bundled_encoder_path())
        results = {}
        # Local first, with the encoder and the decoders loaded beforehand so its CPU and bytes are the songs'.
        t0 = time.perf_counter()
        encoder.load()
        features_mod.load_backend()
        load_seconds = time.perf_counter() - t0
        results["local"] = run(tmp / "music", tmp / "local.sqlite3", encoder)
        with local_ray.local_ray_cluster(tmp) as address:
            for files in ("shared", "ship"):
                analysis = RayAnalysis(address, files=files)
                results[f"ray {files}"] = run(tmp / "music", tmp / f"{files}.sqlite3", encoder, analysis)
                results[f"ray {files}"]["workers"] = dict(analysis.summary.by_worker)

    local = results["local"]
    n = local["songs"]
    cpu_per_song = local["cpu"] / n
    mean_size = sum(sizes) / len(sizes)
    read_per_song = local["rchar"] / n
    # What comes back per song: 8 patch vectors of d floats, the tag means, a few short strings and numbers.
    result_bytes = 8 * config.embedding_size * 4 + len(config.labels) * 4 + 300
    print(f"{n} songs ({len(paths)} files, mean {mean_size / 1e6:.1f} MB), musicnn, spread analysis; "
          f"encoder load in this process {load_seconds:.1f} s (not in the local row)\n")
    print("| run | wall s | first song after s | songs/s | songs/s after the first | songs per actor |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in results.items():
        workers = ", ".join(str(v) for v in r.get("workers", {}).values()) or "-"
        print(f"| {name} | {r['wall']:.1f} | {r['first']:.1f} | {r['rate']:.2f} | {r['rate_after_first']:.2f} | "
              f"{workers} |")
    stages = ", ".join(f"{k} {v / n * 1000:.0f} ms" for k, v in local["stages"].items())
    print(f"\nlocal, per song: {cpu_per_song:.2f} CPU s (user + system), stages {stages}; "
          f"read {read_per_song / 1e6:.2f} MB of its file (rchar), file {mean_size / 1e6:.2f} MB, "
          f"result {result_bytes / 1e3:.1f} kB\n")
    print("| 500 000 songs | 1 worker | 8 | 32 | 128 |")
    print("|---|---:|---:|---:|---:|")
    cells = " | ".join(f"{SONGS_500K * cpu_per_song / w / 3600:.1f} h" for w in (1, 8, 32, 128))
    print(f"| CPU-bound (one CPU per worker) | {cells} |")
    for label, per_song in (("ship: whole files over 1 Gbit/s (floor)", mean_size + result_bytes),
                            ("shared mount: bytes read over 1 Gbit/s (floor)", read_per_song + result_bytes)):
        hours = SONGS_500K * per_song / 125e6 / 3600
        print(f"| {label} | {hours:.1f} h | {hours:.1f} h | {hours:.1f} h | {hours:.1f} h |")


if __name__ == "__main__":
    main()
