"""The encoder CNN (Keras functional API), after the original musicrec recipe.

Conv 64@7×7 → BN → AvgPool 2, Conv 128@7×7 stride 2 → BN → AvgPool 2,
Conv 256@3×3 → BN → AvgPool 2, Conv 512@3×3 → BN → AvgPool 2, BN, Flatten, BN,
Dropout 0.6, Dense 1024 → Dropout 0.5 → Dense 256 → Dropout 0.25 → Dense 64 →
Dense 32 ("embedding") → softmax head. He-normal init, Adam.

Two deliberate changes from the original, both measured (docs/model.md):
- the 32-d embedding layer is **linear** (the original's ReLU left a third of the
  dimensions dead), and the exported embedding model L2-normalises it with the
  built-in ``UnitNormalization`` layer, so slice vectors are on the sphere that the
  contrastive loss trains and the song vector is a mean of unit vectors;
- ``architecture="compact"`` halves the conv widths (32/64/128/256) and shrinks the
  dense head (1024 → 256 → 64 → 32): about 3× faster per slice on a CPU and a
  ~19 MB .keras file.

Only built-in layers are used, so the exported model loads with
``keras.saving.load_model(path, safe_mode=True, compile=False)``.
"""

from __future__ import annotations

import keras
from keras import layers

ARCHITECTURES = {
    "seed": {"channels": (64, 128, 256, 512), "dense": (1024, 256, 64)},
    "compact": {"channels": (32, 64, 128, 256), "dense": (1024, 256, 64)},
}


def build_model(
    architecture: str = "compact",
    n_labels: int = 0,
    embedding_size: int = 32,
    input_shape: tuple[int, int, int] = (128, 128, 1),
    n_tags: int = 0,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> tuple[keras.Model, keras.Model]:
    """Build (training_model, embedding_model).

    ``embedding_model``: slices (batch, 128, 128, 1) float32 → (batch, embedding_size),
    L2-normalised. ``training_model`` shares its layers and outputs
    ``{"embedding": raw 32-d, "label": softmax over n_labels, "tags": sigmoid over n_tags}``
    (heads only for n > 0); it is compiled for the label head when there is one.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}.")
    spec = ARCHITECTURES[architecture]
    init = lambda i: keras.initializers.HeNormal(seed=seed + i)  # noqa: E731 - not serialised: a fresh instance each

    inputs = keras.Input(shape=input_shape, name="slice")
    c1, c2, c3, c4 = spec["channels"]
    x = layers.Conv2D(c1, 7, padding="same", activation="relu", kernel_initializer=init(1), name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.AveragePooling2D(2, name="pool1")(x)
    x = layers.Conv2D(c2, 7, strides=2, padding="same", activation="relu", kernel_initializer=init(2), name="conv2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.AveragePooling2D(2, name="pool2")(x)
    x = layers.Conv2D(c3, 3, padding="same", activation="relu", kernel_initializer=init(3), name="conv3")(x)
    x = layers.BatchNormalization(name="bn3")(x)
    x = layers.AveragePooling2D(2, name="pool3")(x)
    x = layers.Conv2D(c4, 3, padding="same", activation="relu", kernel_initializer=init(4), name="conv4")(x)
    x = layers.BatchNormalization(name="bn4")(x)
    x = layers.AveragePooling2D(2, name="pool4")(x)
    x = layers.BatchNormalization(name="bn5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.BatchNormalization(name="bn6")(x)
    x = layers.Dropout(0.6, name="drop1")(x)
    d1, d2, d3 = spec["dense"]
    x = layers.Dense(d1, activation="relu", kernel_initializer=init(5), name="dense1")(x)
    x = layers.Dropout(0.5, name="drop2")(x)
    x = layers.Dense(d2, activation="relu", kernel_initializer=init(6), name="dense2")(x)
    x = layers.Dropout(0.25, name="drop3")(x)
    x = layers.Dense(d3, activation="relu", kernel_initializer=init(7), name="dense3")(x)
    embedding = layers.Dense(embedding_size, activation=None, kernel_initializer=init(8), name="embedding")(x)
    normed = layers.UnitNormalization(name="l2_normalise")(embedding)

    outputs = {"embedding": embedding}
    if n_labels:
        outputs["label"] = layers.Dense(n_labels, activation="softmax", kernel_initializer=init(9), name="label")(embedding)
    if n_tags:
        outputs["tags"] = layers.Dense(n_tags, activation="sigmoid", kernel_initializer=init(10), name="tags")(embedding)
    training_model = keras.Model(inputs, outputs, name=f"musicrec_{architecture}_train")
    embedding_model = keras.Model(inputs, normed, name=f"musicrec_{architecture}")
    if n_labels:
        training_model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss={"label": "sparse_categorical_crossentropy"},
            metrics={"label": ["accuracy"]},
        )
    return training_model, embedding_model
