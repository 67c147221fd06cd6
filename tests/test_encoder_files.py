"""Hostile and malformed encoder files: each is one clear EncoderError, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from musicrec_gui import cli
from musicrec_gui.core.encoder import Encoder, EncoderError, bundled_encoder_path, file_sha256, read_encoder_config

ROOT = Path(__file__).resolve().parents[1]
GOOD = json.loads(bundled_encoder_path().with_suffix(".json").read_text(encoding="utf-8"))
FEATURES = GOOD["features"]


def _with(**changes) -> str:
    return json.dumps({**GOOD, **changes})


def _without(key: str) -> str:
    return json.dumps({k: v for k, v in GOOD.items() if k != key})


# name -> (JSON text, a word the one-line message must contain)
MALFORMED = {
    "format_string": (_with(format="2"), "'format'"),
    "format_newer": (_with(format=2), "upgrade musicrec"),
    "format_bool": (_with(format=True), "'format'"),
    "top_level_list": ("[1, 2]", "a list"),
    "top_level_null": ("null", "null"),
    "top_level_number": ("3", "JSON object"),
    "sha_integer": (_with(weights_sha256=123), "'weights_sha256'"),
    "sha_short": (_with(weights_sha256="abc"), "64 hexadecimal"),
    "deep_nesting": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "deep_nesting_object": ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    "missing_name": (_without("name"), "lacks"),
    "name_number": (_with(name=5), "'name'"),
    "name_newline": (_with(name="two\nlines"), "'name'"),
    "version_number": (_with(version=1), "'version'"),
    "embedding_zero": (_with(embedding_size=0), "'embedding_size'"),
    "embedding_negative": (_with(embedding_size=-3), "'embedding_size'"),
    "embedding_float": (_with(embedding_size=32.0), "'embedding_size'"),
    "embedding_string": (_with(embedding_size="32"), "'embedding_size'"),
    "embedding_bool": (_with(embedding_size=True), "'embedding_size'"),
    "embedding_huge": (_with(embedding_size=10**30), "'embedding_size'"),
    "labels_string": (_with(labels="rock"), "'labels'"),
    "labels_numbers": (_with(labels=["a", 2]), "labels[1]"),
    "training_list": (_with(training=[1]), "'training'"),
    "scores_string": (_with(scores="good"), "'scores'"),
    "architecture_null": (_with(architecture=None), "'architecture'"),
    "features_list": (_with(features=[128]), "feature parameters are a list"),
    "features_null": (_with(features=None), "feature parameters are null"),
    "features_unknown_key": (_with(features={**FEATURES, "hop": 512}), "'hop'"),
    "features_string": (_with(features={**FEATURES, "n_mels": "128"}), "'n_mels'"),
    "features_bool": (_with(features={**FEATURES, "sample_rate": False}), "'sample_rate'"),
    "features_float_for_int": (_with(features={**FEATURES, "hop_length": 512.5}), "'hop_length'"),
    "features_zero": (_with(features={**FEATURES, "slice_frames": 0}), "'slice_frames'"),
    "features_nan": (_with(features={**FEATURES, "fmax": float("nan")}), "'fmax'"),  # json.loads reads NaN
    "features_infinity": (_with(features={**FEATURES, "top_db": float("inf")}), "'top_db'"),
    "features_fmax_above_nyquist": (_with(features={**FEATURES, "fmax": 20000.0}), "fmax"),
    "integer_too_long": ('{"embedding_size": ' + "9" * 5000 + "}", "not valid JSON"),
    "not_utf8": ("\udcff{}", "not valid JSON"),
    "empty": ("", "not valid JSON"),
}


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


def test_valid_configs_still_load():
    config = read_encoder_config(bundled_encoder_path())
    assert config.embedding_size == 200 and config.features.kind == "musicnn" and config.has_tags
    compact = read_encoder_config(bundled_encoder_path().with_name("compact.json"))
    assert compact.embedding_size == 32 and compact.features.fmax == 8000.0 and not compact.has_tags


def test_unknown_top_level_keys_are_ignored_and_whole_numbers_count_as_floats(tmp_path):
    path = _write(tmp_path / "e.json", _with(added_by_a_newer_export={"x": 1},
                                             features={**FEATURES, "fmax": 8000, "top_db": 80}))
    config = read_encoder_config(path)
    assert config.features == read_encoder_config(bundled_encoder_path()).features
    assert isinstance(config.features.fmax, float)  # same fingerprint as 8000.0
    upper = _write(tmp_path / "u.json", _with(weights_sha256=GOOD["weights_sha256"].upper()))
    assert read_encoder_config(upper).key == read_encoder_config(bundled_encoder_path()).key


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_config_is_one_line_encoder_error(tmp_path, name):
    text, word = MALFORMED[name]
    path = _write(tmp_path / f"{name}.json", text)
    with pytest.raises(EncoderError) as caught:
        read_encoder_config(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and word in message, message
    assert len(message) < 600, message


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_cli_reports_malformed_config_without_traceback(tmp_path, name, capsys):
    text, _ = MALFORMED[name]
    bad = _write(tmp_path / f"{name}.json", text)
    library = str(tmp_path / "lib.sqlite3")
    result = subprocess.run([sys.executable, "-m", "musicrec_gui.cli", "--library", library, "info", "--encoder",
                             str(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr == "", result.stderr
    unavailable = [line for line in result.stdout.splitlines() if line.startswith("encoder:")]
    assert len(unavailable) == 1 and unavailable[0].startswith("encoder:  unavailable (Encoder config "), result.stdout

    # A command that needs the encoder stops with one error line.
    assert cli.main(["--library", library, "similar", "anything", "--encoder", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("musicrec: error: Encoder config "), err


def _read_config_in_child(path: Path) -> subprocess.CompletedProcess:
    """read_encoder_config in a child with 1.5 GiB of address space: a hang or a runaway read fails the test."""
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))\n"
            "from musicrec_gui.core.encoder import EncoderError, read_encoder_config\n"
            "try:\n    read_encoder_config(sys.argv[1])\nexcept EncoderError as err:\n    print(err)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder", "huge"])
def test_config_that_is_not_a_small_regular_file_is_refused_quickly(tmp_path, kind):
    path = tmp_path / "enc.json"
    if kind == "fifo":
        os.mkfifo(path)
        expected = "named pipe (FIFO), not a regular file"
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
        expected = "character device, not a regular file"
    elif kind == "folder":
        path.mkdir()
        expected = "a folder, not a regular file"
    else:
        with open(path, "wb") as handle:
            handle.truncate(1 << 30)  # sparse: takes no disk space
        expected = "1,073,741,824 bytes"
    try:
        result = _read_config_in_child(path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading a {kind} as the encoder config hangs")
    assert expected in result.stdout and "at most 1 MiB" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder"])
def test_model_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    model = tmp_path / "enc.keras"
    _write(model.with_suffix(".json"), _with())
    if kind == "fifo":
        os.mkfifo(model)
    elif kind == "dev_zero":
        model.symlink_to("/dev/zero")
    else:
        model.mkdir()
    with pytest.raises(EncoderError, match="not a regular file; expected the .keras file"):
        Encoder(model)


def _copy_with_matching_config(source: Path, target: Path, blob: bytes) -> Path:
    """``blob`` as an encoder whose JSON carries its sha256: the hash check passes, the damage is real."""
    target.write_bytes(blob)
    data = json.loads(source.with_suffix(".json").read_text())
    data["weights_sha256"] = file_sha256(target)
    target.with_suffix(".json").write_text(json.dumps(data))
    return target


def test_truncated_model_says_damaged_not_file_not_found(tmp_path, tiny_encoder_path):
    blob = tiny_encoder_path.read_bytes()
    model = _copy_with_matching_config(tiny_encoder_path, tmp_path / "cut.keras", blob[: len(blob) // 2])
    with pytest.raises(EncoderError) as caught:
        Encoder(model)
    message = str(caught.value)
    assert "damaged or truncated" in message and "not a valid .keras zip" in message, message
    assert "File not found" not in message and "\n" not in message

    # A byte flipped inside a compressed member: the zip directory is intact, the CRC is not.
    with zipfile.ZipFile(tiny_encoder_path) as archive:
        info = archive.getinfo("config.json")
    header = info.header_offset
    data_start = header + 30 + int.from_bytes(blob[header + 26:header + 28], "little") \
        + int.from_bytes(blob[header + 28:header + 30], "little")
    flipped = bytearray(blob)
    flipped[data_start + info.compress_size // 2] ^= 0xFF
    model = _copy_with_matching_config(tiny_encoder_path, tmp_path / "flip.keras", bytes(flipped))
    with pytest.raises(EncoderError, match="damaged or truncated"):
        Encoder(model)

    # Not a zip at all, with a matching hash.
    model = _copy_with_matching_config(tiny_encoder_path, tmp_path / "text.keras", b"hello, not a model\n")
    with pytest.raises(EncoderError, match="damaged or truncated: not a valid .keras zip"):
        Encoder(model)


def _save(model, path: Path, embedding_size: int) -> Path:
    from musicrec_gui.core.encoder import EncoderConfig, save_encoder

    save_encoder(model, path, EncoderConfig(name="shape", version="1", embedding_size=embedding_size,
                                            weights_sha256=""))
    return path


def test_model_shapes_must_be_exactly_batch_by_slice_in_and_batch_by_embedding_out(tmp_path, tiny_encoder_path):
    import keras

    inputs = keras.Input((128, 128, 1))
    per_frame = keras.layers.Dense(32)(keras.layers.Reshape((128, 128))(inputs))  # (None, 128, 32): 4096 numbers
    path = _save(keras.Model(inputs, per_frame), tmp_path / "rank3.keras", 32)
    with pytest.raises(EncoderError, match=r"gives shape \(None, 128, 32\),.* gives 32-d vectors \(shape \(None, 32\)\)"):
        Encoder(path)

    fixed_batch = keras.Input((128, 128, 1), batch_size=1)  # embed_slices feeds batches of up to 64
    flat = keras.layers.Dense(8)(keras.layers.GlobalAveragePooling2D()(fixed_batch))
    path = _save(keras.Model(fixed_batch, flat), tmp_path / "batch1.keras", 8)
    with pytest.raises(EncoderError, match=r"takes shape \(1, 128, 128, 1\)"):
        Encoder(path)

    two = keras.layers.GlobalAveragePooling2D()(inputs)
    path = _save(keras.Model(inputs, [keras.layers.Dense(8)(two), keras.layers.Dense(8)(two)]), tmp_path / "two.keras", 8)
    with pytest.raises(EncoderError, match="gives several tensors"):
        Encoder(path)

    assert Encoder(tiny_encoder_path).model.output_shape == (None, 16)  # the right shapes still load
