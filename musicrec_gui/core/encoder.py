"""The trained encoder: a ``.keras`` model plus the JSON config that says what it is.

An encoder is two files side by side, ``NAME.keras`` and ``NAME.json``. The JSON
carries everything needed to use the model correctly (nanoGPT's
checkpoint-carries-config): the feature parameters it was trained on, the
embedding size, label names, a version, and the sha256 of the ``.keras`` file,
checked before anything is loaded. Models are loaded with Keras'
``safe_mode=True``: no code is ever deserialised from a model file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicrec_gui.core.config import FeatureConfig

CONFIG_FORMAT = 1


class EncoderError(Exception):
    """The encoder files are missing, tampered with, or do not fit together."""


@dataclass(frozen=True)
class EncoderConfig:
    """What an encoder is. Serialised as the JSON beside the ``.keras`` file."""

    name: str
    version: str
    embedding_size: int
    weights_sha256: str
    features: FeatureConfig = FeatureConfig()
    labels: tuple[str, ...] = ()
    architecture: str = "seed"
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    format: int = CONFIG_FORMAT

    @property
    def key(self) -> str:
        """Cache key: vectors made by another encoder are never mixed with these."""
        return f"{self.name}-{self.version}-{self.weights_sha256[:12]}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["features"] = self.features.to_dict()
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EncoderConfig":
        data = dict(data)
        if data.get("format", CONFIG_FORMAT) > CONFIG_FORMAT:
            raise EncoderError(
                f"Encoder config format {data['format']} is newer than this musicrec understands "
                f"({CONFIG_FORMAT}); upgrade musicrec."
            )
        missing = {"name", "version", "embedding_size", "weights_sha256"} - set(data)
        if missing:
            raise EncoderError(f"Encoder config lacks {sorted(missing)}; expected a JSON written by training/export.py.")
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["features"] = FeatureConfig.from_dict(data.get("features", {}))
        data["labels"] = tuple(data.get("labels", ()))
        return cls(**data)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encoder_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(model, config) paths for a ``.keras`` file, its ``.json``, or their common stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".keras", ".json") else path
    return stem.with_suffix(".keras"), stem.with_suffix(".json")


def read_encoder_config(path: str | os.PathLike) -> EncoderConfig:
    """Read and validate an encoder's JSON without importing TensorFlow."""
    _, config_path = encoder_paths(path)
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EncoderError(
            f"Encoder config {config_path} not found; an encoder is a .keras file with a .json of the same name beside it."
        ) from None
    except (OSError, ValueError) as err:
        raise EncoderError(f"Encoder config {config_path} is unreadable ({err}).") from None
    return EncoderConfig.from_dict(data)


def save_encoder(model: Any, path: str | os.PathLike, config: EncoderConfig) -> EncoderConfig:
    """Write ``model`` and its config; the sha256 in the JSON is the written file's.

    Returns the config as written (with the real sha256).
    """
    model_path, config_path = encoder_paths(path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    config = dataclasses.replace(config, weights_sha256=file_sha256(model_path))
    config_path.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return config


def import_keras():
    """Import Keras (and TensorFlow) without its start-up chatter on stderr.

    TensorFlow's C++ logger prints oneDNN notices before any setting can silence it, so
    file descriptor 2 points at /dev/null for the import only. ``MUSICREC_DEBUG=1`` keeps it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MUSICREC_DEBUG") or "keras" in sys.modules:
        import keras

        return keras
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras

            keras.ops.convert_to_tensor(np.zeros(1, np.float32))  # the notices come with the first op
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras


class Encoder:
    """A loaded encoder. Not thread-safe: one thread owns it and calls ``embed_*``.

    Parameters
    ----------
    path : str or PathLike
        The ``.keras`` file, its ``.json``, or their common stem.
    """

    def __init__(self, path: str | os.PathLike):
        self.model_path, self.config_path = encoder_paths(path)
        self.config = read_encoder_config(self.config_path)
        if not self.model_path.is_file():
            raise EncoderError(f"Encoder model {self.model_path} not found beside its config {self.config_path}.")
        actual = file_sha256(self.model_path)
        if actual != self.config.weights_sha256:
            raise EncoderError(
                f"Encoder model {self.model_path} does not match its config: sha256 {actual[:16]}… "
                f"expected {self.config.weights_sha256[:16]}…. The file was changed or belongs to another "
                "export; re-export it with training/export.py or restore the original."
            )
        keras = import_keras()

        try:
            self.model = keras.saving.load_model(self.model_path, compile=False, safe_mode=True)
        except Exception as err:  # noqa: BLE001 - keras raises many types for bad files
            raise EncoderError(f"Encoder model {self.model_path} could not be loaded safely: {err}") from err
        features = self.config.features
        expected_in = (features.n_mels, features.slice_frames, 1)
        got_in = tuple(self.model.input_shape[1:])
        got_out = self.model.output_shape[-1]
        if got_in != expected_in or got_out != self.config.embedding_size:
            raise EncoderError(
                f"Encoder model {self.model_path} takes {got_in} and gives {got_out}-d vectors, but its config "
                f"says {expected_in} and {self.config.embedding_size}-d. Re-export the model."
            )

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def features(self) -> FeatureConfig:
        return self.config.features

    def embed_slices(self, slices: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Embed spectrogram slices.

        Parameters
        ----------
        slices : np.ndarray [shape=(n, n_mels, slice_frames, 1)]
        batch_size : int

        Returns
        -------
        np.ndarray [shape=(n, embedding_size)], float32
        """
        slices = np.asarray(slices, dtype=np.float32)
        if slices.ndim == 3:
            slices = slices[..., np.newaxis]
        if len(slices) == 0:
            return np.zeros((0, self.config.embedding_size), dtype=np.float32)
        out = [
            self.model(slices[i : i + batch_size], training=False).numpy()
            for i in range(0, len(slices), batch_size)
        ]
        return np.concatenate(out).astype(np.float32)

    def embed_song(self, slices: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Song vector: the mean of its slice embeddings.

        Returns
        -------
        np.ndarray [shape=(embedding_size,)], float32
        """
        return song_vector(self.embed_slices(slices, batch_size=batch_size))


def song_vector(slice_embeddings: np.ndarray) -> np.ndarray:
    """Mean of slice embeddings, as float32.

    Parameters
    ----------
    slice_embeddings : np.ndarray [shape=(n, d)]

    Returns
    -------
    np.ndarray [shape=(d,)]
    """
    return np.asarray(slice_embeddings, dtype=np.float32).mean(axis=0)


def bundled_encoder_path() -> Path:
    """The encoder shipped inside the package (``resources/encoder/musicrec.keras``)."""
    from musicrec_gui.core.resources import resource_path

    return resource_path("encoder", "musicrec.keras")
