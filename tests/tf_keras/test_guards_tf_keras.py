"""paramscope.keras.TFKerasFreezeGuard in real tf.keras ``fit()`` runs: a base frozen after
compile() and a first fit() keeps training in the traced step (stale-compile), and passes once
recompiled. Run in its own process by tests/test_backend_tf_keras.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras

from paramscope.errors import FreezeViolation, FreezeWarning
from paramscope.keras import TFKerasFreezeGuard


def transfer():
    base = tf_keras.Sequential(
        [tf_keras.layers.Dense(6, input_shape=(8,)), tf_keras.layers.BatchNormalization()], name="base"
    )
    inputs = tf_keras.Input((8,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="head")(base(inputs, training=False)))
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 8)), rng.normal(size=(8, 2)), batch_size=4, verbose=0)
    return model, base


def _fit(model, guard) -> None:
    rng = np.random.default_rng(1)
    model.fit(rng.normal(size=(8, 8)), rng.normal(size=(8, 2)), batch_size=4, verbose=0, callbacks=[guard])


def test_freezing_without_recompiling_fails_then_passes_recompiled() -> None:
    model, base = transfer()
    trained_in_base = [w.name for w in base.trainable_weights]  # kernel, bias, gamma, beta
    base.trainable = False
    with (
        pytest.warns(FreezeWarning, match=r"warning \[stale-compile\]"),
        pytest.raises(FreezeViolation) as raised,
    ):
        _fit(model, TFKerasFreezeGuard())
    (finding,) = raised.value.findings
    assert finding.rule == "stale-compile"
    assert len(finding.tensors) == len(trained_in_base) == 4
    assert "fix: call model.compile(...) again after changing trainable flags" in str(raised.value)

    model.compile("adam", "mse")
    guard = TFKerasFreezeGuard(check="epoch")
    _fit(model, guard)
    assert guard.guard.findings == [] and guard.guard.steps == 2
    assert len(model.trainable_weights) == 2  # the head: tf.keras now trains what the flags say
