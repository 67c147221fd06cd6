"""Where training reads and writes, and the configuration saved with each run.

One place for every location the training code, its tests and the benchmarks use:

- :func:`corpus_dir`: the Debian game-soundtrack corpus (``manifest.tsv`` and the audio
  files); ``$MUSICREC_CORPUS``, else ``~/.cache/musicrec-corpus``;
- :data:`CACHE_DIR`: decoded window caches (``training/cache/``, git-ignored);
- :data:`RUNS_DIR`: one folder per training run (``training/runs/NAME/``, git-ignored);
- :data:`OUTSIDE_DIR`: the held-out "outside" soundtracks of ``training/retrieval.py`` and
  ``training/head.py`` (``$MUSICREC_OUTSIDE``, else ``~/.cache/musicrec-outside``);
- :data:`TEACHER_DIR`: the unpacked musicnn wheel (``$MUSICREC_TEACHER``, else
  ``~/.cache/musicrec-teacher``; see ``training/teacher.py``).

A run folder holds :data:`RUN_CONFIG` (``config.json``, written before training starts:
the command-line arguments, the labels and the app's :class:`FeatureConfig` that the
cached windows were computed with) and ``run.json`` (written at the end: the same plus
minutes, epochs and the test scores). ``training/export.py`` reads the feature
configuration from there, so the shipped encoder describes the front end it was trained on.

This module imports nothing heavy: tests and benchmarks import :func:`corpus_dir` from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_ENV = "MUSICREC_CORPUS"
DEFAULT_CORPUS_DIR = Path.home() / ".cache" / "musicrec-corpus"
CACHE_DIR = REPO_ROOT / "training" / "cache"
RUNS_DIR = REPO_ROOT / "training" / "runs"
OUTSIDE_DIR = Path(os.environ.get("MUSICREC_OUTSIDE") or Path.home() / ".cache" / "musicrec-outside")
TEACHER_DIR = Path(os.environ.get("MUSICREC_TEACHER") or Path.home() / ".cache" / "musicrec-teacher")
# The head experiment's feature cache (training/head.py): large, rebuilt on demand.
HEAD_CACHE_DIR = Path(os.environ.get("MUSICREC_HEAD_CACHE") or CACHE_DIR / "head")
RUN_CONFIG = "config.json"


def corpus_dir() -> Path:
    """The soundtrack corpus folder: ``$MUSICREC_CORPUS`` if set, else ``~/.cache/musicrec-corpus``."""
    return Path(os.environ.get(CORPUS_ENV) or DEFAULT_CORPUS_DIR).expanduser()


def repo_relative(path: str | os.PathLike) -> str | None:
    """``path`` relative to the repository (POSIX separators), or None when it lies outside it."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return None


def save_run_config(run_dir: str | os.PathLike, *, args: dict[str, Any], features, labels, dataset: str,
                    windows_per_track: int) -> Path:
    """Write ``run_dir/config.json``: what the run was trained with (arguments, labels, front end)."""
    path = Path(run_dir) / RUN_CONFIG
    config = {
        "args": dict(args),
        "features": features.to_dict(),
        "labels": list(labels),
        "dataset": dataset,
        "windows_per_track": int(windows_per_track),
    }
    path.write_text(json.dumps(config, indent=1))
    return path


def load_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A run's saved configuration: ``config.json``, else the same keys from ``run.json`` (older runs)."""
    run_dir = Path(run_dir)
    for name in (RUN_CONFIG, "run.json"):
        if (run_dir / name).is_file():
            return json.loads((run_dir / name).read_text())
    raise FileNotFoundError(f"{run_dir} holds neither {RUN_CONFIG} nor run.json: not a training run folder")


def run_features(run_dir: str | os.PathLike):
    """The :class:`FeatureConfig` a run's windows were computed with (from its saved configuration).

    Raises ``KeyError`` for a run saved before the feature configuration was recorded.
    """
    from musicrec_gui.core.config import FeatureConfig

    saved = load_run_config(run_dir)
    if "features" not in saved:
        raise KeyError(f"{run_dir}: the run's configuration does not record its features (a run older than "
                       f"{RUN_CONFIG}); pass --assume-default-features to export it with today's FeatureConfig()")
    return FeatureConfig.from_dict(saved["features"])
