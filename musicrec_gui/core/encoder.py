"""The trained encoder: a ``.keras`` model plus the JSON config that says what it is.

An encoder is two files side by side, ``NAME.keras`` and ``NAME.json``. The JSON
carries everything needed to use the model correctly (nanoGPT's
checkpoint-carries-config): the feature parameters it was trained on, the
embedding size, label names, a version, and the sha256 of the ``.keras`` file,
checked before anything is loaded. Models are loaded with Keras'
``safe_mode=True``: no code is ever deserialised from a model file.

What is accepted, so that a hostile or damaged file is one clear :class:`EncoderError`:

- both files must be regular files (a FIFO, a device such as /dev/zero or a folder is
  refused before it is read); the JSON may be at most ``MAX_CONFIG_BYTES`` (1 MiB);
- every JSON value is type- and range-checked (:meth:`EncoderConfig.from_dict`).
  Top-level keys this version does not know are ignored, for forward compatibility: a
  newer export may add information; a change that must not be misread bumps ``format``,
  which is refused when newer. Unknown keys inside ``features`` are refused;
- the ``.keras`` file must be a whole zip archive (every member's CRC is checked), and
  the model must take ``(None, n_mels, slice_frames, 1)`` and give
  ``(None, embedding_size)``, exactly; or, when the JSON says
  ``"outputs": ["embedding", "tags"]``, give exactly those two tensors in that order,
  ``(None, embedding_size)`` and ``(None, len(labels))`` (tag probabilities, one per label).

The model is always called with one fixed batch shape (:data:`BATCH_SIZE` slices; the
last batch is padded with zeros and the padded rows dropped): TensorFlow keeps a graph
per input shape, and a batch size that changes with every song made memory grow without
bound (19 GB in one scan, against 2 GB with a fixed shape).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicrec_gui.core import runtime
from musicrec_gui.core.config import FeatureConfig, describe_json_value
from musicrec_gui.core.errors import MusicrecError

CONFIG_FORMAT = 1
# The bundled config is about 4 KB; anything near this bound is not an encoder config.
MAX_CONFIG_BYTES = 1 << 20
MAX_EMBEDDING_SIZE = 65_536
# Slices per model call: the default spread analysis's 8 patches fill one call exactly. The cost per
# call hardly depends on the batch on 2 CPU cores, so a batch of 16 spent half of each song's
# inference on padding (8 patches of musicnn: 289 ms at 8, 567 ms at 16, measured side by side).
BATCH_SIZE = 8
OUTPUTS = (("embedding",), ("embedding", "tags"))
_FIX = "restore the original .json or re-export the encoder with training/export.py"


class EncoderError(MusicrecError):
    """The encoder files are missing, tampered with, or do not fit together.

    The message names the file, what is wrong with it and how to fix it (usually: restore the
    original files, or re-export the encoder with ``training/export.py``).
    """


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
    outputs: tuple[str, ...] = ("embedding",)
    format: int = CONFIG_FORMAT

    @property
    def key(self) -> str:
        """Cache key: vectors made by another encoder, or fed another front end, are never mixed.

        The feature fingerprint is part of it, so that a change of front end (kind, sample
        rate, ...) gives new vectors even if name, version and weights stay the same.
        """
        return f"{self.name}-{self.version}-{self.weights_sha256[:12]}-{self.features.fingerprint[:8]}"

    @property
    def has_tags(self) -> bool:
        """Whether the model also gives one tag probability per label (second output)."""
        return "tags" in self.outputs

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["features"] = self.features.to_dict()
        data["labels"] = list(self.labels)
        data["outputs"] = list(self.outputs)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "EncoderConfig":
        """Build a config from its JSON form, checking the type and range of every value.

        Keys this musicrec does not know are ignored, so that a newer export that only
        adds information still loads; a change that older versions must not misread
        raises ``format`` instead. Unknown keys inside ``features`` are refused: they
        would change what the model is fed.

        Raises
        ------
        EncoderError
            One line naming the key, the value found, what was expected and how to fix it.
        """
        if not isinstance(data, dict):
            raise EncoderError(f"it holds {describe_json_value(data)}; expected a JSON object with name, version, "
                               f"embedding_size, weights_sha256 and features: {_FIX}.")
        fmt = data.get("format", CONFIG_FORMAT)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
            raise _invalid("format", fmt, f"a whole number such as {CONFIG_FORMAT}")
        if fmt > CONFIG_FORMAT:
            raise EncoderError(
                f"Encoder config format {fmt} is newer than this musicrec understands "
                f"({CONFIG_FORMAT}); upgrade musicrec."
            )
        missing = {"name", "version", "embedding_size", "weights_sha256"} - set(data)
        if missing:
            raise EncoderError(f"Encoder config lacks {sorted(missing)}; expected a JSON written by training/export.py.")
        for key in ("name", "version"):
            value = data[key]
            if not isinstance(value, str) or not _LABEL.fullmatch(value):
                raise _invalid(key, value, "a non-empty string of at most 200 printable characters")
        size = data["embedding_size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_EMBEDDING_SIZE:
            raise _invalid("embedding_size", size, f"a whole number from 1 to {MAX_EMBEDDING_SIZE}")
        sha = data["weights_sha256"]
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            raise _invalid("weights_sha256", sha, "the 64 hexadecimal digits of the .keras file's sha256")
        for key in ("architecture", "description"):
            if key in data and not isinstance(data[key], str):
                raise _invalid(key, data[key], "a string")
        for key in ("training", "scores"):
            if key in data and not isinstance(data[key], dict):
                raise _invalid(key, data[key], "a JSON object")
        labels = data.get("labels", [])
        if not isinstance(labels, list):
            raise _invalid("labels", labels, "a list of strings")
        for i, label in enumerate(labels):
            if not isinstance(label, str):
                raise _invalid(f"labels[{i}]", label, "a string (labels are the names of the training albums)")
        outputs = data.get("outputs", ["embedding"])
        if not isinstance(outputs, list) or tuple(outputs) not in OUTPUTS:
            raise _invalid("outputs", outputs, '["embedding"] or ["embedding", "tags"]')
        if "tags" in outputs and not labels:
            raise _invalid("labels", labels, 'one name per tag, since "outputs" includes "tags"')
        try:
            features = FeatureConfig.from_dict(data.get("features", {}))
        except ValueError as err:
            fix = "" if "upgrade musicrec" in str(err) else f" To fix: {_FIX}."
            raise EncoderError(f"Encoder config has bad features: {err}{fix}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.update(format=fmt, weights_sha256=sha.lower(), features=features, labels=tuple(labels),
                      outputs=tuple(outputs))
        return cls(**values)


_LABEL = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,200}")


def _invalid(key: str, value: Any, expected: str) -> EncoderError:
    return EncoderError(f"Encoder config has {key!r} = {describe_json_value(value)}; expected {expected}: {_FIX}.")


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as handle:
        return _handle_sha256(handle)


def _handle_sha256(handle) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _open_regular(path: Path, *, what: str, expected: str, missing: str):
    """Open ``path`` for binary reading only if it is a regular file (symlinks followed).

    A FIFO would block the open, a device such as /dev/zero never ends. The mode is
    checked before opening and again on the open descriptor (the name may be swapped
    in between); ``O_NONBLOCK`` keeps even that open from blocking on a FIFO.

    Raises
    ------
    EncoderError
        ``missing`` if there is no such file; otherwise what ``path`` is instead of
        ``expected``, or why it cannot be read.
    """

    def refuse(mode: int) -> EncoderError:
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        return EncoderError(f"{what} {path} is {kind}, not a regular file; expected {expected}.")

    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise refuse(mode)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise EncoderError(missing) from None
    except OSError as err:
        raise EncoderError(f"{what} {path} cannot be read ({err.strerror or err}).") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise refuse(mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def encoder_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(model, config) paths for a ``.keras`` file, its ``.json``, or their common stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".keras", ".json") else path
    return stem.with_suffix(".keras"), stem.with_suffix(".json")


def read_encoder_config(path: str | os.PathLike) -> EncoderConfig:
    """Read and validate an encoder's JSON without importing TensorFlow.

    Only a regular file of at most ``MAX_CONFIG_BYTES`` is read.

    Raises
    ------
    EncoderError
        One line saying what is wrong with the file and how to fix it.
    """
    _, config_path = encoder_paths(path)
    expected = f"the encoder's JSON config, a small text file of at most {MAX_CONFIG_BYTES >> 20} MiB"
    handle = _open_regular(
        config_path, what="Encoder config", expected=expected,
        missing=f"Encoder config {config_path} not found; an encoder is a .keras file with a .json of the same "
        "name beside it.",
    )
    try:
        with handle:
            size = os.fstat(handle.fileno()).st_size
            blob = handle.read(MAX_CONFIG_BYTES + 1) if size <= MAX_CONFIG_BYTES else b""
    except OSError as err:
        raise EncoderError(f"Encoder config {config_path} cannot be read ({err.strerror or err}).") from None
    if size > MAX_CONFIG_BYTES or len(blob) > MAX_CONFIG_BYTES:
        raise EncoderError(f"Encoder config {config_path} is {max(size, len(blob)):,} bytes; expected {expected}. "
                           "An encoder config is the .json that training/export.py writes beside the .keras file.")
    try:
        data = json.loads(blob.decode("utf-8"))
    except RecursionError:
        raise EncoderError(f"Encoder config {config_path} is not valid JSON (nested too deeply); {_FIX}.") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, a number too long to convert
        raise EncoderError(f"Encoder config {config_path} is not valid JSON ({err}); {_FIX}.") from None
    try:
        return EncoderConfig.from_dict(data)
    except EncoderError as err:
        message = str(err).replace("Encoder config", f"Encoder config {config_path}", 1)
        if not message.startswith("Encoder config"):
            message = f"Encoder config {config_path}: {message}"
        raise EncoderError(message) from None


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
    file descriptor 2 points at /dev/null for the import only. ``MUSICREC_DEBUG=1`` keeps it
    (:mod:`musicrec_gui.core.runtime`).
    """
    runtime.quiet_tensorflow()
    if runtime.debug() or "keras" in sys.modules:
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
    runtime.quiet_tensorflow()  # now that its Python loggers exist
    return keras


def check_model_file(model_path: Path, config: EncoderConfig, *, config_path: Path) -> None:
    """Check an encoder's ``.keras`` file without loading it (no TensorFlow): a regular file,
    the sha256 its JSON names, a whole zip archive. Raises :class:`EncoderError` saying how to fix it."""
    handle = _open_regular(
        model_path, what="Encoder model", expected="the .keras file written by training/export.py",
        missing=f"Encoder model {model_path} not found beside its config {config_path}.",
    )
    with handle:
        try:
            actual = _handle_sha256(handle)
        except OSError as err:
            raise EncoderError(f"Encoder model {model_path} cannot be read ({err.strerror or err}).") from None
        if actual != config.weights_sha256:
            raise EncoderError(
                f"Encoder model {model_path} does not match its config: sha256 {actual[:16]}… "
                f"expected {config.weights_sha256[:16]}…. The file was changed or belongs to another "
                "export; re-export it with training/export.py or restore the original."
            )
        handle.seek(0)
        _check_keras_zip(handle, model_path)


class DescribedEncoder:
    """What an encoder's JSON says of it, as the scan reads it (``core.scan.SongEncoder``)."""

    config: EncoderConfig

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def features(self) -> FeatureConfig:
        return self.config.features

    @property
    def embedding_size(self) -> int:
        return self.config.embedding_size


class LazyEncoder(DescribedEncoder):
    """An encoder whose model is loaded on first use.

    Its key, front end and vector size come from the JSON, and its model file is checked
    (regular file, sha256, whole archive) at once — all without importing TensorFlow, so a
    rescan that finds nothing new to analyse never pays TensorFlow's start-up (seconds).
    The first ``embed_*`` call loads the model (:class:`Encoder`); from then on the owner
    thread uses it as it would an :class:`Encoder`.

    Parameters
    ----------
    path : str or PathLike
        The ``.keras`` file, its ``.json``, or their common stem.

    Raises
    ------
    EncoderError
        As :class:`Encoder`, for everything that can be told without loading the model.
    """

    def __init__(self, path: str | os.PathLike):
        self.model_path, self.config_path = encoder_paths(path)
        self.config = read_encoder_config(self.config_path)
        check_model_file(self.model_path, self.config, config_path=self.config_path)
        self._encoder: Encoder | None = None

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def load(self) -> "Encoder":
        """The loaded :class:`Encoder` (imports TensorFlow the first time)."""
        if self._encoder is None:
            self._encoder = Encoder(self.model_path)
        return self._encoder

    def embed_slices(self, slices: np.ndarray) -> np.ndarray:
        """As :meth:`Encoder.embed_slices`."""
        return self.load().embed_slices(slices)

    def embed_slices_with_tags(self, slices: np.ndarray):
        """As :meth:`Encoder.embed_slices_with_tags`."""
        return self.load().embed_slices_with_tags(slices)


class Encoder(DescribedEncoder):
    """A loaded encoder. Not thread-safe: one thread owns it and calls ``embed_*``.

    Parameters
    ----------
    path : str or PathLike
        The ``.keras`` file, its ``.json``, or their common stem.

    Raises
    ------
    EncoderError
        If either file is missing, not a regular file, malformed, damaged, does not
        match the sha256 in the JSON, or the model's shapes differ from the config's.
    """

    def __init__(self, path: str | os.PathLike):
        self.model_path, self.config_path = encoder_paths(path)
        self.config = read_encoder_config(self.config_path)
        check_model_file(self.model_path, self.config, config_path=self.config_path)
        keras = import_keras()

        try:
            self.model = keras.saving.load_model(self.model_path, compile=False, safe_mode=True)
        except Exception as err:  # noqa: BLE001 - keras raises many types for bad files
            raise EncoderError(
                f"Encoder model {self.model_path} could not be loaded safely: {_one_line(err)}"
            ) from err
        features = self.config.features
        expected_in = (None, features.n_mels, features.slice_frames, 1)
        got_in = _model_shape(self.model, "input_shape")
        if self.config.has_tags:
            expected_out = [(None, self.config.embedding_size), (None, len(self.config.labels))]
            got_out = _output_shapes(self.model)
            said = (f"gives {_shape_text(expected_out[0])} and {len(self.config.labels)} tag probabilities "
                    f"(shape {expected_out[1]}), in that order")
        else:
            expected_out = (None, self.config.embedding_size)
            got_out = _model_shape(self.model, "output_shape")
            said = f"gives {_shape_text(expected_out)}"
        if got_in != expected_in or got_out != expected_out:
            got_text = (" and ".join(f"shape {s}" for s in got_out) if isinstance(got_out, list)
                        else _shape_text(got_out))
            raise EncoderError(
                f"Encoder model {self.model_path} takes {_shape_text(got_in)} and gives {got_text}, "
                f"but its config {self.config_path} says it takes {_shape_text(expected_in)} (batch, n_mels, "
                f"slice_frames, 1) and {said}. Re-export the model with training/export.py."
            )
        self.batch_size = BATCH_SIZE
        self._call = _fixed_batch_call(self.model, (self.batch_size, *expected_in[1:]))

    def embed_slices(self, slices: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Embed spectrogram slices.

        Parameters
        ----------
        slices : np.ndarray [shape=(n, n_mels, slice_frames, 1)]
        batch_size : None
            Ignored; kept so that older callers still work. The model is always fed
            :data:`BATCH_SIZE` slices at a time (see the module's docstring).

        Returns
        -------
        np.ndarray [shape=(n, embedding_size)], float32
        """
        return self.embed_slices_with_tags(slices)[0]

    def embed_slices_with_tags(self, slices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed spectrogram slices and, if the encoder has a tag head, tag them.

        Parameters
        ----------
        slices : np.ndarray [shape=(n, n_mels, slice_frames, 1)]

        Returns
        -------
        embeddings : np.ndarray [shape=(n, embedding_size)], float32
        tags : np.ndarray [shape=(n, len(labels))], float32, or None
            Tag probabilities in the order of ``config.labels``; None if the encoder's
            ``outputs`` has no ``"tags"``.
        """
        slices = np.asarray(slices, dtype=np.float32)
        if slices.ndim == 3:
            slices = slices[..., np.newaxis]
        n = len(slices)
        n_tags = len(self.config.labels) if self.config.has_tags else 0
        embeddings = np.zeros((n, self.config.embedding_size), dtype=np.float32)
        tags = np.zeros((n, n_tags), dtype=np.float32) if self.config.has_tags else None
        batch = np.zeros((self.batch_size, *slices.shape[1:]), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            part = slices[start : start + self.batch_size]
            batch[: len(part)] = part
            batch[len(part) :] = 0.0  # padding rows: computed, then dropped
            out = self._call(batch)
            if self.config.has_tags:
                embeddings[start : start + len(part)] = np.asarray(out[0])[: len(part)]
                tags[start : start + len(part)] = np.asarray(out[1])[: len(part)]
            else:
                embeddings[start : start + len(part)] = np.asarray(out)[: len(part)]
        return embeddings, tags

    def embed_song(self, slices: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Song vector: the mean of its slice embeddings.

        Returns
        -------
        np.ndarray [shape=(embedding_size,)], float32
        """
        return song_vector(self.embed_slices(slices))


def _fixed_batch_call(model: Any, shape: tuple[int, ...]):
    """``model(x, training=False)`` compiled once for input ``shape`` (one graph, reused)."""
    import tensorflow as tf

    spec = tf.TensorSpec(shape, tf.float32)

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def call(x):
        return model(x, training=False)

    return call


def _check_keras_zip(handle, path: Path) -> None:
    """Refuse a ``.keras`` file that is not a whole zip archive (Keras would say "File not found")."""
    try:
        with zipfile.ZipFile(handle) as archive:
            names = set(archive.namelist())
            broken = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as err:
        problem = f"not a valid .keras zip archive ({_one_line(err)})"
    else:
        if broken is not None:
            problem = f"its member {broken!r} fails its checksum"
        elif not {"config.json", "model.weights.h5"} <= names:
            problem = "the zip archive lacks config.json or model.weights.h5, which every .keras model holds"
        else:
            return
    raise EncoderError(
        f"Encoder model {path} is damaged or truncated: {problem}. Its .json was written for this damaged "
        "file; restore the encoder from the musicrec package or re-export it with training/export.py."
    )


def _model_shape(model: Any, attribute: str) -> Any:
    """``model.input_shape`` or ``output_shape`` as a tuple, or a description if it is not one shape."""
    try:
        shape = getattr(model, attribute)
    except Exception as err:  # noqa: BLE001 - subclassed or unbuilt models raise various errors
        return f"no single fixed shape ({_one_line(err)})"
    if isinstance(shape, (list, tuple)) and all(d is None or isinstance(d, int) for d in shape):
        return tuple(shape)
    return f"several tensors {shape}"


def _output_shapes(model: Any) -> Any:
    """The shapes of every output of ``model`` as a list of tuples, or a description."""
    try:
        shapes = [tuple(t.shape) for t in model.outputs]
    except Exception as err:  # noqa: BLE001
        return f"no fixed outputs ({_one_line(err)})"
    return shapes


def _shape_text(shape: Any) -> str:
    """``(None, 16)`` → "16-d vectors (shape (None, 16))"; other tuples → "shape (…)"."""
    if not isinstance(shape, tuple):
        return str(shape)
    if len(shape) == 2 and shape[0] is None and shape[1] is not None:
        return f"{shape[1]}-d vectors (shape {shape})"
    return f"shape {shape}"


def _one_line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


# Encoders that ship with musicrec, by the name ``--encoder`` accepts.
BUNDLED_ENCODERS = {"musicnn": "musicnn.keras", "fast": "student.keras", "compact": "compact.keras"}


def encoder_path_for(name_or_path: str | os.PathLike | None) -> Path:
    """The ``.keras`` file of a bundled encoder named ``musicnn`` (the default), ``fast`` or ``compact``, or the path given.

    A name is only a name when it has no suffix and no folder: ``./fast.keras`` is a file.

    Raises
    ------
    EncoderError
        A bundled name whose model this installation does not have.
    """
    from musicrec_gui.core.resources import resource_path

    if name_or_path is None or str(name_or_path) == "":
        return bundled_encoder_path()
    text = os.fspath(name_or_path)
    if text in BUNDLED_ENCODERS:
        path = resource_path("encoder", BUNDLED_ENCODERS[text])
        if not path.is_file():
            raise EncoderError(f"the '{text}' encoder is not installed with this musicrec ({path} is missing); "
                               f"the bundled ones are: {', '.join(BUNDLED_ENCODERS)}.")
        return path
    return Path(text)


def bundled_encoder_path() -> Path:
    """The encoder musicrec uses by default (``resources/encoder/musicnn.keras``).

    The musicnn MSD tagger (Pons & Serra 2019, ISC licence) as a Keras model of our own,
    converted by ``training/musicnn_port.py``. The original recipe's compact CNN (v0.2.0)
    ships beside it as ``resources/encoder/compact.keras`` for ``--encoder``.
    """
    from musicrec_gui.core.resources import resource_path

    return resource_path("encoder", "musicnn.keras")
