"""The musicnn MSD encoder: the Keras port equals the original TF1 graph, the shipped files
load safely and equal a fresh conversion, and the musicnn front end is musicnn's formula.

The numeric checks need the musicnn 0.1.0 wheel (29 MB, ISC licence): ``$MUSICNN_WHEEL``, or
``.cache/musicnn/musicnn-0.1.0-py3-none-any.whl`` under the repository root, which
``scripts/bootstrap.sh test`` downloads.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from audio_factory import tone
from conftest import CORPUS
from musicrec_gui.core import features
from musicrec_gui.core.config import FeatureConfig

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "resources" / "encoder" / "musicnn.keras"


def _wheel() -> Path | None:
    for candidate in (os.environ.get("MUSICNN_WHEEL"), ROOT / ".cache" / "musicnn" / "musicnn-0.1.0-py3-none-any.whl"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from training.musicnn_port import FETCH_HINT, unpack_wheel

    wheel = _wheel()
    if wheel is None:
        pytest.skip(f"musicnn wheel not found ($MUSICNN_WHEEL or .cache/musicnn/); fetch it with: {FETCH_HINT}")
    return unpack_wheel(wheel, tmp_path_factory.mktemp("musicnn"))


@pytest.fixture(scope="module")
def converted(checkpoint):
    from training.musicnn_port import build_musicnn_keras, load_musicnn_weights

    model = build_musicnn_keras()
    load_musicnn_weights(model, checkpoint)
    return model


def _music(seconds: float = 12.0) -> np.ndarray:
    """A real song from the corpus at 16 kHz if there is one, else a generated chord with noise."""
    import librosa

    manifest = CORPUS / "manifest.tsv"
    if manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines()[1:]:
            path = CORPUS / line.split("\t")[0]
            if path.is_file():
                audio, _ = librosa.load(path, sr=16000, mono=True, offset=20.0, duration=seconds)
                if len(audio) >= seconds * 16000 * 0.9 and np.abs(audio).max() > 1e-3:
                    return audio.astype(np.float32)
    return tone(seconds, sample_rate=16000, freqs=(220.0, 277.2, 330.0), noise=0.05, pulse_hz=2.0)


def _musicnn_config() -> FeatureConfig:
    from training.musicnn_port import musicnn_feature_config

    return musicnn_feature_config()


def test_port_equals_the_original_tf1_graph_on_music(checkpoint, converted):
    from training.musicnn_port import original_graph_outputs

    slices = features.song_slices(_music(), config=_musicnn_config())
    assert slices.shape == (4, 96, 187, 1) and slices.dtype == np.float32
    reference = original_graph_outputs(checkpoint, slices[..., 0].transpose(0, 2, 1))
    embedding, tags = (np.asarray(t) for t in converted(slices, training=False))
    assert embedding.shape == (4, 200) and tags.shape == (4, 50)
    assert np.abs(reference["dense_relu"]).max() > 1.0  # a real signal, not all zeros
    assert np.abs(embedding - reference["dense_relu"]).max() < 1e-4
    assert np.abs(tags - reference["tags"]).max() < 1e-4
    # musicnn's own "penultimate" (the batch-normalised 200 values) is one layer further.
    import keras

    normed = keras.Model(converted.input, converted.get_layer("batch_normalization_10").output)
    assert np.abs(np.asarray(normed(slices, training=False)) - reference["penultimate"]).max() < 1e-4


def test_port_uses_only_built_in_layers_and_reloads_in_safe_mode(tmp_path, converted):
    import keras

    path = tmp_path / "m.keras"
    converted.save(path)
    again = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert {type(layer).__module__.split(".")[0] for layer in again.layers} == {"keras"}
    assert not any(type(layer).__name__ == "Lambda" for layer in again.layers)
    assert again.input_shape == (None, 96, 187, 1)
    assert [tuple(t.shape) for t in again.outputs] == [(None, 200), (None, 50)]
    assert all(w.dtype == "float32" for w in again.weights)


def test_shipped_encoder_loads_safely_and_equals_a_fresh_conversion(converted):
    from musicrec_gui.core.encoder import BATCH_SIZE, Encoder
    from training.musicnn_port import MSD_LABELS

    encoder = Encoder(SHIPPED)  # sha256 checked, safe_mode=True, shapes of both outputs checked
    config = encoder.config
    assert (config.name, config.version, config.architecture) == ("musicnn-msd", "1.0.0", "musicnn")
    assert config.outputs == ("embedding", "tags") and config.labels == MSD_LABELS
    assert config.features == _musicnn_config() and config.embedding_size == 200
    assert "ISC" in config.description and "Pons" in config.description
    assert (SHIPPED.parent / "LICENSE-musicnn.txt").read_text().startswith("Copyright (c) Music Technology Group")

    slices = features.song_slices(_music(), config=config.features)
    n = BATCH_SIZE + 3  # two calls, the second one padded
    slices = np.concatenate([slices] * (n // len(slices) + 1))[:n]
    slices = slices + np.linspace(0, 0.5, n, dtype=np.float32)[:, None, None, None]  # all rows differ
    embeddings, tags = encoder.embed_slices_with_tags(slices)
    fresh_embedding, fresh_tags = (np.asarray(t) for t in converted(slices, training=False))
    assert embeddings.shape == (n, 200) and tags.shape == (n, 50)
    assert np.abs(embeddings - fresh_embedding).max() < 1e-5
    assert np.abs(tags - fresh_tags).max() < 1e-6
    np.testing.assert_array_equal(encoder.embed_slices(slices), embeddings)
    assert encoder.embed_song(slices).shape == (200,)


def test_shipped_encoder_without_the_wheel():
    """What needs no wheel: the shipped files load, give finite tags in [0, 1] for a tone."""
    from musicrec_gui.core.encoder import Encoder

    encoder = Encoder(SHIPPED)
    slices = features.song_slices(tone(7.0, sample_rate=16000), config=encoder.features)
    embeddings, tags = encoder.embed_slices_with_tags(slices)
    assert embeddings.shape == (2, 200) and np.all(embeddings >= 0)
    assert tags.shape == (2, 50) and np.all((tags >= 0) & (tags <= 1))
    assert encoder.embed_slices(slices[:0]).shape == (0, 200)


def test_musicnn_front_end_is_musicnns_formula():
    import librosa

    config = _musicnn_config()
    audio = tone(5.0, sample_rate=16000)  # 440 Hz with two partials
    spec = features.log_mel_spectrogram(audio, config=config)
    assert spec.shape == (96, 1 + len(audio) // 256) and spec.dtype == np.float32
    # musicnn/extractor.py: librosa's mel defaults, then log10(10000 * mel + 1).
    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512, n_mels=96)
    np.testing.assert_allclose(spec, np.log10(10000 * mel + 1), rtol=1e-5, atol=1e-5)
    # musicnn stored the mel power as float16; that rounding changes its input by less than 1e-3.
    assert np.abs(spec - np.log10(10000 * mel.astype(np.float16).astype(np.float64) + 1)).max() < 1e-3
    assert spec[:, 10:-10].argmax(axis=0).min() == spec[:, 10:-10].argmax(axis=0).max()  # one loudest band
    # No per-song normalisation: a quieter song gives a smaller input.
    assert features.log_mel_spectrogram(audio * 0.1, config=config).max() < spec.max()

    slices = features.song_slices(audio, config=config)
    assert slices.shape == (1, 96, 187, 1) and slices.dtype == np.float32
    np.testing.assert_array_equal(slices[0, :, :, 0], spec[:, :187])
    short = features.song_slices(audio[:16000], config=config)  # 1 s: zero-padded, and zero is silence
    assert short.shape == (1, 96, 187, 1) and np.all(short[0, :, 63:] == 0)


def test_feature_kind_is_validated_and_part_of_the_cache_key():
    from musicrec_gui.core.encoder import EncoderConfig

    assert FeatureConfig().kind == "logmel-db"
    assert FeatureConfig.from_dict({}).kind == "logmel-db"  # older JSON without "kind"
    assert FeatureConfig.from_dict(_musicnn_config().to_dict()) == _musicnn_config()
    for bad in ("mfcc", 1, None, ""):
        with pytest.raises(ValueError, match="'kind'"):
            FeatureConfig.from_dict({"kind": bad})
    base = EncoderConfig(name="x", version="1", embedding_size=8, weights_sha256="a" * 64)
    other = dataclasses.replace(base, features=dataclasses.replace(FeatureConfig(), kind="musicnn"))
    assert base.key.startswith("x-1-aaaaaaaaaaaa-") and base.key != other.key
    assert base.key.endswith(FeatureConfig().fingerprint[:8])
    assert FeatureConfig().fingerprint != dataclasses.replace(FeatureConfig(), kind="musicnn").fingerprint


def test_tags_output_needs_the_outputs_field_and_labels():
    from musicrec_gui.core.encoder import EncoderConfig, EncoderError

    data = {"name": "x", "version": "1", "embedding_size": 8, "weights_sha256": "a" * 64}
    assert EncoderConfig.from_dict(data).outputs == ("embedding",)
    assert EncoderConfig.from_dict({**data, "outputs": ["embedding", "tags"], "labels": ["a"]}).has_tags
    for bad in (["tags"], ["tags", "embedding"], "embedding", [], ["embedding", "tags", "x"]):
        with pytest.raises(EncoderError, match="'outputs'"):
            EncoderConfig.from_dict({**data, "outputs": bad, "labels": ["a"]})
    with pytest.raises(EncoderError, match="'labels'"):
        EncoderConfig.from_dict({**data, "outputs": ["embedding", "tags"]})
