"""`python -m training.train` end to end on the FMA-shaped fixture (a real, tiny training run)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_script_runs_end_to_end_on_fma_fixture(tmp_path):
    from test_training import _write_fma_fixture

    _write_fma_fixture(tmp_path / "fma")
    run_name = f"pytest-fma-{os.getpid()}"
    run_dir = ROOT / "training" / "runs" / run_name
    cache_root = ROOT / "training" / "cache"
    caches_before = set(cache_root.iterdir()) if cache_root.exists() else set()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "training.train", "--dataset", "fma", "--data-root", str(tmp_path / "fma"),
             "--epochs", "2", "--minutes", "1", "--batch-tracks", "4", "--slices-per-track", "2", "--windows", "1",
             "--run-name", run_name],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        for name in ("history.csv", "history.png", "confusion_test.png", "embedding.keras", "scores.json", "run.json",
                     "config.json"):
            assert (run_dir / name).stat().st_size > 0, name
        from musicrec_gui.core.config import FeatureConfig
        from training.config import run_features

        assert run_features(run_dir) == FeatureConfig()  # the run's front end, saved with it
        rows = list(csv.DictReader(open(run_dir / "history.csv")))
        assert 1 <= len(rows) <= 2 and "loss" in rows[0]
        import keras

        model = keras.saving.load_model(run_dir / "embedding.keras", safe_mode=True, compile=False)
        assert model.input_shape[1:] == (128, 128, 1) and model.output_shape[-1] == 32
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        for cache in (set(cache_root.iterdir()) if cache_root.exists() else set()) - caches_before:
            if cache.name.startswith("fma-"):  # only this test's dataset cache
                shutil.rmtree(cache, ignore_errors=True)
