"""Port of musicnn's MSD tagger (Pons & Serra 2019) to a Keras 3 model musicrec can ship.

The ``musicnn`` wheel (PyPI, ISC licence) carries ``MSD_musicnn``: a TF1 checkpoint of a
musically motivated CNN trained on the Million Song Dataset's 50 most common tags. This
module rebuilds that network from built-in Keras layers only (no Lambda, no custom
classes, so it reloads with ``safe_mode=True``), copies the checkpoint's weights into it,
and writes it as a musicrec encoder. It is a release step, never run by the app:

    python -m training.musicnn_port /path/to/musicnn-0.1.0-py3-none-any.whl

writes ``resources/encoder/musicnn.keras`` + ``musicnn.json`` and copies the licence to
``resources/encoder/LICENSE-musicnn.txt``.

The model follows musicrec's encoder convention: input ``(None, 96, 187, 1)`` = (batch,
mel bands, frames, 1) of the ``kind="musicnn"`` front end (``log10(1 + 10000 * mel)``
at 16 kHz, n_fft 512, hop 256); a Permute inside gives musicnn's (time, mel) layout. Two
outputs, in this order:

- ``embedding``: the 200 units of the back end's dense layer after its ReLU
  (``model/dense/Relu:0`` in the TF1 graph). musicnn's own extractor calls the *batch-
  normalised* version of this layer "penultimate" (``batch_normalization_10``); in
  inference that is a fixed per-unit affine map of the same 200 values. The ReLU output
  is kept because it is the tensor the retrieval measurements in
  ``/work/shared/notes/encoder-experiments.md`` were made with (P@1 0.742, every patch),
  it is non-negative (a silent unit is exactly 0 rather than a per-unit offset), and its
  cosine geometry is not re-weighted by batch statistics learned for the tag head;
- ``tags``: the 50 MSD tag probabilities (``model/Sigmoid:0``).

Facts the port depends on (checked against the TF1 graph, see the test): TF1 batch-norm
epsilon is 1e-3; every convolution applies ReLU *before* its batch-norm; the timbral
branch pads time by 3 on each side and then convolves ``valid``; the temporal branch
uses ``same`` padding; the back end concatenates max and mean over time on the trailing
axis, so the flattened 1 506-vector interleaves them (max0, mean0, max1, mean1, ...).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import zipfile
from pathlib import Path

from musicrec_gui.core.runtime import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "resources" / "encoder" / "musicnn.keras"
LICENSE_OUT = ROOT / "resources" / "encoder" / "LICENSE-musicnn.txt"
CHECKPOINT_IN_WHEEL = "musicnn/MSD_musicnn/"
# sha256 of musicnn-0.1.0-py3-none-any.whl as downloaded from PyPI (29 292 476 bytes).
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
FETCH_HINT = "pip download --no-deps --only-binary=:all: musicnn==0.1.0 -d .cache/musicnn"
N_MELS, N_FRAMES = 96, 187
BN_EPSILON = 1e-3  # TF1's tf.layers.batch_normalization default (Keras' is 1e-3 too; stated to be sure)

# musicnn/configuration.py MSD_LABELS, in output order.
MSD_LABELS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
)

DESCRIPTION = (
    "musicnn MSD_musicnn (Pons & Serra, 'musicnn: pre-trained convolutional neural networks for music audio "
    "tagging', ISMIR 2019 LBD; https://github.com/jordipons/musicnn), trained on the Million Song Dataset's 50 "
    "most common tags. ISC licence, (c) Music Technology Group, Universitat Pompeu Fabra 2019, see "
    "LICENSE-musicnn.txt. Converted from the TF1 checkpoint in the musicnn 0.1.0 wheel by "
    "training/musicnn_port.py (built-in Keras layers only, float32; matches the original graph within 1e-4). "
    "Input: 3-s patches of log10(1 + 10000 * mel) at 16 kHz, hop 256, 96 mel bands. Outputs: 'embedding' = the "
    "200-d dense layer after its ReLU (model/dense/Relu:0), 'tags' = the 50 tag probabilities."
)


def build_musicnn_keras():
    """The MSD_musicnn network as a Keras 3 functional model of built-in layers.

    Returns
    -------
    keras.Model
        Input ``(None, 96, 187, 1)``; outputs ``[embedding (None, 200), tags (None, 50)]``.
        Layer names are the TF1 variable scopes (``conv2d_5``, ``batch_normalization_9``...)
        so :func:`load_musicnn_weights` maps them one to one; the two output layers are
        ``embedding`` (TF1 ``dense``) and ``tags`` (TF1 ``dense_1``).
    """
    import keras
    from keras import layers

    def bn(name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)

    inputs = keras.Input((N_MELS, N_FRAMES, 1), name="logmel")
    x = layers.Permute((2, 1, 3), name="to_time_mel")(inputs)  # (187, 96, 1): musicnn's layout
    x = bn("batch_normalization")(x)

    # Front end: two timbral (7 x 38, 7 x 67) and three temporal (128/64/32 x 1) branches,
    # each max-pooled over all frequency.
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    branches = []
    for conv, norm, kernel, padding, source in (
        ("conv2d", "batch_normalization_1", (7, int(0.4 * N_MELS)), "valid", padded),
        ("conv2d_1", "batch_normalization_2", (7, int(0.7 * N_MELS)), "valid", padded),
        ("conv2d_2", "batch_normalization_3", (128, 1), "same", x),
        ("conv2d_3", "batch_normalization_4", (64, 1), "same", x),
        ("conv2d_4", "batch_normalization_5", (32, 1), "same", x),
    ):
        filters = int(1.6 * 128) if kernel[0] == 7 else int(1.6 * 32)
        y = layers.Conv2D(filters, kernel, padding=padding, activation="relu", name=conv)(source)
        y = bn(norm)(y)
        width = y.shape[2]
        y = layers.MaxPooling2D((1, width), strides=(1, width), name=f"{conv}_freq_pool")(y)
        branches.append(layers.Reshape((N_FRAMES, filters), name=f"{conv}_squeeze")(y))
    front = layers.Concatenate(axis=2, name="frontend")(branches)  # (187, 561)
    front = layers.Reshape((N_FRAMES, front.shape[-1], 1), name="frontend_expand")(front)

    # Mid end: three 1-D convolutions over time (7 x full width), with residual connections.
    mids = [front]
    y = front
    for i, (conv, norm) in enumerate((("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"),
                                      ("conv2d_7", "batch_normalization_8"))):
        z = layers.ZeroPadding2D(((3, 3), (0, 0)), name=f"{conv}_pad")(y)
        z = layers.Conv2D(64, (7, z.shape[2]), padding="valid", activation="relu", name=conv)(z)
        z = bn(norm)(z)
        z = layers.Permute((1, 3, 2), name=f"{conv}_transpose")(z)  # (187, 1, 64) -> (187, 64, 1)
        y = z if i == 0 else layers.Add(name=f"{conv}_residual")([z, y])
        mids.append(y)
    mid = layers.Concatenate(axis=2, name="midend")(mids)  # (187, 753, 1)

    # Back end: max and mean over time, concatenated on the trailing axis and flattened,
    # which interleaves them (max0, mean0, max1, mean1, ...), as TF1 did.
    max_pool = layers.MaxPooling2D((N_FRAMES, 1), name="max_pool")(mid)  # (1, 753, 1)
    mean_pool = layers.AveragePooling2D((N_FRAMES, 1), name="mean_pool")(mid)
    pooled = layers.Concatenate(axis=-1, name="pool")([max_pool, mean_pool])  # (1, 753, 2)
    pooled = layers.Flatten(name="flatten")(pooled)  # (1506,)
    pooled = bn("batch_normalization_9")(pooled)
    embedding = layers.Dense(200, activation="relu", name="embedding")(pooled)
    normed = bn("batch_normalization_10")(embedding)
    tags = layers.Dense(len(MSD_LABELS), activation="sigmoid", name="tags")(normed)
    return keras.Model(inputs, [embedding, tags], name="musicnn_msd")


# Keras layer name -> TF1 variable scope where they differ.
_SCOPE = {"embedding": "dense", "tags": "dense_1"}


def load_musicnn_weights(model, checkpoint_prefix: str | os.PathLike) -> None:
    """Copy the TF1 checkpoint's weights into ``model`` (built by :func:`build_musicnn_keras`).

    ``checkpoint_prefix`` is ``.../MSD_musicnn/`` (the files' names are empty); the folder
    itself is accepted too.

    Every weighted layer must find all its variables, with the same shape, and every
    model variable of the checkpoint (Adam slots and step counters aside) must be used.
    """
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(_prefix(checkpoint_prefix))
    available = {name for name in reader.get_variable_to_shape_map()
                 if "Adam" not in name and "_power" not in name and name != "global_step"}
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        scope = _SCOPE.get(layer.name, layer.name)
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            names = ["gamma", "beta", "moving_mean", "moving_variance"]
        elif kind in ("Conv2D", "Dense"):
            names = ["kernel", "bias"]
        else:
            raise ValueError(f"unexpected weighted layer {layer.name} ({kind})")
        values = []
        for weight, short in zip(layer.weights, names):
            full = f"{scope}/{short}"
            if full not in available:
                raise ValueError(f"checkpoint {checkpoint_prefix} lacks {full}")
            value = reader.get_tensor(full).astype(np.float32)
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(f"{full} has shape {value.shape}; layer {layer.name} expects {tuple(weight.shape)}")
            values.append(value)
            used.add(full)
        layer.set_weights(values)
    unused = sorted(available - used)
    if unused:
        raise ValueError(f"checkpoint variables not used by the port: {unused}")


def _prefix(path: str | os.PathLike) -> str:
    """The checkpoint prefix: musicnn's files have an empty name, so a folder means ``folder/``."""
    path = os.fspath(path)
    return os.path.join(path, "") if os.path.isdir(path) else path


def original_graph_session(checkpoint_dir: str | os.PathLike):
    """The original TF1 graph with its checkpoint's weights, in a TF1-compat session.

    The training nodes (gradients, Adam, saver, init) are dropped and ``_output_shapes`` attrs
    deleted: ``import_meta_graph`` fails on them under TF2. Used by the numeric test of the port
    and by ``training/teacher.py``.

    Parameters
    ----------
    checkpoint_dir : path
        The ``MSD_musicnn`` folder (holding ``.meta``, ``.index``, ``.data-00000-of-00001``).

    Returns
    -------
    (tf.Graph, tf.compat.v1.Session)
        Feed ``model/Placeholder:0`` [shape=(n, 187, 96)] and ``model/Placeholder_2:0`` (False).
    """
    import tensorflow as tf

    prefix = _prefix(checkpoint_dir)
    meta = tf.compat.v1.MetaGraphDef()
    with open(prefix + ".meta", "rb") as handle:
        meta.ParseFromString(handle.read())

    def training_only(name: str) -> bool:
        return (name.startswith("gradients") or "Adam" in name or name.startswith("save")
                or "beta1_power" in name or "beta2_power" in name or name == "init")

    graph_def = tf.compat.v1.GraphDef()
    for node in meta.graph_def.node:
        if training_only(node.name):
            continue
        if any(training_only(i.lstrip("^").split(":")[0]) for i in node.input):
            continue
        copy = graph_def.node.add()
        copy.CopyFrom(node)
        if "_output_shapes" in copy.attr:
            del copy.attr["_output_shapes"]
    graph_def.versions.CopyFrom(meta.graph_def.versions)
    graph_def.library.CopyFrom(meta.graph_def.library)

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        assigns = [tf.compat.v1.assign(op.outputs[0], reader.get_tensor(op.name))
                   for op in graph.get_operations()
                   if op.type in ("VariableV2", "Variable") and reader.has_tensor(op.name)]
        session = tf.compat.v1.Session(graph=graph)
        session.run(assigns)
    return graph, session


def original_graph_outputs(checkpoint_dir: str | os.PathLike, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Run the original TF1 graph (for tests only).

    Parameters
    ----------
    checkpoint_dir : path
        The ``MSD_musicnn`` folder.
    batch : np.ndarray [shape=(n, 187, 96)]
        musicnn's own layout: (patch, time, mel).

    Returns
    -------
    dict
        ``tags`` (n, 50) from ``model/Sigmoid:0``, ``dense_relu`` (n, 200) from
        ``model/dense/Relu:0``, ``penultimate`` (n, 200), the batch-normalised one musicnn's
        extractor returns.
    """
    _, session = original_graph_session(checkpoint_dir)
    with session:
        feed = {"model/Placeholder:0": np.asarray(batch, np.float32), "model/Placeholder_2:0": False}
        tags, relu, bn = session.run(
            ["model/Sigmoid:0", "model/dense/Relu:0", "model/batch_normalization_10/batchnorm/add_1:0"], feed)
    return {"tags": tags, "dense_relu": relu, "penultimate": bn}


def unpack_wheel(wheel: str | os.PathLike, into: str | os.PathLike) -> Path:
    """Check the wheel's sha256, extract it into ``into``; returns the ``MSD_musicnn`` checkpoint folder."""
    from musicrec_gui.core.encoder import file_sha256

    actual = file_sha256(wheel)
    if actual != WHEEL_SHA256:
        raise ValueError(f"{wheel} has sha256 {actual}, not musicnn 0.1.0's {WHEEL_SHA256}; fetch it with: "
                         f"{FETCH_HINT}")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    folder = Path(into) / CHECKPOINT_IN_WHEEL
    if not (folder / ".index").is_file():
        raise FileNotFoundError(f"{wheel} has no {CHECKPOINT_IN_WHEEL}.index: not the musicnn 0.1.0 wheel?")
    return folder


def wheel_license(unpacked: str | os.PathLike) -> str:
    """The licence text shipped in the wheel's dist-info."""
    (path,) = Path(unpacked).glob("musicnn-*.dist-info/LICENSE*")
    return path.read_text(encoding="utf-8")


def convert(wheel: str | os.PathLike):
    """Build the Keras model with the wheel's MSD_musicnn weights (float32)."""
    model = build_musicnn_keras()
    with tempfile.TemporaryDirectory() as tmp:
        load_musicnn_weights(model, unpack_wheel(wheel, tmp))
    return model


def musicnn_feature_config():
    from musicrec_gui.core.config import FeatureConfig

    return FeatureConfig(kind="musicnn", sample_rate=16000, n_fft=512, hop_length=256, n_mels=N_MELS, fmin=0.0,
                         fmax=8000.0, slice_frames=N_FRAMES)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", help="musicnn-0.1.0-py3-none-any.whl (pip download --no-deps musicnn==0.1.0)")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args(argv)

    from musicrec_gui.core.encoder import Encoder, EncoderConfig, save_encoder

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = unpack_wheel(args.wheel, tmp)
        model = build_musicnn_keras()
        load_musicnn_weights(model, checkpoint)
        licence = wheel_license(tmp)
        probe = np.random.default_rng(0).uniform(0, 4, size=(4, N_MELS, N_FRAMES, 1)).astype(np.float32)
        reference = original_graph_outputs(checkpoint, probe[..., 0].transpose(0, 2, 1))
    config = EncoderConfig(
        name="musicnn-msd",
        version=args.version,
        embedding_size=200,
        weights_sha256="",
        features=musicnn_feature_config(),
        labels=MSD_LABELS,
        architecture="musicnn",
        description=DESCRIPTION,
        outputs=("embedding", "tags"),
        training={
            "data": "Million Song Dataset, 50 most common last.fm tags (Pons & Serra 2019); not trained by musicrec",
            "source": "PyPI musicnn 0.1.0 wheel, musicnn/MSD_musicnn/ TF1 checkpoint",
            "command": "python -m training.musicnn_port musicnn-0.1.0-py3-none-any.whl",
        },
    )
    save_encoder(model, args.out, config)
    Path(args.out).with_name("LICENSE-musicnn.txt").write_text(licence, encoding="utf-8")
    encoder = Encoder(args.out)
    embeddings, tags = encoder.embed_slices_with_tags(probe)
    diffs = (float(np.abs(embeddings - reference["dense_relu"]).max()), float(np.abs(tags - reference["tags"]).max()))
    if max(diffs) > 1e-4:
        raise RuntimeError(f"converted encoder differs from the TF1 graph by {diffs}")
    size_mb = Path(encoder.model_path).stat().st_size / 1e6
    print(f"wrote {encoder.model_path} ({size_mb:.1f} MB), key {encoder.key}; "
          f"max |diff| vs TF1 graph: embedding {diffs[0]:.2g}, tags {diffs[1]:.2g}")


if __name__ == "__main__":
    main()
