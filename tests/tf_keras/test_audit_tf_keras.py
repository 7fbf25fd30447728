"""audit on tf.keras (Keras 2): a base frozen after compile() and fit() keeps training in the
already-traced train function (PITFALLS stale-compile), and recompiling fixes it.

Run in its own process by tests/test_backend_*.py.
"""

from __future__ import annotations

import numpy as np
import tf_keras

import paramscope
from paramscope.core.report import Role


def small():
    base = tf_keras.Sequential(
        [
            tf_keras.layers.Dense(6, input_shape=(8,)),
            tf_keras.layers.BatchNormalization(),
            tf_keras.layers.Dense(6),
        ],
        name="base",
    )
    inputs = tf_keras.Input((8,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="head")(base(inputs, training=False)))
    model.compile("adam", "mse")
    return model, base


def everything(model) -> list:
    return [w.numpy().tobytes() for w in model.weights] + [
        v.numpy().tobytes() for v in model.optimizer.variables
    ]


def test_base_frozen_after_fit_still_trains_until_recompiled() -> None:
    model, base = small()
    model.fit(np.zeros((4, 8)), np.zeros((4, 2)), verbose=0)
    base.trainable = False
    before = everything(model)
    result = paramscope.audit(model)
    assert result.restored and everything(model) == before
    assert [f.rule for f in result.findings] == ["stale-compile"] and result.failed
    frozen = {v.path for v in result.verdicts if v.role is Role.FROZEN}
    assert set(result.findings[0].tensors) >= frozen
    assert len([v for v in result.verdicts if v.role is Role.TRAINABLE]) == len(model.trainable_weights)
    model.compile("adam", "mse")
    fixed = paramscope.audit(model)
    assert fixed.findings == [] and set(fixed.changed) == {"head/kernel", "head/bias"}


def test_uncompiled_tf_keras_model_with_a_fresh_optimizer() -> None:
    model, base = small()
    base.trainable = False
    result = paramscope.audit(model, optimizer_name="sgd", lr=0.1)
    assert result.optimizer.startswith("SGD(learning_rate=0.1)")
    assert result.findings == [] and set(result.changed) == {"head/kernel", "head/bias"}
