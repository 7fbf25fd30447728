"""The models the README's `report` and `plot` examples draw.

``transfer`` is the story paramscope starts from: MobileNetV2 (``weights=None``, nothing
downloaded) under a pooling + Dense(23) head, its base frozen as the Keras transfer-learning
guide does. ``small`` is the same shape in miniature, for a quick look.
"""

from __future__ import annotations


def transfer(frozen: bool = True):
    """MobileNetV2 base + GlobalAveragePooling2D + Dense(23), the base frozen by default."""
    from paramscope.demo import build_transfer_model

    model, base = build_transfer_model()
    base.trainable = not frozen
    return model


def small(frozen: bool = True):
    """A Dense + BatchNormalization base under a Dense head: the same roles in 73 parameters."""
    import keras

    base = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, name="hidden"), keras.layers.BatchNormalization(name="bn")],
        name="base",
    )
    inputs = keras.Input((6,), name="pixels")
    outputs = keras.layers.Dense(3, name="head")(base(inputs))
    base.trainable = not frozen
    return keras.Model(inputs, outputs, name="transfer")
