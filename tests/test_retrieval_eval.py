"""training/retrieval.py's scoring helpers (no scan, no encoder)."""

import numpy as np
import pytest

from training.retrieval import (WHITENINGS, mfcc_vectors, pca_whitening, per_package_p1, random_baseline,
                                retrieval_scores, whitened_scores)


def clustered(n_per=5, groups=4, d=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, d)) * 3
    v = np.concatenate([c + rng.standard_normal((n_per, d)) for c in centres]) + 10.0  # a shared offset
    labels = np.repeat([f"p{i}" for i in range(groups)], n_per)
    return v, labels


def test_per_package_matches_overall_p1():
    v, labels = clustered()
    per = per_package_p1(v, labels, centre=True)
    total = sum(x["p@1"] * x["queries"] for x in per.values()) / sum(x["queries"] for x in per.values())
    assert total == pytest.approx(retrieval_scores(v, labels, centre=True)["p@1"])
    assert set(per) == set(labels)


def test_full_rank_whitening_on_its_own_set_is_degenerate_and_truncation_is_not():
    v, labels = clustered(n_per=5, groups=4, d=40)
    full = pca_whitening(v)(v)  # n - 1 = 19 axes, no shrinkage
    z = full / np.linalg.norm(full, axis=1, keepdims=True)
    off = (z @ z.T)[~np.eye(len(z), dtype=bool)]
    assert np.allclose(off, off[0])  # every pair equally similar
    assert pca_whitening(v, dims=3)(v).shape == (20, 3)
    scores = whitened_scores(v, labels)
    assert set(scores) == {name for name, _, _ in WHITENINGS}
    assert retrieval_scores(pca_whitening(v, dims=3)(v), labels)["p@1"] > 0.9  # the 3 between-package axes


def test_random_baseline_agrees_with_analytic_p1():
    labels = np.repeat(["a", "b", "c", "d"], [6, 4, 3, 1])
    out = random_baseline(labels, draws=400)
    assert out["p@1"] == pytest.approx(out["p@1_analytic"], abs=0.03)
    assert out["queries"] == 13


def test_mfcc_vectors_on_generated_audio(tmp_path):
    import soundfile as sf

    sr = 22050
    t = np.arange(int(40 * sr)) / sr
    tracks = []
    for i, f in enumerate((220.0, 220.0, 1760.0)):
        path = tmp_path / f"{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)
        tracks.append((path, "low" if f < 1000 else "high"))
    v, labels = mfcc_vectors(tracks, patches=4)
    assert v.shape == (3, 60) and labels == ["low", "low", "high"]
    assert np.allclose(v[0], v[1], atol=1e-3)
    assert not np.allclose(v[0], v[2], atol=1.0)
