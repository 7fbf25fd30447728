"""paramscope.keras.FreezeGuard in real ``model.fit()`` runs, on whichever Keras 3 backend this
process runs (tests/test_backend_*.py runs this file on jax and tensorflow too).

What a stale compile does inside ``fit()`` is recorded per backend, not assumed: after a first
``fit()``, freezing the base without ``compile()`` keeps training it on tensorflow (the traced
step holds the old list), fails in the optimizer on jax, and follows the new flags on torch.
The guard warns with the stale-compile rule at train start on all three, and fails with it
where the base moves.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from paramscope.errors import FreezeViolation, FreezeWarning
from paramscope.keras import FreezeGuard

BACKEND = keras.backend.backend()


def transfer():
    """A convolutional base with BatchNorm, called with training=False, under a Dense head."""
    base = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()], name="base"
    )
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(pooled)), base


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 8, 8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")


def _fit(model, *callbacks, epochs: int = 1) -> None:
    x, y = data()
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=list(callbacks))


def test_a_frozen_base_passes_on_every_backend() -> None:
    model, base = transfer()
    learnable_in_base = len(base.trainable_weights)  # kernel, bias, gamma, beta
    base.trainable = False
    model.compile("adam", "mse")
    guard = FreezeGuard(check="epoch")
    _fit(model, guard, epochs=2)
    assert guard.findings == []
    assert guard.guard.steps == 4  # 2 epochs of 2 batches
    roles = [role.value for role in guard.guard.baseline.roles.values()]
    assert roles.count("frozen") == learnable_in_base
    assert roles.count("trainable") == len(model.trainable_weights)


class Tamper(keras.callbacks.Callback):
    """Writes to a frozen kernel after the second batch: what a buggy callback would do."""

    def __init__(self, variable) -> None:
        super().__init__()
        self.variable, self.batches = variable, 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.batches += 1
        if self.batches == 2:
            self.variable.assign(self.variable + 1.0)


@pytest.mark.sweep  # the cadence is framework-free: one backend proves it
def test_every_n_looks_at_its_cadence() -> None:
    model, base = transfer()
    base.trainable = False
    model.compile("sgd", "mse")
    kernel = base.layers[0].kernel
    with pytest.raises(
        FreezeViolation, match=r"checked after step 3[^\n]*\n.*\[frozen-changed\].*base/conv2d"
    ):
        _fit(model, Tamper(kernel), FreezeGuard(check="every_n", n=3), epochs=2)


def test_freezing_after_compile_without_recompiling() -> None:
    model, base = transfer()
    model.compile("adam", "mse")
    _fit(model)  # the train step is traced with the base trainable
    base.trainable = False
    kernel = keras.ops.convert_to_numpy(base.layers[0].kernel)
    outcome = {"tensorflow": FreezeViolation, "jax": ValueError, "torch": None}[BACKEND]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if outcome is None:
            _fit(model, FreezeGuard())
        else:
            with pytest.raises(outcome) as raised:
                _fit(model, FreezeGuard())
    said = [str(w.message) for w in seen if issubclass(w.category, FreezeWarning)]
    assert any(s.startswith("warning [stale-compile]") and "fix: call model.compile(" in s for s in said)
    if outcome is None:  # the step followed the new flags: the guard is right to pass
        assert np.array_equal(kernel, keras.ops.convert_to_numpy(base.layers[0].kernel))
    if outcome is FreezeViolation:
        (finding,) = raised.value.findings
        assert finding.rule == "stale-compile"
        assert len(finding.tensors) == len([w for w in base.weights if "moving" not in w.path])
        assert all(t.startswith("base/") for t in finding.tensors)


@pytest.mark.sweep
def test_a_model_with_nothing_to_train_fails_at_train_begin() -> None:
    model, _ = transfer()
    model.trainable = False
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(FreezeViolation, match=r"\[nothing-to-train\]"):
        _fit(model, FreezeGuard())
