"""A million songs: start-up, filtering, top-10 queries with exclusions, the map, memory.

    python benchmarks/million_bench.py [--tracks 1000000] [--baseline DIR] [--db PATH] [--ann-compare 200000]

Fills a real library file (or reuses ``--db`` if it already holds ``--tracks`` songs) with
generated songs whose 200-d vectors look like an encoder's: 300 styles of Zipf-distributed
sizes, each a non-negative centre plus variation along 16 directions of its own and a little
noise (songs of one style differ in a few ways, not in all 200 at once); an artist's songs are
of one style, an album is one artist's. Then, each in a fresh process: the real main window
(offscreen) — process start → window shown with the list filled, filter keystrokes, the first
click (builds the index), top-10 queries with the same artist and album excluded, the Map tab,
and the process's peak RSS; the same on ``--baseline DIR`` (a ``git archive`` of an older tree)
in the same run; and the ANN libraries' build time, memory, query time and recall@10 against
exact search.
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


def fill_library(path: Path, n: int) -> None:
    """A new library file of ``n`` analysed songs (vectors under encoder key :data:`KEY`), in bulk.

    One transaction, journal off, rows from generators: the whole file is written in a few minutes.
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
                f"offset_seconds) VALUES (?, '{KEY}', '{analysis}', ?, ?, 1, 0.0)",
                ((i + 1, v.tobytes(), v.tobytes()) for i, v in zip(rows, vectors)))
    conn.close()
