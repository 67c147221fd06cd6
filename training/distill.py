"""Distil the musicnn backbone into a small student on the same front end.

The student sees exactly the app's musicnn input (``core.features``: 16 kHz, 96 mel bands,
187-frame patches of ``log10(1 + 10000·mel)``) and is trained to reproduce the backbone's
200-d ``embedding`` on every patch of the corpus's *train* split, clean and augmented. Its tag
head is the backbone's own (batch-norm + 50 sigmoids, copied and frozen), so tags come out
with the same labels and the embedding is pulled towards what those tags read.

Augmentation happens on mel power, before the teacher labels the result, so the teacher
supplies a correct target for every new input: gain (−12…+6 dB), a smooth random EQ
(±6 dB), a pitch-like shift of ±2 mel bands, and with probability ½ a mix with a patch of
another song. Stages (each resumable; the run's folder keeps its arrays and config):

    python -m training.distill extract  --run training/runs/student   # decode train/validation patches
    python -m training.distill targets  --run training/runs/student --copies 2
    python -m training.distill train    --run training/runs/student --epochs 12
    python -m training.distill export   --run training/runs/student --out resources/encoder/student.keras
    python -m training.distill plot     --run training/runs/student --out docs/model/distill_history.png
    python -m training.distill agreement --out resources/encoder/student.keras   # teacher–student cosine

Then measure it through the app's own scan (``python -m training.retrieval --encoder ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from musicrec_gui.core.runtime import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import numpy as np

from musicrec_gui.core.features import cut_windows, window_length, window_slices

DEFAULT_TEACHER = Path(__file__).resolve().parent.parent / "resources" / "encoder" / "musicnn.keras"
MAX_PATCHES_PER_SONG = 64
MAX_SONG_SECONDS = 600.0


def feature_config():
    from training.musicnn_port import musicnn_feature_config

    return musicnn_feature_config()


# --------------------------------------------------------------------------- data


def song_patches(path: str, *, max_patches: int = MAX_PATCHES_PER_SONG) -> np.ndarray:
    """Non-overlapping musicnn patches of a whole song (evenly thinned to ``max_patches``).

    Returns
    -------
    np.ndarray [shape=(n, 96, 187)], float16
    """
    from musicrec_gui.core.audio import load_audio

    config = feature_config()
    audio = load_audio(path, sample_rate=config.sample_rate, duration=MAX_SONG_SECONDS, time_limit=None)
    length = window_length(config)
    starts = np.arange(0, max(audio.size - length, 0) + 1, length)
    if len(starts) > max_patches:
        starts = starts[np.linspace(0, len(starts) - 1, max_patches).round().astype(int)]
    patches = window_slices(cut_windows(audio, starts, length), config=config)[..., 0]
    return patches.astype(np.float16)


def _song_job(args):
    index, path = args
    try:
        return index, song_patches(path), ""
    except Exception as err:  # one bad song must not stop the extraction
        return index, None, f"{type(err).__name__}: {err}"


def extract(run: Path, *, workers: int = 2) -> None:
    """Decode every train and validation song of the corpus into ``run/<split>_x.npy``."""
    from multiprocessing import Pool

    from training.data import corpus_tracks, split_tracks

    splits = split_tracks(corpus_tracks())
    run.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation"):
        if (run / f"{split}_x.npy").is_file():
            continue
        tracks = splits[split]
        parts: dict[int, np.ndarray] = {}
        t0 = time.time()
        with Pool(workers) as pool:
            for done, (i, patches, error) in enumerate(
                pool.imap_unordered(_song_job, list(enumerate(t.path for t in tracks)))
            ):
                if error:
                    print(f"  skipped {tracks[i].path}: {error}", flush=True)
                elif len(patches):
                    parts[i] = patches
                if (done + 1) % 25 == 0:
                    print(f"  {split}: {done + 1}/{len(tracks)} songs, {time.time() - t0:.0f} s", flush=True)
        order = sorted(parts)
        x = np.concatenate([parts[i] for i in order])
        song = np.concatenate([np.full(len(parts[i]), i, dtype=np.int32) for i in order])
        np.save(run / f"{split}_song.npy", song)
        np.save(run / f"{split}_x.partial.npy", x)
        os.replace(run / f"{split}_x.partial.npy", run / f"{split}_x.npy")
        (run / f"{split}_songs.json").write_text(json.dumps([t.path for t in tracks], indent=0), encoding="utf-8")
        print(f"{split}: {len(x)} patches from {len(order)} songs in {time.time() - t0:.0f} s", flush=True)


def augment(x: np.ndarray, song: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain, EQ, pitch-like shift and two-song mixing, on mel power.

    Parameters
    ----------
    x : np.ndarray [shape=(n, 96, 187)]
        Log-compressed patches, ``log10(1 + 10000·mel)``.
    song : np.ndarray [shape=(n,)], int
        Which song each patch comes from (a mix partner is always from another song).

    Returns
    -------
    np.ndarray [shape=(n, 96, 187)], float16
    """
    n, bands, _ = x.shape
    power = (np.power(10.0, x.astype(np.float32)) - 1.0) / 1e4
    out = np.empty_like(power)
    band = np.arange(bands, dtype=np.float32)
    for i in range(n):
        p = power[i]
        if rng.random() < 0.5:
            j = int(rng.integers(n))
            while song[j] == song[i] and len(np.unique(song)) > 1:
                j = int(rng.integers(n))
            share = rng.uniform(0.2, 0.5)
            p = (1 - share) * p + share * power[j] * 10 ** (rng.uniform(-6, 6) / 10)
        shift = rng.uniform(-2.0, 2.0)
        source = np.clip(band - shift, 0, bands - 1)
        lo = np.floor(source).astype(int)
        hi = np.minimum(lo + 1, bands - 1)
        frac = (source - lo)[:, None]
        p = p[lo] * (1 - frac) + p[hi] * frac
        # A smooth EQ: a few random cosines over the band axis, ±6 dB at most.
        curve = sum(rng.uniform(-1, 1) * np.cos(np.pi * k * band / bands + rng.uniform(0, np.pi)) for k in (1, 2, 3))
        curve = 6.0 * curve / max(1.0, float(np.abs(curve).max()))
        gain = rng.uniform(-12.0, 6.0)
        out[i] = p * (10 ** ((curve + gain) / 10))[:, None]
    return np.log10(1.0 + 1e4 * np.maximum(out, 0.0)).astype(np.float16)


def teacher_outputs(teacher, x: np.ndarray, *, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The backbone's (embedding, tags) for patches [shape=(n, 96, 187)], in one fixed batch shape."""
    import tensorflow as tf

    call = tf.function(lambda b: teacher(b, training=False))
    embeddings, tags = [], []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch].astype(np.float32)[..., None]
        real = len(chunk)
        if real < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - real, *chunk.shape[1:]), np.float32)])
        e, t = call(tf.constant(chunk))
        embeddings.append(e.numpy()[:real])
        tags.append(t.numpy()[:real])
    return np.concatenate(embeddings), np.concatenate(tags).astype(np.float16)


def targets(run: Path, *, copies: int = 2, teacher_path: Path = DEFAULT_TEACHER, seed: int = 0) -> None:
    """Teacher targets for the clean patches and ``copies`` augmented copies of the train split."""
    from musicrec_gui.core.encoder import import_keras

    keras = import_keras()
    teacher = keras.saving.load_model(teacher_path, safe_mode=True, compile=False)
    jobs = [("validation", 0, False), ("train", 0, False)] + [("train", c, True) for c in range(1, copies + 1)]
    for split, copy, augmented in jobs:
        name = f"{split}_{copy}"
        if (run / f"{name}_emb.npy").is_file():
            continue
        x = np.load(run / f"{split}_x.npy", mmap_mode="r")
        song = np.load(run / f"{split}_song.npy")
        t0 = time.time()
        if augmented:
            rng = np.random.default_rng(seed * 1000 + copy)
            xs = np.concatenate([augment(np.asarray(x[i : i + 512]), song[i : i + 512], rng) for i in range(0, len(x), 512)])
            # Mix partners come from the whole split, not only the same block of 512.
            np.save(run / f"{name}_x.npy", xs)
        else:
            xs = x
        emb, tags = [], []
        for i in range(0, len(xs), 2048):
            e, t = teacher_outputs(teacher, np.asarray(xs[i : i + 2048]))
            emb.append(e)
            tags.append(t)
            print(f"  {name}: {min(i + 2048, len(xs))}/{len(xs)} patches, {time.time() - t0:.0f} s", flush=True)
        np.save(run / f"{name}_tags.npy", np.concatenate(tags))
        np.save(run / f"{name}_emb.partial.npy", np.concatenate(emb))
        os.replace(run / f"{name}_emb.partial.npy", run / f"{name}_emb.npy")


# --------------------------------------------------------------------------- model


def build_student(*, teacher=None, widths: tuple[int, ...] = (16, 32, 64, 128, 256)):
    """A small 2-D CNN with musicnn's input and outputs: ``[embedding (None, 200), tags (None, 50)]``.

    Five 3×3 conv blocks (batch-norm, ReLU; 2×2 max-pooling after the first four), global
    mean and max pooling, a 200-unit ReLU layer (the embedding, like the backbone's), then the
    backbone's own tag head (copied from ``teacher`` and frozen when given).
    """
    from musicrec_gui.core.encoder import import_keras

    keras = import_keras()
    layers = keras.layers
    inputs = keras.Input((96, 187, 1), name="logmel")
    x = layers.BatchNormalization(name="input_norm")(inputs)
    for i, width in enumerate(widths):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"conv{i + 1}_norm")(x)
        x = layers.ReLU(name=f"conv{i + 1}_relu")(x)
        if i < len(widths) - 1:
            x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    pooled = layers.Concatenate(name="pool")([layers.GlobalAveragePooling2D(name="mean_pool")(x),
                                              layers.GlobalMaxPooling2D(name="max_pool")(x)])
    hidden = layers.Dense(512, activation="relu", name="hidden")(pooled)
    embedding = layers.Dense(200, activation="relu", name="embedding")(hidden)
    normed = layers.BatchNormalization(epsilon=0.001, name="tags_norm")(embedding)
    tags = layers.Dense(50, activation="sigmoid", name="tags")(normed)
    model = keras.Model(inputs, [embedding, tags], name="musicnn_student")
    if teacher is not None:
        model.get_layer("tags_norm").set_weights(teacher.get_layer("batch_normalization_10").get_weights())
        model.get_layer("tags").set_weights(teacher.get_layer("tags").get_weights())
        model.get_layer("tags_norm").trainable = False
        model.get_layer("tags").trainable = False
    return model


def macs(model) -> int:
    """Multiply-accumulates per patch of the convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        if layer.__class__.__name__ == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += kh * kw * cin * cout * h * w
        elif layer.__class__.__name__ == "Dense":
            total += int(np.prod(layer.kernel.shape))
    return int(total)


# --------------------------------------------------------------------------- training


def _load_split(run: Path, split: str, copy: int):
    x = np.load(run / (f"{split}_x.npy" if copy == 0 else f"{split}_{copy}_x.npy"), mmap_mode="r")
    return x, np.load(run / f"{split}_{copy}_emb.npy"), np.load(run / f"{split}_{copy}_tags.npy")


def train(run: Path, *, epochs: int = 12, batch: int = 64, learning_rate: float = 2e-3, tag_weight: float = 1.0,
          seed: int = 0, teacher_path: Path = DEFAULT_TEACHER) -> None:
    """Fit the student to the teacher's targets; a checkpoint per epoch, resumed when present."""
    import tensorflow as tf

    from musicrec_gui.core.encoder import import_keras

    keras = import_keras()
    tf.random.set_seed(seed)
    copies = sorted(int(p.name.split("_")[1]) for p in run.glob("train_*_emb.npy"))
    parts = [_load_split(run, "train", c) for c in copies]
    x = np.concatenate([np.asarray(p[0]) for p in parts])
    emb = np.concatenate([p[1] for p in parts]).astype(np.float32)
    tags = np.concatenate([p[2] for p in parts]).astype(np.float32)
    vx, vemb, vtags = _load_split(run, "validation", 0)
    vx = np.asarray(vx)
    scale = emb.std(0) + 0.05 * emb.std()  # per-dimension, floored: dead dimensions are not blown up
    config = {"epochs": epochs, "batch": batch, "learning_rate": learning_rate, "tag_weight": tag_weight,
              "seed": seed, "copies": copies, "train_patches": int(len(x)), "validation_patches": int(len(vx)),
              "teacher": str(Path(teacher_path).name)}
    (run / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    np.save(run / "scale.npy", scale)

    teacher = keras.saving.load_model(teacher_path, safe_mode=True, compile=False)
    model = build_student(teacher=teacher)
    del teacher
    state_path = run / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"epoch": 0, "history": []}
    if state["epoch"]:
        model.load_weights(run / "student.weights.h5")
    steps = len(x) // batch
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps, alpha=0.02)
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.iterations.assign(state["epoch"] * steps) if state["epoch"] else None
    inv = tf.constant(1.0 / scale, tf.float32)
    bce = keras.losses.BinaryCrossentropy()

    def losses(xb, eb, tb, training):
        e, t = model(xb, training=training)
        mse = tf.reduce_mean(tf.square((e - eb) * inv))
        cosine = tf.reduce_mean(tf.reduce_sum(tf.math.l2_normalize(e, 1) * tf.math.l2_normalize(eb, 1), 1))
        return mse, cosine, bce(tb, t)

    @tf.function(reduce_retracing=True, autograph=False)  # plain graph code: never re-reads this file
    def step(xb, eb, tb):
        with tf.GradientTape() as tape:
            mse, cosine, tag_loss = losses(xb, eb, tb, True)
            loss = mse + tag_weight * tag_loss
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return mse, cosine, tag_loss

    @tf.function(reduce_retracing=True, autograph=False)  # plain graph code: never re-reads this file
    def evaluate(xb, eb, tb):
        return losses(xb, eb, tb, False)

    rng = np.random.default_rng(seed + state["epoch"])
    print(f"student: {model.count_params():,} parameters, {macs(model) / 1e6:.0f} MMAC per patch; "
          f"{len(x)} train patches, {len(vx)} validation", flush=True)
    for epoch in range(state["epoch"], epochs):
        t0 = time.time()
        order = rng.permutation(len(x))
        sums = np.zeros(3)
        for s in range(steps):
            idx = np.sort(order[s * batch : (s + 1) * batch])
            out = step(tf.constant(x[idx].astype(np.float32)[..., None]), tf.constant(emb[idx]), tf.constant(tags[idx]))
            sums += [float(v) for v in out]
            if (s + 1) % 100 == 0:
                print(f"  epoch {epoch + 1} step {s + 1}/{steps}: mse {sums[0] / (s + 1):.3f} "
                      f"cos {sums[1] / (s + 1):.3f} tags {sums[2] / (s + 1):.4f}, {time.time() - t0:.0f} s", flush=True)
        val = np.zeros(3)
        vb = 0
        for i in range(0, len(vx) - batch + 1, batch):
            val += [float(v) for v in evaluate(tf.constant(vx[i : i + batch].astype(np.float32)[..., None]),
                                               tf.constant(vemb[i : i + batch].astype(np.float32)),
                                               tf.constant(vtags[i : i + batch].astype(np.float32)))]
            vb += 1
        val /= max(vb, 1)
        record = {"epoch": epoch + 1, "train_mse": sums[0] / steps, "train_cosine": sums[1] / steps,
                  "train_tags": sums[2] / steps, "val_mse": val[0], "val_cosine": val[1], "val_tags": val[2],
                  "seconds": time.time() - t0}
        model.save_weights(run / "student.partial.weights.h5")
        os.replace(run / "student.partial.weights.h5", run / "student.weights.h5")
        state = {"epoch": epoch + 1, "history": state["history"] + [record]}
        state_path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        print(f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch"),
              flush=True)


# --------------------------------------------------------------------------- agreement


def agreement(student_path: Path, *, teacher_path: Path = DEFAULT_TEACHER, sets=("outside", "validation")) -> dict:
    """Cosine of the student's and the teacher's embeddings of the same patches (8 spread per song).

    On the corpus's validation songs and on the outside set (music neither was trained on): a
    student that only learned the corpus agrees less outside it.
    """
    from musicrec_gui.core.audio import load_song_windows
    from musicrec_gui.core.encoder import Encoder
    from musicrec_gui.core.features import window_slices
    from training.retrieval import held_out_set

    teacher, student = Encoder(teacher_path), Encoder(student_path)
    features = teacher.config.features
    out = {}
    for set_name in sets:
        cosines = []
        for path, _label in held_out_set(set_name):
            try:
                windows, _offset = load_song_windows(str(path), config=features, patches=8)
            except Exception as err:  # noqa: BLE001 - a bad file is skipped, and said
                print(f"  skipped {path}: {err}")
                continue
            x = window_slices(np.asarray(windows), config=features)
            a, b = teacher.embed_slices(x), student.embed_slices(x)
            a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-9)
            b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-9)
            cosines.extend((a * b).sum(axis=1).tolist())
        c = np.asarray(cosines)
        out[set_name] = {"patches": int(len(c)), "median": float(np.median(c)), "mean": float(c.mean()),
                         "p10": float(np.percentile(c, 10))}
        print(f"{set_name}: {len(c)} patches, cosine(student, teacher) median {out[set_name]['median']:.3f}, "
              f"mean {out[set_name]['mean']:.3f}, 10th percentile {out[set_name]['p10']:.3f}")
    return out


# --------------------------------------------------------------------------- export


def export(run: Path, out: Path, *, version: str = "1.0.0") -> None:
    """Write the student as an encoder the app loads (``.keras`` + JSON), with its run's config."""
    from musicrec_gui.core.encoder import Encoder, EncoderConfig, save_encoder
    from training.musicnn_port import MSD_LABELS

    model = build_student()
    model.load_weights(run / "student.weights.h5")
    config = json.loads((run / "config.json").read_text())
    state = json.loads((run / "state.json").read_text())
    encoder_config = EncoderConfig(
        name="musicnn-student",
        version=version,
        embedding_size=200,
        weights_sha256="",
        features=feature_config(),
        labels=MSD_LABELS,
        architecture="musicnn-student",
        description=(
            "A small 2-D CNN distilled from musicnn MSD_musicnn (Pons & Serra 2019, ISC licence, see "
            "LICENSE-musicnn.txt): trained by training/distill.py to reproduce the backbone's 200-d embedding on "
            "clean and augmented patches of the corpus's train split; the tag head is musicnn's own. Input and "
            "outputs as musicnn.keras."
        ),
        outputs=("embedding", "tags"),
        training={"command": "python -m training.distill train", "config": config,
                  "history": state["history"][-1:], "macs_per_patch": macs(model)},
    )
    save_encoder(model, out, encoder_config)
    encoder = Encoder(out)
    print(f"wrote {encoder.model_path} ({Path(encoder.model_path).stat().st_size / 1e6:.1f} MB), key {encoder.key}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["extract", "targets", "train", "export", "plot", "agreement"])
    parser.add_argument("--run", type=Path, default=Path("training/runs/student"))
    parser.add_argument("--copies", type=int, default=2, help="augmented copies of the train split (targets)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--out", type=Path, default=Path("resources/encoder/student.keras"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.stage == "extract":
        extract(args.run, workers=args.workers)
    elif args.stage == "targets":
        targets(args.run, copies=args.copies)
    elif args.stage == "train":
        train(args.run, epochs=args.epochs, learning_rate=args.learning_rate)
    elif args.stage == "agreement":
        agreement(args.out)
    elif args.stage == "plot":
        from training.plots import plot_distillation

        history = json.loads((args.run / "state.json").read_text())["history"]
        print(f"wrote {plot_distillation(history, args.out)}")
    else:
        export(args.run, args.out)


if __name__ == "__main__":
    main()
