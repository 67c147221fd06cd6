from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from audio_factory import make_bad_files, make_good_library
from training.config import corpus_dir

CORPUS = corpus_dir()  # the one corpus setting (training/config.py)


def build_tiny_encoder(path: Path, *, seed: int = 7):
    """A small real Keras encoder with the app's input spec (not the bundled model)."""
    import keras

    from musicrec_gui.core.config import FeatureConfig
    from musicrec_gui.core.encoder import EncoderConfig, save_encoder

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Conv2D(8, 5, strides=2, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(4)(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(16, name="embedding")(x)
    model = keras.Model(inputs, outputs)
    config = EncoderConfig(name="tiny-test", version=f"0.0.{seed}", embedding_size=16, weights_sha256="",
                           features=FeatureConfig(), architecture="tiny", description="test fixture")
    return save_encoder(model, path, config)


TAGS = ("drone", "noise", "chord")


@pytest.fixture(scope="session")
def tagging_encoder_path(tmp_path_factory) -> Path:
    """A small real Keras encoder with a 16-d embedding and a 3-tag sigmoid head (as musicnn has 50)."""
    import keras

    from musicrec_gui.core.config import FeatureConfig
    from musicrec_gui.core.encoder import EncoderConfig, save_encoder

    keras.utils.set_random_seed(3)
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Conv2D(4, 5, strides=4, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    embedding = keras.layers.Dense(16, name="embedding")(x)
    tags = keras.layers.Dense(len(TAGS), activation="sigmoid", name="tags")(x)
    path = tmp_path_factory.mktemp("tagger") / "tagger.keras"
    save_encoder(keras.Model(inputs, [embedding, tags]), path,
                 EncoderConfig(name="tagger", version="1", embedding_size=16, weights_sha256="",
                               features=FeatureConfig(), labels=TAGS, outputs=("embedding", "tags")))
    return path


@pytest.fixture(scope="session")
def tiny_encoder_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("encoder") / "tiny.keras"
    build_tiny_encoder(path)
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tiny_encoder_path):
    from musicrec_gui.core.encoder import Encoder

    return Encoder(tiny_encoder_path)


@pytest.fixture(scope="session")
def good_library_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("music")
    make_good_library(root)
    return root


@pytest.fixture()
def env(tmp_path):
    """A real library file and settings file for the app's windows; every window made is closed as a
    user quitting would (settings saved, player and engine stopped)."""
    from musicrec_gui.core.library import Library
    from musicrec_gui.gui.preferences import open_store

    library = Library(tmp_path / "library.sqlite3")
    store = open_store(str(tmp_path / "settings.ini"))
    windows = []
    yield {"library": library, "store": store, "tmp": tmp_path, "windows": windows}
    for window in windows:
        window.close()
        window.engine.shutdown()
    library.close()


@pytest.fixture()
def music_dir(tmp_path, good_library_dir) -> Path:
    """A fresh copy of the good songs plus every kind of bad file."""
    import shutil

    root = tmp_path / "music"
    shutil.copytree(good_library_dir, root)
    make_bad_files(root / "bad")
    return root


# PySide6 can crash while the interpreter finalizes after Qt was used ("Fatal Python error:
# … deallocating None … Garbage-collecting"), turning a green run red at random. The app ends
# without finalizing (gui/app.py, _end_process); the test process does the same once pytest has
# reported everything, with pytest's own exit status.
_EXIT_STATUS: dict[str, int] = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys

    if "PySide6" in sys.modules and "code" in _EXIT_STATUS and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["code"])
