"""The explorer at scale, and whether its paths are smooth: numbers beside a baseline in the same run.

    python benchmarks/explore_bench.py [--tracks 100000] [--repeats 50] [--quality-library FILE]

Part 1 fills a real library file with ``--tracks`` songs as the bundled encoder stores them
(200-d song vectors, 8 patch vectors each, 50 tag probabilities; clustered, so neighbours are
not all ties) and times, on one index: a song's top 10 (the baseline every click already pays),
songs like a passage (read the anchor's moments, shortlist, re-rank by best moment), a path of
10 songs, the closest moment pairs of two songs, the radio's next song, and reading every song's
tags for ``tag:`` (p50 / p95 in ms).

Part 2, given a library scanned with the real encoder (``musicrec --library FILE scan DIR``),
measures paths between 60 random pairs of its songs: the mean and worst similarity of each step
to the one before, and the share of steps that come nearer the end, against the same number of
random songs put in order of nearness to the end.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicrec_gui.core import explore  # noqa: E402
from musicrec_gui.core.config import AnalysisSettings, FeatureConfig  # noqa: E402
from musicrec_gui.core.library import Library  # noqa: E402
from musicrec_gui.core.recommend import VectorIndex  # noqa: E402
from musicrec_gui.core.tags import top_tag_names  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_bench import insert_tracks  # noqa: E402

KEY, D, PATCHES, TAGS = "bench", 200, 8, 50


def fill_library(path: Path, n: int) -> None:
    Library(path).close()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((300, D)).astype(np.float32) * 2
    analysis = AnalysisSettings().key
    conn = sqlite3.connect(path)
    with conn:
        insert_tracks(conn, n)
        for first in range(0, n, 10_000):
            ids = np.arange(first, min(n, first + 10_000))
            patches = centres[ids % len(centres)][:, None, :] + rng.standard_normal((len(ids), PATCHES, D),
                                                                                    dtype=np.float32)
            tags = rng.dirichlet(np.full(TAGS, 0.3), len(ids)).astype(np.float32)
            conn.executemany(
                "INSERT INTO vectors (track_id, encoder_key, analysis_key, vector, slice_vectors, n_slices, "
                "offset_seconds, tags) VALUES (?, ?, ?, ?, ?, ?, 0.0, ?)",
                ((int(i) + 1, KEY, analysis, patches[j].mean(axis=0).tobytes(), patches[j].tobytes(), PATCHES,
                  tags[j].tobytes()) for j, i in enumerate(ids)))
    conn.close()


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def scale(tracks: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="musicrec-explore-") as tmp:
        path = Path(tmp) / "library.sqlite3"
        start = time.perf_counter()
        fill_library(path, tracks)
        print(f"filled {tracks} songs in {time.perf_counter() - start:.1f} s")
        library = Library(path)
        settings, features = AnalysisSettings(), FeatureConfig()
        keys = {"encoder_key": KEY, "analysis_key": settings.key}
        start = time.perf_counter()
        index = VectorIndex.from_library(library, **keys)
        print(f"index of {len(index)} songs built in {time.perf_counter() - start:.2f} s")
        rng = np.random.default_rng(1)
        anchors = [index.tracks[int(i)] for i in rng.integers(0, len(index), repeats + 1)]
        ends = [index.tracks[int(i)] for i in rng.integers(0, len(index), repeats + 1)]
        turn = {"i": 0}

        def anchor():
            turn["i"] = (turn["i"] + 1) % len(anchors)
            return anchors[turn["i"]]

        def passage():
            track = anchor()
            stored, offset = library.slice_vectors(track.id, **keys)
            spans = explore.patch_spans(n_patches=len(stored), duration=track.duration, offset_seconds=offset,
                                        settings=settings, features=features)
            used = explore.patches_in(spans, spans[2, 0], spans[3, 1])
            explore.passage_neighbours(index, library, anchor_id=track.id, passage=stored[used], k=10,
                                       settings=settings, features=features, **keys)

        def path():
            track = anchor()
            end = ends[turn["i"]]
            if end.id != track.id:
                explore.song_path(index, start_id=track.id, end_id=end.id, length=10)

        def moments():
            track = anchor()
            a = library.slice_vectors(track.id, **keys)[0]
            b = library.slice_vectors(ends[turn["i"]].id, **keys)[0]
            explore.closest_moments(a, b, index=index)

        played = [t.id for t in anchors[:20]]
        rows = [
            ("top 10 of a song (baseline)", lambda: index.similar(anchor().id, k=10)),
            ("songs like a passage, top 10", passage),
            ("path of 10 songs", path),
            ("closest moment pairs of two songs", moments),
            ("radio's next song (20 played)", lambda: explore.radio_next(index, current_id=anchor().id,
                                                                          played=played)),
        ]
        print(f"\n{'query on ' + str(len(index)) + ' songs':<40} {'p50 ms':>8} {'p95 ms':>8}")
        for name, fn in rows:
            p50, p95 = timed(fn, repeats)
            print(f"{name:<40} {p50:8.1f} {p95:8.1f}")
        names = tuple(f"tag{i}" for i in range(TAGS))

        def tags():
            ids, table = library.tag_table(**keys)
            top_tag_names(table, names)

        p50, p95 = timed(tags, 3)
        print(f"{'every song tags for tag: (worker)':<40} {p50:8.1f} {p95:8.1f}")
        library.close()


def quality(path: str) -> None:
    from musicrec_gui.core.encoder import bundled_encoder_path, read_encoder_config

    library = Library(path)
    config = read_encoder_config(bundled_encoder_path())
    index = VectorIndex.from_library(library, encoder_key=config.key, analysis_key=AnalysisSettings().key)
    unit, ids = index.unit, [t.id for t in index.tracks]
    rng = np.random.default_rng(1)
    pairs = [tuple(int(x) for x in rng.choice(ids, 2, replace=False)) for _ in range(60)]
    length = 6

    def measure(sequences):
        steps = [[float(unit[index.row_of(a)] @ unit[index.row_of(b)]) for a, b in zip(s, s[1:])] for s in sequences]
        onward = [np.mean(np.diff([float(unit[index.row_of(x)] @ unit[index.row_of(s[-1])]) for x in s]) > 0)
                  for s in sequences]
        return np.mean([np.mean(s) for s in steps]), np.mean([min(s) for s in steps]), np.mean(onward)

    paths = [[step.track.id for step in explore.song_path(index, start_id=a, end_id=b, length=length)]
             for a, b in pairs]
    randoms = []
    for a, b in pairs:
        middle = [int(x) for x in rng.choice([i for i in ids if i not in (a, b)], length - 2, replace=False)]
        middle.sort(key=lambda i: float(unit[index.row_of(i)] @ unit[index.row_of(b)]))
        randoms.append([a, *middle, b])
    direct = np.mean([float(unit[index.row_of(a)] @ unit[index.row_of(b)]) for a, b in pairs])
    print(f"\npaths of {length} songs between 60 random pairs of {len(index)} real songs "
          f"(cosine, centred; start to end directly: {direct:.3f})")
    print(f"{'':<36} {'mean step':>10} {'worst step':>11} {'onward':>8}")
    for name, sequences in (("song_path", paths), ("random songs, ordered toward the end", randoms)):
        mean, worst, onward = measure(sequences)
        print(f"{name:<36} {mean:10.3f} {worst:11.3f} {onward:8.0%}")
    library.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--quality-library", help="a library scanned with the bundled encoder")
    args = parser.parse_args()
    scale(args.tracks, args.repeats)
    if args.quality_library:
        quality(args.quality_library)


if __name__ == "__main__":
    main()
