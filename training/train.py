"""Train the musicrec encoder (keras-io example shape: constants, argparse, fit, plots).

Objectives (``--objective``):
- ``classifier``: softmax over album/package labels on random slices of each training
  track's centred 30-s excerpt (the original recipe);
- ``contrastive`` (default): NT-Xent on two random, augmented slices of the same track
  (positives) against every other slice in the batch, plus the album head on both
  views (``--label-weight``), plus musicnn teacher tags (``--teacher-weight``) when
  the cache has teacher targets (``training/teacher.py``).

Model selection uses the **validation** split only (retrieval mAP by label of the
song vectors); the test split is touched once, at the end, by ``training/evaluate.py``.

    python -m training.train --objective contrastive --minutes 40 --run-name contrastive
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from musicrec_gui.core.runtime import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import numpy as np

from training.config import RUNS_DIR, save_run_config

# ----------------------------------------------------------------------------- constants
SEED = 1234
ARCHITECTURE = "compact"
EMBEDDING_SIZE = 32
BATCH_TRACKS = 48  # tracks per batch; two slices each
LEARNING_RATE = 1e-3
TEMPERATURE = 0.1
LABEL_WEIGHT = 0.5
TEACHER_WEIGHT = 1.0
SLICES_PER_TRACK = 10  # samples per track per epoch
MAX_EPOCHS = 200
PATIENCE = 8
N_WINDOWS = 1

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--dataset", default="corpus", choices=["corpus", "fma", "folder"])
parser.add_argument("--data-root", default=None, help="corpus dir (default: $MUSICREC_CORPUS or ~/.cache/musicrec-corpus) / FMA root (with fma_metadata, fma_small) / label folders")
parser.add_argument("--fma-subset", default="small")
parser.add_argument("--objective", default="contrastive", choices=["contrastive", "classifier"])
parser.add_argument("--architecture", default=ARCHITECTURE, choices=["seed", "compact"])
parser.add_argument("--embedding-size", type=int, default=EMBEDDING_SIZE)
parser.add_argument("--batch-tracks", type=int, default=BATCH_TRACKS)
parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
parser.add_argument("--temperature", type=float, default=TEMPERATURE)
parser.add_argument("--label-weight", type=float, default=LABEL_WEIGHT)
parser.add_argument("--teacher-weight", type=float, default=TEACHER_WEIGHT)
parser.add_argument("--teacher", action="store_true", help="use musicnn tag targets (computed and cached if absent)")
parser.add_argument("--slices-per-track", type=int, default=SLICES_PER_TRACK)
parser.add_argument("--windows", type=int, default=N_WINDOWS, help="30-s windows cached per track (1 = the centred excerpt)")
parser.add_argument("--epochs", type=int, default=MAX_EPOCHS)
parser.add_argument("--patience", type=int, default=PATIENCE)
parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock cap on training")
parser.add_argument("--seed", type=int, default=SEED)
parser.add_argument("--run-name", default=None)


def set_seeds(seed: int) -> None:
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


# ----------------------------------------------------------------------------- data


def load_dataset(args):
    """Tracks + splits + window cache for ``args.dataset``."""
    from training import data

    if args.dataset == "corpus":
        tracks = data.corpus_tracks(args.data_root)
    elif args.dataset == "fma":
        root = Path(args.data_root)
        tracks = data.fma_tracks(root / "fma_metadata" / "tracks.csv", root / f"fma_{args.fma_subset}", subset=args.fma_subset)
    else:
        tracks = data.folder_tracks(args.data_root)
    splits = data.split_tracks(tracks, seed=args.seed)
    data.assert_disjoint(splits)
    cache = data.build_cache(tracks, name=f"{args.dataset}-w{args.windows}", n_windows=args.windows)
    return tracks, splits, cache


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain (a shift of the normalised dB scale, ±6 dB) and one frequency mask (≤ 16 mel bands)."""
    x = x + rng.uniform(-6.0, 6.0) / 80.0
    n_mels = x.shape[0]
    width = int(rng.integers(0, 17))
    if width:
        lo = int(rng.integers(0, n_mels - width))
        x[lo : lo + width] = 0.0
    return np.clip(x, 0.0, 1.0)


class PairBatches:
    """Keras PyDataset of (two views, label, teacher tags) for a list of training tracks."""

    def __new__(cls, *a, **k):  # build the keras base class lazily (keras import is slow)
        import keras

        class _PairBatches(keras.utils.PyDataset):
            def __init__(self, cache, track_idx, labels, batch_tracks, slices_per_track, seed, teacher=None):
                super().__init__()
                self.cache, self.track_idx, self.labels = cache, np.asarray(track_idx), np.asarray(labels)
                self.batch_tracks, self.teacher = batch_tracks, teacher
                self.n_batches = max(1, len(track_idx) * slices_per_track // (2 * batch_tracks))
                self.rng = np.random.default_rng(seed)

            def __len__(self):
                return self.n_batches

            def _view(self, t):
                from training import data

                x, start, w = data.random_slice_at(self.cache, t, self.rng)
                return augment(x, self.rng), (w, start)

            def __getitem__(self, _):
                pick = self.rng.choice(len(self.track_idx), size=min(self.batch_tracks, len(self.track_idx)), replace=False)
                v1, v2, tags = [], [], []
                for p in pick:
                    t = self.track_idx[p]
                    a, pos_a = self._view(t)
                    b, pos_b = self._view(t)
                    v1.append(a)
                    v2.append(b)
                    if self.teacher is not None:
                        tags.append(np.concatenate([self.teacher.tags_at(*pos_a), self.teacher.tags_at(*pos_b)]))
                x = np.concatenate([np.stack(v1), np.stack(v2)])[..., None].astype(np.float32)
                y = np.concatenate([self.labels[pick], self.labels[pick]]).astype(np.int32)
                out = {"x": x, "y": y}
                if self.teacher is not None:
                    out["tags"] = np.stack(tags).reshape(-1, self.teacher.n_tags).astype(np.float32)
                return out

        return _PairBatches(*a, **k)


# ----------------------------------------------------------------------------- trainer


def make_trainer(net, *, temperature, contrastive_weight, label_weight, teacher_weight):
    import keras
    import tensorflow as tf

    class Trainer(keras.Model):
        """Wraps the functional training model; only its train_step is custom (never exported)."""

        def __init__(self, net):
            super().__init__()
            self.net = net
            self.trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "ntxent", "label_loss", "label_acc", "tag_loss")}

        @property
        def metrics(self):
            return list(self.trackers.values())

        def call(self, x, training=False):
            return self.net(x, training=training)

        def train_step(self, data):
            batch = data[0] if isinstance(data, (tuple, list)) else data
            x, y = batch["x"], batch["y"]
            with tf.GradientTape() as tape:
                out = self.net(x, training=True)
                loss = 0.0
                if contrastive_weight:
                    z = tf.math.l2_normalize(out["embedding"], axis=1)
                    n = tf.shape(z)[0] // 2
                    sim = tf.matmul(z, z, transpose_b=True) / temperature
                    sim = sim - 1e9 * tf.eye(2 * n)
                    target = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
                    ntx = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(target, sim, from_logits=True))
                    loss += contrastive_weight * ntx
                    self.trackers["ntxent"].update_state(ntx)
                if "label" in out and label_weight:
                    ce = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, out["label"]))
                    loss += label_weight * ce
                    acc = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(out["label"], 1), y.dtype), y), tf.float32))
                    self.trackers["label_loss"].update_state(ce)
                    self.trackers["label_acc"].update_state(acc)
                if "tags" in out and "tags" in batch and teacher_weight:
                    bce = tf.reduce_mean(tf.keras.losses.binary_crossentropy(batch["tags"], out["tags"]))
                    loss += teacher_weight * bce
                    self.trackers["tag_loss"].update_state(bce)
            grads = tape.gradient(loss, self.net.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.net.trainable_variables))
            self.trackers["loss"].update_state(loss)
            return {k: m.result() for k, m in self.trackers.items()}

    return Trainer(net)


def make_validation_callback(embedding_model, net, cache, val_idx, val_labels, deadline):
    import keras

    from training.evaluate import embed_tracks
    from training.retrieval import retrieval_scores

    class Validation(keras.callbacks.Callback):
        """Adds val_p1 / val_p5 / val_map (retrieval by label) and val_track_acc to the epoch logs; stops at the deadline."""

        def on_epoch_end(self, epoch, logs=None):
            embedded = embed_tracks(embedding_model, cache, val_idx, label_model=net)
            scores = retrieval_scores(embedded.vectors, val_labels)
            logs["val_p1"], logs["val_p5"], logs["val_map"] = scores["p@1"], scores["p@5"], scores["map"]
            if embedded.label_probs is not None:
                logs["val_track_acc"] = float(np.mean(embedded.label_probs.argmax(1) == val_labels))
            if time.time() > deadline:
                print(f"\nTime budget reached after epoch {epoch + 1}.")
                self.model.stop_training = True

    return Validation()


# ----------------------------------------------------------------------------- main


def main(argv=None) -> Path:
    args = parser.parse_args(argv)
    started = time.time()
    set_seeds(args.seed)
    import keras

    from training import data
    from training.models import build_model

    tracks, splits, cache = load_dataset(args)
    labels = sorted({t.label for t in splits["train"] if t.label})
    label_id = {l: i for i, l in enumerate(labels)}
    train_idx = data.track_indices(cache, splits["train"])
    val_idx = data.track_indices(cache, splits["validation"])
    train_y = np.array([label_id.get(t.label, -1) for t in splits["train"]])
    val_y = np.array([label_id.get(t.label, -1) for t in splits["validation"]])
    keep = train_y >= 0
    teacher = None
    if args.teacher:
        from training.teacher import TeacherTargets

        teacher = TeacherTargets.for_cache(cache)

    run_name = args.run_name or f"{args.objective}-{args.architecture}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = RUNS_DIR / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "splits.json").write_text(json.dumps({s: [t.path for t in ts] for s, ts in splits.items()}, indent=1))
    save_run_config(run_dir, args=vars(args), features=cache.config, labels=labels, dataset=args.dataset,
                    windows_per_track=args.windows)

    net, embedding_model = build_model(
        args.architecture,
        n_labels=len(labels) if args.label_weight or args.objective == "classifier" else 0,
        embedding_size=args.embedding_size,
        n_tags=teacher.n_tags if teacher is not None else 0,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    contrastive = args.objective == "contrastive"
    trainer = make_trainer(
        net,
        temperature=args.temperature,
        contrastive_weight=1.0 if contrastive else 0.0,
        label_weight=args.label_weight if contrastive else 1.0,
        teacher_weight=args.teacher_weight if teacher is not None else 0.0,
    )
    trainer.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    trainer(np.zeros((1, *cache.spec.shape[1:2], cache.config.slice_frames, 1), dtype=np.float32))  # build, for checkpoints
    batches = PairBatches(
        cache, train_idx[keep], train_y[keep], args.batch_tracks, args.slices_per_track, args.seed, teacher=teacher
    )
    deadline = started + 60 * args.minutes
    best_weights = run_dir / "best.weights.h5"
    callbacks = [
        make_validation_callback(embedding_model, net, cache, val_idx, val_y, deadline),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        keras.callbacks.ModelCheckpoint(str(best_weights), monitor="val_map", mode="max", save_best_only=True, save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_map", mode="max", patience=args.patience),
    ]
    print(f"train {len(train_idx)} tracks, validation {len(val_idx)}, test {len(splits['test'])}; {len(labels)} labels; "
          f"{len(batches)} batches/epoch; run dir {run_dir}", flush=True)
    trainer.fit(batches, epochs=args.epochs, callbacks=callbacks, verbose=2)
    trainer.load_weights(best_weights)
    minutes = (time.time() - started) / 60
    embedding_model.save(run_dir / "embedding.keras")
    from training.plots import plot_history

    plot_history(run_dir / "history.csv", run_dir)

    # Test split: touched once, after model selection.
    from training.evaluate import evaluate_run

    scores = evaluate_run(embedding_model, cache, splits, labels, label_model=net if len(labels) else None, out_dir=run_dir)
    info = {
        "run_name": run_name,
        "args": vars(args),
        "labels": labels,
        "minutes": round(minutes, 1),
        "epochs_run": sum(1 for _ in open(run_dir / "history.csv")) - 1,
        "n_tracks": {s: len(ts) for s, ts in splits.items()},
        "scores": scores,
        "dataset": args.dataset,
        "windows_per_track": args.windows,
        "features": cache.config.to_dict(),
    }
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(scores, indent=1))
    print(f"done in {minutes:.1f} min: {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
