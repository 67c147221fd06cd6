"""Held-out retrieval measured through the app's own scan: what a user gets, not a training shortcut.

Each candidate (an encoder plus an analysis setting) scans a folder of held-out tracks into a
fresh library with ``musicrec_gui.core.scan`` — the same decoding, seeking, front end, encoder
and song averaging as ``musicrec scan`` — and its stored song vectors are scored: every track is
a query against all the others, a neighbour is relevant when it comes from the same package
(album / soundtrack). Reported: P@1, P@5, mAP, raw and centred on the set's mean, and the
scan's own speed (songs/s, stage times).

    python -m training.retrieval --set outside --encoder resources/encoder/musicnn.keras \
        --analysis spread8 spread6 excerpt30 full

Sets: ``test`` and ``validation`` (the corpus's splits, ``training.data.split_tracks``) and
``outside`` (``../shared/outside``: 46 tracks from 8 packages the corpus never saw; never trained
or tuned on). Results go to ``docs/model/retrieval_*.json`` when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from musicrec_gui.core.config import AnalysisSettings

OUTSIDE_DIR = Path(os.environ.get("MUSICREC_OUTSIDE", Path.home() / ".cache" / "musicrec-outside"))


def retrieval_scores(vectors: np.ndarray, labels, *, k: int = 5, centre: bool = False) -> dict:
    """Leave-one-out cosine retrieval over a set of song vectors.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, d)]
    labels : sequence of str [shape=(n,)]
    k : int
        For P@k.
    centre : bool
        Subtract the set's mean vector first.

    Returns
    -------
    dict
        ``p@1``, ``p@k``, ``map`` (means over queries that have a relevant neighbour), ``queries``.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if centre:
        vectors = vectors - vectors.mean(axis=0, keepdims=True)
    labels = np.asarray(labels)
    z = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sim = z @ z.T
    p1, pk, aps = [], [], []
    for q in range(len(z)):
        others = np.delete(np.arange(len(z)), q)
        relevant = labels[others] == labels[q]
        if not relevant.any():
            continue
        hits = relevant[np.argsort(-sim[q, others], kind="stable")]
        p1.append(float(hits[0]))
        pk.append(float(hits[:k].mean()))
        ranks = np.flatnonzero(hits) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    if not p1:
        return {"p@1": float("nan"), f"p@{k}": float("nan"), "map": float("nan"), "queries": 0}
    return {"p@1": float(np.mean(p1)), f"p@{k}": float(np.mean(pk)), "map": float(np.mean(aps)), "queries": len(p1)}


def held_out_set(name: str) -> list[tuple[Path, str]]:
    """(audio path, package label) of a held-out set: ``test``, ``validation`` or ``outside``."""
    if name == "outside":
        manifest = OUTSIDE_DIR / "manifest.tsv"
        if not manifest.exists():
            raise SystemExit(f"{manifest} not found: python3 ../shared/corpus/fetch_corpus.py {OUTSIDE_DIR} "
                             "--tracks ../shared/outside/tracks.tsv")
        with open(manifest, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        return [(OUTSIDE_DIR / row["path"], row["package"]) for row in rows]
    from training.data import corpus_tracks, split_tracks

    splits = split_tracks(corpus_tracks())
    return [(Path(t.path), t.label) for t in splits[name]]


def parse_analysis(text: str) -> AnalysisSettings:
    """``spread8``, ``excerpt30``, ``full`` or ``full64`` → settings."""
    for mode in ("spread", "excerpt", "full"):
        if text.startswith(mode):
            number = text[len(mode):]
            if mode == "spread":
                return AnalysisSettings(mode="spread", patches=int(number or 8))
            if mode == "excerpt":
                return AnalysisSettings(mode="excerpt", excerpt_seconds=float(number or 30))
            return AnalysisSettings(mode="full", max_slices=int(number or 64))
    raise SystemExit(f"unknown analysis {text!r}; expected spreadK, excerptS or full[K]")


def scan_vectors(tracks: list[tuple[Path, str]], *, encoder, settings: AnalysisSettings,
                 workers: int = 2) -> tuple[np.ndarray, list[str], dict]:
    """Scan the tracks (symlinked into one folder) with the app's scan; their vectors, labels and timing."""
    from musicrec_gui.core import scan as scan_mod
    from musicrec_gui.core.library import Library

    with tempfile.TemporaryDirectory(prefix="musicrec-eval-") as tmp:
        folder = Path(tmp) / "music"
        folder.mkdir()
        label_of = {}
        for i, (path, label) in enumerate(tracks):
            link = folder / f"{i:04d}{path.suffix}"
            link.symlink_to(path)
            label_of[os.path.realpath(link)] = label
        library = Library(Path(tmp) / "lib.sqlite3")
        finished = None
        for event in scan_mod.scan(folder, library=library, encoder=encoder, settings=settings, workers=workers):
            if isinstance(event, scan_mod.TrackFailed):
                print(f"  failed: {event.path}: {event.reason}")
            elif isinstance(event, scan_mod.ScanFinished):
                finished = event
        ids, vectors = library.vectors(encoder_key=encoder.key, analysis_key=settings.key)
        path_of = {t.id: t.path for t in library.tracks()}
        labels = [label_of[path_of[int(i)]] for i in ids]
        library.close()
    timing = {"seconds": finished.seconds, "songs_per_second": finished.analysed / max(finished.seconds, 1e-9),
              "stages": finished.stage_seconds, "analysed": finished.analysed}
    return vectors, labels, timing


def evaluate(set_name: str, encoder_path: Path, analyses: list[str]) -> dict:
    from musicrec_gui.core.encoder import Encoder

    encoder = Encoder(encoder_path)
    tracks = held_out_set(set_name)
    results = {"set": set_name, "tracks": len(tracks), "encoder": encoder.key, "analyses": {}}
    for text in analyses:
        settings = parse_analysis(text)
        start = time.perf_counter()
        vectors, labels, timing = scan_vectors(tracks, encoder=encoder, settings=settings)
        entry = {"raw": retrieval_scores(vectors, labels), "centred": retrieval_scores(vectors, labels, centre=True),
                 "timing": timing, "wall_seconds": time.perf_counter() - start}
        results["analyses"][text] = entry
        print(f"{set_name:>10} {text:>10}  raw P@1 {entry['raw']['p@1']:.3f} mAP {entry['raw']['map']:.3f}  "
              f"centred P@1 {entry['centred']['p@1']:.3f} mAP {entry['centred']['map']:.3f}  "
              f"{timing['songs_per_second']:.2f} songs/s", flush=True)
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=["test", "validation", "outside"], default="outside")
    parser.add_argument("--encoder", type=Path, required=True)
    parser.add_argument("--analysis", nargs="+", default=["spread8"])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = evaluate(args.set, args.encoder, args.analysis)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


if __name__ == "__main__":
    main()
