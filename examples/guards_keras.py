"""A small transfer-learning model for the README's Keras guard example.

A convolutional ``base`` with BatchNorm, frozen and called with ``training=False``, under a
trainable Dense head, compiled after freezing: what ``paramscope.keras.FreezeGuard`` passes.
"""

from __future__ import annotations

import numpy as np

SIZE = 16


def transfer(freeze_base: bool = True):
    import keras

    base = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(8, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
        ],
        name="base",
    )
    base.trainable = not freeze_base
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(pooled), name="transfer")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # the head returns logits
    model.compile("adam", loss)  # after freezing: compile() sees the flags
    return model


def batches(count: int = 8):
    """Random images and labels, always the same."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(count, SIZE, SIZE, 3)).astype("float32"), rng.integers(0, 3, count)
