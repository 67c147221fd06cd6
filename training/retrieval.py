"""Held-out retrieval measured through the app's own scan: what a user gets, not a training shortcut.

Each candidate (an encoder plus an analysis setting) scans a folder of held-out tracks into a
fresh library with ``musicrec_gui.core.scan`` — the same decoding, seeking, front end, encoder
and song averaging as ``musicrec scan`` — and its stored song vectors are scored: every track is
a query against all the others, a neighbour is relevant when it comes from the same package
(album / soundtrack). Reported: P@1, P@5, mAP, raw and centred on the set's mean, and the
scan's own speed (songs/s, stage times).

    python -m training.retrieval --set outside --encoder resources/encoder/musicnn.keras \
        --analysis spread8 spread6 excerpt30 full

Sets: ``train``, ``test`` and ``validation`` (the corpus's splits, ``training.data.split_tracks``) and
``outside`` (``../shared/outside``: 46 tracks from 8 packages the corpus never saw; never trained
or tuned on). Results go to ``docs/model/retrieval_*.json`` when ``--out`` is given; ``--vectors DIR``
also keeps each analysis's song vectors (``.npz``: vectors, labels, order = index into the set).

Besides raw and centred scores, each analysis reports PCA-whitened scores (``WHITENINGS``, fitted
on the same set: a per-library transform), the random-ranking baseline, and on ``outside`` the
P@1 per package. ``--baseline mfcc`` scores MFCC statistics of the same spread windows instead
of an encoder (``mfcc_vectors``). ``training/retrieval_report.py`` turns the JSONs into tables,
paired tests and ``docs/model/k_curve.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

from musicrec_gui.core.runtime import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import numpy as np

from musicrec_gui.core.config import AnalysisSettings
from training.config import OUTSIDE_DIR


def per_query(vectors: np.ndarray, labels, *, k: int = 5, centre: bool = False) -> dict[str, np.ndarray]:
    """Leave-one-out cosine retrieval, query by query: the one metric every report here averages.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, d)]
    labels : sequence of str [shape=(n,)]
        A neighbour is relevant when its label equals the query's.
    k : int
        For P@k.
    centre : bool
        Subtract the set's mean vector first.

    Returns
    -------
    dict of np.ndarray [shape=(n_queries,)]
        ``query`` (row index), ``p@1``, ``p@k``, ``ap``, for the queries that have a relevant neighbour.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if centre:
        vectors = vectors - vectors.mean(axis=0, keepdims=True)
    labels = np.asarray(labels)
    z = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sim = z @ z.T
    out: dict[str, list] = {"query": [], "p@1": [], f"p@{k}": [], "ap": []}
    for q in range(len(z)):
        others = np.delete(np.arange(len(z)), q)
        relevant = labels[others] == labels[q]
        if not relevant.any():
            continue
        hits = relevant[np.argsort(-sim[q, others], kind="stable")]
        ranks = np.flatnonzero(hits) + 1
        out["query"].append(q)
        out["p@1"].append(float(hits[0]))
        out[f"p@{k}"].append(float(hits[:k].mean()))
        out["ap"].append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return {key: np.array(values) for key, values in out.items()}


def retrieval_scores(vectors: np.ndarray, labels, *, k: int = 5, centre: bool = False) -> dict:
    """Mean P@1, P@k and mAP of :func:`per_query` (over queries that have a relevant neighbour).

    Returns
    -------
    dict
        ``p@1``, ``p@k``, ``map``, ``queries``.
    """
    terms = per_query(vectors, labels, k=k, centre=centre)
    if not len(terms["query"]):
        return {"p@1": float("nan"), f"p@{k}": float("nan"), "map": float("nan"), "queries": 0}
    return {"p@1": float(terms["p@1"].mean()), f"p@{k}": float(terms[f"p@{k}"].mean()),
            "map": float(terms["ap"].mean()), "queries": len(terms["query"])}


def per_package_p1(vectors: np.ndarray, labels, *, centre: bool = False) -> dict[str, dict]:
    """Leave-one-out P@1 broken down by the query's package: ``{package: {"p@1", "queries"}}``."""
    labels = np.asarray(labels)
    terms = per_query(vectors, labels, centre=centre)
    hits: dict[str, list[float]] = {}
    for q, hit in zip(terms["query"], terms["p@1"]):
        hits.setdefault(str(labels[q]), []).append(float(hit))
    return {package: {"p@1": float(np.mean(h)), "queries": len(h)} for package, h in sorted(hits.items())}


def pca_whitening(fit: np.ndarray, *, dims: int | None = None, shrink: float = 0.0):
    """A PCA-whitening transform fitted on ``fit`` (n, d): returns ``apply(vectors) -> whitened``.

    Centres on the fit set's mean, projects on its top ``dims`` principal axes (all the
    non-degenerate ones when None: at most n - 1) and divides each by ``sqrt(eigenvalue +
    shrink * mean eigenvalue)``. Fitted on n songs, a full-rank whitening of those same songs
    makes every pair equally similar (the Gram matrix becomes a multiple of the centring
    projection), so on one library it needs fewer dimensions than songs or a shrinkage.
    """
    fit = np.asarray(fit, dtype=np.float64)
    mean = fit.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(fit - mean, full_matrices=False)
    eig = s ** 2 / max(len(fit) - 1, 1)
    keep = int(np.sum(eig > eig[0] * 1e-10))
    if dims is not None:
        keep = min(keep, dims)
    eig, vt = eig[:keep], vt[:keep]
    scale = 1.0 / np.sqrt(eig + shrink * eig.mean())

    def apply(vectors: np.ndarray) -> np.ndarray:
        return ((np.asarray(vectors, dtype=np.float64) - mean) @ vt.T) * scale

    return apply


#: Whitening variants reported: (name, dims, shrink). Not tuned: a coarse grid, all reported.
WHITENINGS = (("pca8", 8, 0.0), ("pca16", 16, 0.0), ("pca32", 32, 0.0), ("shrink0.1", None, 0.1),
              ("shrink1", None, 1.0))


def whitened_scores(vectors: np.ndarray, labels, *, fit: np.ndarray | None = None) -> dict[str, dict]:
    """Retrieval scores after each ``WHITENINGS`` variant, fitted on ``fit`` (default: the set itself)."""
    fit = vectors if fit is None else fit
    return {name: retrieval_scores(pca_whitening(fit, dims=dims, shrink=shrink)(vectors), labels)
            for name, dims, shrink in WHITENINGS}


def random_baseline(labels, *, draws: int = 200, dims: int = 32, seed: int = 0) -> dict:
    """Expected scores of a random ranking: Gaussian vectors, averaged over ``draws``; P@1 also analytically."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    runs = [retrieval_scores(rng.standard_normal((len(labels), dims)), labels) for _ in range(draws)]
    counts = {lab: int((labels == lab).sum()) for lab in set(labels.tolist())}
    expected = [(counts[lab] - 1) / (len(labels) - 1) for lab in labels.tolist() if counts[lab] > 1]
    out = {key: float(np.mean([r[key] for r in runs])) for key in ("p@1", "p@5", "map")}
    out.update(draws=draws, queries=runs[0]["queries"], **{"p@1_analytic": float(np.mean(expected))})
    return out


def mfcc_vectors(tracks: list[tuple[Path, str]], *, patches: int = 8, n_mfcc: int = 20) -> tuple[np.ndarray, list[str]]:
    """MFCC statistics of the same spread patches the app analyses: a classic hand-made baseline.

    Each song's ``patches`` windows are decoded exactly as spread analysis places them
    (``audio.load_song_windows``, default ``FeatureConfig``: 22 050 Hz, ≈ 3-s windows); the
    MFCC frames of all its windows are pooled into mean and std of ``n_mfcc`` MFCCs plus the
    std of their deltas (computed within each window, so no delta straddles two windows):
    ``3 * n_mfcc`` numbers per song.
    """
    import librosa

    from musicrec_gui.core.audio import load_song_windows
    from musicrec_gui.core.config import FeatureConfig

    config = FeatureConfig()
    out, labels = [], []
    for path, label in tracks:
        windows, _ = load_song_windows(path, config=config, patches=patches)
        frames, deltas = [], []
        for window in windows:
            m = librosa.feature.mfcc(y=window, sr=config.sample_rate, n_mfcc=n_mfcc)
            frames.append(m)
            deltas.append(librosa.feature.delta(m))
        m, d = np.concatenate(frames, axis=1), np.concatenate(deltas, axis=1)
        out.append(np.concatenate([m.mean(axis=1), m.std(axis=1), d.std(axis=1)]))
        labels.append(label)
    return np.asarray(out), labels


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


def score_entry(vectors: np.ndarray, labels, *, per_package: bool = False) -> dict:
    """Raw, centred and whitened scores of one set of song vectors (plus per-package P@1 if asked)."""
    entry = {"raw": retrieval_scores(vectors, labels), "centred": retrieval_scores(vectors, labels, centre=True),
             "whitened": whitened_scores(vectors, labels)}
    if per_package:
        entry["per_package_p@1"] = {"raw": per_package_p1(vectors, labels),
                                     "centred": per_package_p1(vectors, labels, centre=True)}
    return entry


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
        label_of, index_of = {}, {}
        for i, (path, label) in enumerate(tracks):
            link = folder / f"{i:04d}{path.suffix}"
            link.symlink_to(path)
            label_of[os.path.realpath(link)] = label
            index_of[os.path.realpath(link)] = i
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
        order = [index_of[path_of[int(i)]] for i in ids]  # index into ``tracks`` of each vector
        library.close()
    timing = {"seconds": finished.seconds, "songs_per_second": finished.analysed / max(finished.seconds, 1e-9),
              "stages": finished.stage_seconds, "analysed": finished.analysed, "order": order}
    return vectors, labels, timing


def evaluate(set_name: str, encoder_path: Path, analyses: list[str], *, vectors_dir: Path | None = None) -> dict:
    from musicrec_gui.core.encoder import Encoder

    encoder = Encoder(encoder_path)
    tracks = held_out_set(set_name)
    results = {"set": set_name, "tracks": len(tracks), "encoder": encoder.key, "analyses": {},
               "random": random_baseline([label for _, label in tracks])}
    for text in analyses:
        settings = parse_analysis(text)
        start = time.perf_counter()
        vectors, labels, timing = scan_vectors(tracks, encoder=encoder, settings=settings)
        entry = score_entry(vectors, labels, per_package=set_name == "outside")
        order = timing.pop("order")
        entry.update(timing=timing, wall_seconds=time.perf_counter() - start)
        if vectors_dir is not None:
            vectors_dir.mkdir(parents=True, exist_ok=True)
            np.savez(vectors_dir / f"{set_name}_{encoder_path.stem}_{text}.npz", vectors=vectors, labels=np.asarray(labels),
                     order=np.asarray(order))
        results["analyses"][text] = entry
        print(f"{set_name:>10} {text:>10}  raw P@1 {entry['raw']['p@1']:.3f} mAP {entry['raw']['map']:.3f}  "
              f"centred P@1 {entry['centred']['p@1']:.3f} mAP {entry['centred']['map']:.3f}  "
              f"{timing['songs_per_second']:.2f} songs/s", flush=True)
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=["train", "test", "validation", "outside"], default="outside")
    parser.add_argument("--encoder", type=Path, help="required unless --baseline is given")
    parser.add_argument("--analysis", nargs="+", default=["spread8"])
    parser.add_argument("--baseline", choices=["mfcc"], help="score a hand-made baseline instead of an encoder")
    parser.add_argument("--patches", type=int, default=8, help="spread patches for --baseline mfcc")
    parser.add_argument("--vectors", type=Path, help="also save each analysis's song vectors (.npz) in this folder")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.baseline == "mfcc":
        tracks = held_out_set(args.set)
        start = time.perf_counter()
        vectors, labels = mfcc_vectors(tracks, patches=args.patches)
        seconds = time.perf_counter() - start
        results = {"set": args.set, "tracks": len(tracks), "baseline": f"mfcc spread{args.patches}",
                   "random": random_baseline(labels), "seconds": seconds,
                   **score_entry(vectors, labels, per_package=args.set == "outside")}
        if args.vectors is not None:
            args.vectors.mkdir(parents=True, exist_ok=True)
            np.savez(args.vectors / f"{args.set}_mfcc_spread{args.patches}.npz", vectors=vectors, labels=np.asarray(labels))
        print(f"{args.set:>10} mfcc spread{args.patches}  raw P@1 {results['raw']['p@1']:.3f} mAP {results['raw']['map']:.3f}  "
              f"centred P@1 {results['centred']['p@1']:.3f} mAP {results['centred']['map']:.3f}  "
              f"random P@1 {results['random']['p@1']:.3f}  ({seconds:.0f} s)", flush=True)
    else:
        if args.encoder is None:
            parser.error("--encoder is required")
        results = evaluate(args.set, args.encoder, args.analysis, vectors_dir=args.vectors)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


if __name__ == "__main__":
    main()
