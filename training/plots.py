"""Figures of a training run: the training history, the album head's confusion matrix, test scores.

matplotlib is imported inside each function (with the Agg backend), so nothing here
costs an import until a figure is drawn; ``pip install matplotlib`` (the ``training`` extra).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history_csv: Path, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    with open(history_csv) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return []
    cols = {k: [float(r[k]) if r[k] not in ("", "nan") else np.nan for r in rows] for k in rows[0]}
    epochs = np.arange(1, len(rows) + 1)
    paths = []
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("label_acc", "val_track_acc", "val_p1", "val_map"):
        if key in cols and not np.all(np.isnan(cols[key])):
            ax[0].plot(epochs, cols[key], label=key if key.startswith("val_") else f"train {key}")
    ax[0].set_title("accuracy (train, validation) / retrieval (validation)")
    ax[0].set_xlabel("epoch")
    ax[0].legend()
    for key in ("loss", "ntxent", "label_loss", "tag_loss"):
        if key in cols and not np.all(np.isnan(cols[key])) and np.nanmax(cols[key]) > 0:
            ax[1].plot(epochs, cols[key], label=key)
    ax[1].set_title("training losses")
    ax[1].set_xlabel("epoch")
    ax[1].legend()
    fig.tight_layout()
    paths.append(out_dir / "history.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def plot_confusion(true, pred, names, path: Path, title: str) -> None:
    plt = _pyplot()
    n = len(names)
    cm = np.zeros((n, n), dtype=int)
    for t, p in zip(true, pred):
        cm[t, p] += 1
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_scores(scores: dict, path, title: str = "retrieval by album on held-out test tracks") -> None:
    """Bar chart of P@1 / P@5 / mAP (album) for the encoder and the baselines."""
    plt = _pyplot()
    systems = [k for k in ("random", "mfcc_stats", "musicnn_200d", "encoder", "encoder_v0") if "album" in scores.get(k, {})]
    metrics = ("p@1", "p@5", "map")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(systems)
    for i, sys_name in enumerate(systems):
        vals = [scores[sys_name]["album"][m] for m in metrics]
        ax.bar(np.arange(3) + i * width, vals, width, label=sys_name)
    ax.set_xticks(np.arange(3) + width * (len(systems) - 1) / 2, metrics)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_distillation(history: list[dict], out: Path) -> Path:
    """Student-vs-teacher agreement per epoch (``training/distill.py``'s ``state.json`` history).

    Left: the embedding's error scaled per dimension (1 = as far off as predicting each
    dimension's mean). Right: cosine between student and teacher embeddings of a patch.
    Train (clean and augmented patches of the train split) and validation (clean patches of
    songs never trained on).
    """
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_mse", "train"), ("val_mse", "validation")):
        ax[0].plot(epochs, [h[key] for h in history], marker="o", label=label)
    ax[0].set_title("embedding error (scaled MSE, lower is better)")
    ax[0].set_xlabel("epoch")
    ax[0].legend()
    for key, label in (("train_cosine", "train"), ("val_cosine", "validation")):
        ax[1].plot(epochs, [h[key] for h in history], marker="o", label=label)
    ax[1].set_title("cosine(student, teacher) per patch (higher is better)")
    ax[1].set_xlabel("epoch")
    ax[1].set_ylim(0.7, 1.0)
    ax[1].legend()
    fig.suptitle("Distilling musicnn into the student")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
