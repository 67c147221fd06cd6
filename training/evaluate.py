"""Per-track evaluation on the held-out test split (never used for training or model selection).

Each track's song vector is what the app computes: the mean of the encoder's
embeddings of the app's slices of the centred 30-s excerpt (window 0 of the cache).
Retrieval: every test track is a query against all other test tracks (cosine);
a neighbour is relevant when it has the same label (package = album; composer where
known). Queries without any relevant track are skipped. Reported: P@1, P@5, mAP,
against a random ranking and the MFCC-statistics baseline (mean and std of 20 MFCCs
and of their deltas over the same excerpt, z-scored with training-split statistics),
and the musicnn teacher's 200-d penultimate features when ``training/teacher.py`` works.
Classification (when the model has an album head): track-level accuracy by averaging
slice softmax outputs, slice-level accuracy separately.

    python -m training.evaluate --encoder resources/encoder/compact.keras --run training/runs/NAME
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from musicrec_gui.core.runtime import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import numpy as np

from musicrec_gui.core.encoder import Encoder, LazyEncoder, song_vector
from training.retrieval import retrieval_scores


def random_scores(labels, repeats: int = 200, seed: int = 0) -> dict:
    """Expected scores of a random ranking (averaged over ``repeats`` random vector sets)."""
    rng = np.random.default_rng(seed)
    runs = [retrieval_scores(rng.normal(size=(len(labels), 8)), labels) for _ in range(repeats)]
    return {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}


@dataclass
class TrackEmbeddings:
    """What :func:`embed_tracks` computes for a list of tracks."""

    vectors: np.ndarray  # (n_tracks, embedding_size) song vectors, as the app computes them
    label_probs: np.ndarray | None = None  # (n_tracks, n_labels): mean of the album head's slice softmax
    slice_preds: list[np.ndarray] | None = None  # per track, the album head's argmax for each slice


def slice_embedder(model, batch_size: int = 64):
    """``slices -> embeddings`` for ``model``: an exported encoder's own ``Encoder.embed_slices`` (the app's
    path, fixed batches), or a bare Keras embedding model called ``batch_size`` slices at a time."""
    if isinstance(model, (Encoder, LazyEncoder)):
        return model.embed_slices

    def embed(slices: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(model(slices[i : i + batch_size], training=False))
                               for i in range(0, len(slices), batch_size)])

    return embed


def embed_tracks(model, cache, track_idx, *, label_model=None, batch_size: int = 64) -> TrackEmbeddings:
    """Song vectors of the tracks ``track_idx`` of ``cache`` and, with ``label_model``, the album head's outputs.

    A song vector is the app's: ``musicrec_gui.core.encoder.song_vector`` of the embeddings of the
    app's slices of the centred excerpt (window 0 of the cache, cut by ``core.features.slice_spectrogram``).
    """
    embed = slice_embedder(model, batch_size)
    vectors, probs, slice_preds = [], [], []
    for t in track_idx:
        slices = cache.app_slices(int(t))
        vectors.append(song_vector(embed(slices)))
        if label_model is not None:
            out = label_model(slices, training=False)
            if isinstance(out, dict) and "label" in out:
                p = np.asarray(out["label"])
                probs.append(p.mean(0))
                slice_preds.append(p.argmax(1))
    vectors = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), dtype=np.float32)
    if probs:
        return TrackEmbeddings(vectors, np.stack(probs), slice_preds)
    return TrackEmbeddings(vectors)


def mfcc_vectors(cache, track_idx, train_idx) -> np.ndarray:
    first = {int(t): int(cache.windows_of(int(t))[0]) for t in np.concatenate([track_idx, train_idx])}
    train = np.stack([cache.mfcc[first[int(t)]] for t in train_idx])
    mu, sd = train.mean(0), train.std(0) + 1e-6
    return (np.stack([cache.mfcc[first[int(t)]] for t in track_idx]) - mu) / sd


def evaluate_run(embedding_model, cache, splits, labels, *, label_model=None, out_dir=None, teacher=False) -> dict:
    """All test-split numbers for one encoder (and the baselines on the same tracks)."""
    from training import data

    test = splits["test"]
    test_idx = data.track_indices(cache, test)
    train_idx = data.track_indices(cache, splits["train"])
    album = np.array([t.label for t in test])
    composer_mask = np.array([bool(t.composer) for t in test])
    composer = np.array([t.composer for t in test])

    t0 = time.perf_counter()
    embedded = embed_tracks(embedding_model, cache, test_idx, label_model=label_model)
    vectors, probs = embedded.vectors, embedded.label_probs
    ms_per_track = 1000 * (time.perf_counter() - t0) / max(1, len(test_idx))
    mfcc = mfcc_vectors(cache, test_idx, train_idx)
    scores = {
        "test_tracks": int(len(test)),
        "test_labels": int(len(set(album))),
        "encoder": {"album": retrieval_scores(vectors, album)},
        "mfcc_stats": {"album": retrieval_scores(mfcc, album)},
        "random": {"album": random_scores(album)},
        "encoder_ms_per_track_incl_label_head": round(ms_per_track, 1),
    }
    if composer_mask.sum() >= 4:
        scores["encoder"]["composer"] = retrieval_scores(vectors[composer_mask], composer[composer_mask])
        scores["mfcc_stats"]["composer"] = retrieval_scores(mfcc[composer_mask], composer[composer_mask])
        scores["random"]["composer"] = random_scores(composer[composer_mask])
    if teacher:
        try:
            from training.teacher import teacher_song_vectors

            tv = teacher_song_vectors(cache, test_idx)
            scores["musicnn_200d"] = {"album": retrieval_scores(tv, album)}
            if composer_mask.sum() >= 4:
                scores["musicnn_200d"]["composer"] = retrieval_scores(tv[composer_mask], composer[composer_mask])
        except Exception as err:  # noqa: BLE001 - the teacher is optional
            scores["musicnn_200d"] = {"error": str(err)}
    if probs is not None and labels:
        lid = {l: i for i, l in enumerate(labels)}
        y = np.array([lid.get(l, -1) for l in album])
        slice_preds = embedded.slice_preds
        scores["classification"] = {
            "track_accuracy": float(np.mean(probs.argmax(1) == y)),
            "slice_accuracy": float(np.mean(np.concatenate([p == yy for p, yy in zip(slice_preds, y)]))),
            "majority_class_accuracy": float(np.max(np.bincount(y[y >= 0])) / len(y)) if (y >= 0).any() else 0.0,
        }
        if out_dir is not None:
            from training.plots import plot_confusion

            plot_confusion(y, probs.argmax(1), labels, Path(out_dir) / "confusion_test.png",
                           "album head, test tracks (track-level)")
    if out_dir is not None:
        (Path(out_dir) / "scores.json").write_text(json.dumps(scores, indent=1))
    return scores


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="resources/encoder/compact.keras")
    parser.add_argument("--run", required=True, help="training run dir (for its splits.json and cache)")
    parser.add_argument("--teacher", action="store_true", help="also score musicnn's 200-d features")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from musicrec_gui.core.config import FeatureConfig
    from training import data
    from training.config import load_run_config
    from training.plots import plot_scores

    run = load_run_config(args.run)
    paths = json.loads((Path(args.run) / "splits.json").read_text())
    if run["dataset"] != "corpus":
        raise SystemExit("evaluate.py CLI re-creates corpus runs; for other datasets use train.py's final evaluation")
    if Path(args.encoder).with_suffix(".json").is_file():
        model = Encoder(args.encoder)  # the app's loader and embedding path: sha256, safe mode, shapes
        key, encoder_features = model.key, model.features
    else:  # a run's bare embedding.keras
        import keras

        model, key = keras.saving.load_model(args.encoder, safe_mode=True, compile=False), "unexported"
        encoder_features = None
    # The run's own front end; runs saved before it was recorded: the encoder's, else today's default.
    features = FeatureConfig.from_dict(run["features"]) if "features" in run else encoder_features or FeatureConfig()
    if encoder_features is not None and encoder_features.fingerprint != features.fingerprint:
        raise SystemExit(f"{args.encoder} expects other features than the run {args.run} was cached with")
    tracks = data.corpus_tracks()
    by_path = {t.path: t for t in tracks}
    splits = {s: [by_path[p] for p in ps] for s, ps in paths.items()}
    cache = data.build_cache(tracks, name=f"corpus-w{run['windows_per_track']}", n_windows=run["windows_per_track"],
                             config=features)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    scores = evaluate_run(model, cache, splits, [], teacher=args.teacher, out_dir=args.out)
    scores["encoder_file"] = {"path": str(args.encoder), "key": key}
    if args.out:
        (Path(args.out) / "scores.json").write_text(json.dumps(scores, indent=1))
        plot_scores(scores, Path(args.out) / "retrieval_test.png")
    print(json.dumps(scores, indent=1))
    return scores


if __name__ == "__main__":
    main()
