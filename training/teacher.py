"""musicnn (Pons & Serra 2019, ISC licence) as an optional teacher, under TensorFlow 2 without its TF1 code.

Get the model once (29 MB wheel, not vendored):

    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn
    mkdir -p ~/.cache/musicrec-teacher && cd ~/.cache/musicrec-teacher && python -m zipfile -e /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl .

(or set ``MUSICREC_TEACHER`` to the folder that holds ``musicnn/MSD_musicnn/``).

The graph is imported from the checkpoint's ``.meta`` after dropping the training
nodes, the variables are assigned from the checkpoint, and the model is run on
musicnn's own input: 16 kHz, n_fft 512, hop 256, 96 mels, ``log10(10000·mel + 1)``,
187 frames (≈ 3 s) per patch. Outputs: 50 MSD tag probabilities (``model/Sigmoid``)
and the 200-d penultimate features (``model/dense/Relu``).

Alignment with our slices: a slice that starts at our frame ``s`` of a cached window
(hop 512 at 22 050 Hz) starts at ``s·512/22050`` s; the teacher patch starting at the
same time starts at 16-kHz frame ``round(t·16000/256)`` (:func:`teacher_frame_for_slice`).
Targets are computed on a grid of slice starts (every ``GRID`` frames) per window, and a
training slice takes the targets of the nearest grid start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicrec_gui.core.config import FeatureConfig
from training.config import TEACHER_DIR

SR, HOP, N_FFT, N_MELS, PATCH = 16000, 256, 512, 96, 187
GRID = 64  # our frames between teacher targets (≈ 1.49 s)


def teacher_frame_for_slice(start_frame: int, config: FeatureConfig = FeatureConfig()) -> int:
    """The musicnn frame (16 kHz, hop 256) at which the patch aligned with our slice starting at ``start_frame`` begins."""
    seconds = start_frame * config.hop_length / config.sample_rate
    return int(round(seconds * SR / HOP))


def grid_starts(n_frames: int, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    f = config.slice_frames
    return np.arange(0, max(n_frames - f, 0) + 1, GRID, dtype=np.int64)


def musicnn_input(audio16k: np.ndarray) -> np.ndarray:
    """musicnn's front end: (frames, 96) log-compressed mel at 16 kHz."""
    import librosa

    mel = librosa.feature.melspectrogram(y=audio16k, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
    return np.log10(10000 * mel.astype(np.float32) + 1)


def patches_for_starts(rep: np.ndarray, starts: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    out = np.zeros((len(starts), PATCH, N_MELS), dtype=np.float32)
    for i, s in enumerate(starts):
        t = teacher_frame_for_slice(int(s), config)
        part = rep[t : t + PATCH]
        out[i, : len(part)] = part
    return out


class Musicnn:
    """The MSD_musicnn graph in a TF1-compat session: ``run(patches) -> (tags (n,50), features (n,200))``."""

    def __init__(self, root: str | os.PathLike = TEACHER_DIR):
        from training.musicnn_port import original_graph_session

        folder = Path(root) / "musicnn" / "MSD_musicnn"
        if not (folder / ".meta").is_file():
            raise FileNotFoundError(f"musicnn checkpoint not found at {folder}/.meta; see training/teacher.py for how to get it")
        self.graph, self.session = original_graph_session(folder)
        self.x = self.graph.get_tensor_by_name("model/Placeholder:0")
        self.flag = self.graph.get_tensor_by_name("model/Placeholder_2:0")
        self.tags = self.graph.get_tensor_by_name("model/Sigmoid:0")
        self.features = self.graph.get_tensor_by_name("model/dense/Relu:0")

    def run(self, patches: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
        tags, feats = [], []
        for i in range(0, len(patches), batch):
            t, f = self.session.run([self.tags, self.features], {self.x: patches[i : i + batch], self.flag: False})
            tags.append(t)
            feats.append(f)
        return np.concatenate(tags), np.concatenate(feats)


_MODEL: Musicnn | None = None


def model() -> Musicnn:
    global _MODEL
    if _MODEL is None:
        _MODEL = Musicnn()
    return _MODEL


def window_audio16k(cache, w: int) -> np.ndarray:
    """Decode the same 30-s window the cache holds (from its stored offset), at 16 kHz."""
    return cache.window_audio(w, SR)


@dataclass
class TeacherTargets:
    """Per cached window, musicnn tags on the grid of slice starts: ``tags[w]`` is (n_grid, 50)."""

    tags: np.ndarray  # (n_windows, n_grid, 50) float16
    n_tags: int = 50

    def tags_at(self, window: int, start: int) -> np.ndarray:
        g = min(int(round(start / GRID)), self.tags.shape[1] - 1)
        return np.asarray(self.tags[window, g], dtype=np.float32)

    @classmethod
    def for_cache(cls, cache, verbose: bool = True) -> "TeacherTargets":
        path = Path(cache.directory) / "musicnn_tags.npy"
        if not path.is_file():
            n_grid = len(grid_starts(cache.spec.shape[2], cache.config))
            out = np.lib.format.open_memmap(path.with_suffix(".partial.npy"), mode="w+", dtype=np.float16,
                                            shape=(len(cache.spec), n_grid, 50))
            net = model()
            for w in range(len(cache.spec)):
                rep = musicnn_input(window_audio16k(cache, w))
                starts = grid_starts(cache.spec.shape[2], cache.config)
                tags, _ = net.run(patches_for_starts(rep, starts, cache.config))
                out[w] = tags
                if verbose and (w + 1) % 100 == 0:
                    print(f"  teacher targets {w + 1}/{len(cache.spec)} windows", flush=True)
            out.flush()
            del out
            os.replace(path.with_suffix(".partial.npy"), path)
        return cls(np.load(path, mmap_mode="r"))


def teacher_song_vectors(cache, track_idx) -> np.ndarray:
    """Baseline: musicnn's 200-d features averaged over the patches aligned with the app's slices of the centred excerpt."""
    from musicrec_gui.core.features import slice_starts

    import hashlib

    key = hashlib.sha256(np.asarray(track_idx, dtype=np.int64).tobytes()).hexdigest()[:12]
    cached = Path(cache.directory) / f"musicnn_200d_{key}.npy"
    if cached.is_file():
        return np.load(cached)
    net = model()
    vectors = []
    for t in track_idx:
        w = int(cache.windows_of(int(t))[0])
        rep = musicnn_input(window_audio16k(cache, w))
        starts = slice_starts(max(int(cache.n_frames[w]), cache.config.slice_frames), slice_frames=cache.config.slice_frames)
        _, feats = net.run(patches_for_starts(rep, starts, cache.config))
        vectors.append(feats.mean(0))
    np.save(cached, np.stack(vectors))
    return np.stack(vectors)
