"""Export a training run's best embedding model as the bundled encoder.

Writes ``resources/encoder/compact.keras`` and ``compact.json`` through the app's
``save_encoder`` (the JSON carries the sha256 of the written file, the feature
parameters the run was trained on, labels, embedding size, version, training data
description, minutes of training and the held-out test scores), then reloads it with
the app's ``Encoder`` (safe_mode=True) and checks it reproduces the run's embeddings.

The feature parameters come from the run's saved configuration (``config.json``, see
``training/config.py``), never from today's defaults; a run saved before they were
recorded needs ``--assume-default-features``. No machine-specific path is written: a
data location inside the repository is written relative to it, any other is left out.

    python -m training.export --run training/runs/NAME --version 0.2.0
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from musicrec_gui.core.runtime import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import numpy as np

from training.config import REPO_ROOT, repo_relative, run_features

DEFAULT_OUT = REPO_ROOT / "resources" / "encoder" / "compact.keras"
PATH_ARGS = ("data_root",)  # arguments that hold a location on the training machine


def describe_data(run: dict) -> str:
    if run.get("dataset") == "corpus":
        n = run.get("n_tracks", {})
        return (
            "Debian game-soundtrack corpus (362 freely licensed tracks, 16.9 h, 18 packages; "
            "label = package/album). Track-level split by package with near-duplicate names kept together "
            f"(train {n.get('train')}, validation {n.get('validation')}, test {n.get('test')} tracks); "
            f"{run.get('windows_per_track', 1)} cached 30-s window(s) per track, slices at random offsets."
        )
    return f"{run.get('dataset')} dataset, track-level splits {run.get('n_tracks')}"


def training_command(args: dict) -> str:
    """The ``python -m training.train`` command line of a run, without machine-specific paths."""
    parts = []
    for key, value in args.items():
        if value is None or value is False or key == "run_name":  # 0 is a value (--label-weight 0)
            continue
        if key in PATH_ARGS:
            value = repo_relative(value) or key.upper()  # outside the repository: a placeholder
        flag = f"--{key.replace('_', '-')}"
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(["python -m training.train", *parts])


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike = DEFAULT_OUT, *, version: str, name: str = "musicrec",
               description: str = "", extra_scores: dict | None = None, assume_default_features: bool = False):
    """Export ``run_dir/embedding.keras`` with the run's own feature configuration; returns the written ``EncoderConfig``."""
    import keras

    from musicrec_gui.core.config import FeatureConfig
    from musicrec_gui.core.encoder import Encoder, EncoderConfig, save_encoder

    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    try:
        features = run_features(run_dir)
    except KeyError:
        if not assume_default_features:
            raise
        features = FeatureConfig()
    model = keras.saving.load_model(run_dir / "embedding.keras", compile=False, safe_mode=True)
    args = run.get("args", {})
    config = EncoderConfig(
        name=name,
        version=version,
        embedding_size=int(model.output_shape[-1]),
        weights_sha256="",
        features=features,
        labels=tuple(run.get("labels", ())),
        architecture=args.get("architecture", "compact"),
        description=description
        or (f"{args.get('objective')} objective"
            + (f" + album head (weight {args.get('label_weight')})" if args.get("objective") == "contrastive" and args.get("label_weight") else "")
            + (" + musicnn teacher tags" if args.get("teacher") else "")
            + "; slice embeddings are L2-normalised; song vector = mean over slices of the centred 30-s excerpt."),
        training={
            "data": describe_data(run),
            "objective": args.get("objective"),
            "minutes": run.get("minutes"),
            "epochs": run.get("epochs_run"),
            "seed": args.get("seed"),
            "run": run.get("run_name"),
            "hyperparameters": {k: args.get(k) for k in ("batch_tracks", "learning_rate", "temperature", "label_weight",
                                                         "teacher_weight", "slices_per_track", "windows")},
            "command": training_command(args),
        },
        scores={"test_split": run.get("scores", {}), **(extra_scores or {})},
    )
    written = save_encoder(model, out, config)
    # Round trip through the app's loader: safe mode, sha256, shapes, same numbers.
    encoder = Encoder(out)
    probe = np.random.default_rng(0).uniform(0, 1, size=(4, features.n_mels, features.slice_frames, 1)).astype(np.float32)
    a = encoder.embed_slices(probe)
    b = np.asarray(model(probe, training=False))
    if not np.allclose(a, b, atol=1e-5):
        raise RuntimeError("exported encoder does not reproduce the run's embeddings")
    size_mb = Path(encoder.model_path).stat().st_size / 1e6
    print(f"exported {encoder.model_path} ({size_mb:.1f} MB), key {encoder.key}")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--version", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("--musicnn-scores", default=None,
                        help="scores.json of `training.evaluate --teacher` to record the musicnn baseline too")
    parser.add_argument("--assume-default-features", action="store_true",
                        help="for a run saved before its features were recorded: describe it with today's FeatureConfig()")
    args = parser.parse_args(argv)
    extra = None
    if args.musicnn_scores:
        extra = {"musicnn_200d_same_test_split": json.loads(Path(args.musicnn_scores).read_text()).get("musicnn_200d")}
    try:
        export_run(args.run, args.out, version=args.version, description=args.description, extra_scores=extra,
                   assume_default_features=args.assume_default_features)
    except KeyError as err:
        raise SystemExit(err.args[0]) from None


if __name__ == "__main__":
    main()
