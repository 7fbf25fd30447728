"""audit on live Keras 3 models, on whichever backend this process runs (tests/test_backend_*.py
runs this file on jax and tensorflow too). What each backend does with a stale compile is
recorded here, not assumed: torch and tensorflow train the current trainable set, jax fails
in the optimizer, which the audit reports as stale-compile.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import paramscope
from paramscope.core.report import Role

BACKEND = keras.backend.backend()


def transfer(call_in_inference: bool = True):
    """The seed's story at a small size: a MobileNetV2 base, frozen, with a pooled Dense head."""
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35
    )
    inputs = keras.Input((32, 32, 3), name="image")
    features = base(inputs, training=False) if call_in_inference else base(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    model = keras.Model(inputs, keras.layers.Dense(5, name="dense")(pooled), name="transfer")
    base.trainable = False
    return model, base


def small(compiled: bool = False):
    base = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(6), keras.layers.BatchNormalization(), keras.layers.Dense(6)],
        name="base",
    )
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(base(inputs, training=False)))
    if compiled:
        model.compile("adam", "mse")
    return model, base


def everything(model) -> dict:
    """Values of every variable the model and its optimizer hold, flags, and the cached step."""
    optimizer = getattr(model, "optimizer", None)
    return {
        "variables": [np.array(v.numpy()).tobytes() for v in model.variables],
        "optimizer": [np.array(v.numpy()).tobytes() for v in optimizer.variables]
        if optimizer is not None
        else None,
        "optimizer_built": getattr(optimizer, "built", None),
        "flags": [layer.trainable for layer in model._flatten_layers()],
        "train_function": getattr(model, "train_function", None),
    }


def audited(model, **options):
    before = everything(model)
    result = paramscope.audit(model, **options)
    assert result.restored
    assert everything(model) == before, "the audit left the model or its optimizer changed"
    return result


def test_seed_transfer_model_passes_and_only_the_head_moves() -> None:
    model, _ = transfer()
    result = audited(model)
    assert result.findings == [] and not result.failed
    assert result.changed == ["dense/kernel", "dense/bias"]
    trainable = [v for v in result.verdicts if v.role is Role.TRAINABLE]
    frozen_or_state = [v for v in result.verdicts if v.role is not Role.TRAINABLE]
    assert len(trainable) == len(model.trainable_weights) == 2
    assert len(frozen_or_state) == len(model.non_trainable_weights)


def test_frozen_base_batchnorm_stays_in_inference_without_training_false() -> None:
    """Keras 3 runs a frozen BatchNorm in inference mode however the base is called."""
    model, _ = transfer(call_in_inference=False)
    result = audited(model)
    assert result.findings == []
    assert not any(v.changed for v in result.verdicts if v.role is Role.STATE)


def test_compiled_model_trains_through_its_compiled_step() -> None:
    model, base = small(compiled=True)
    base.trainable = False
    model.compile("adam", "mse")
    result = audited(model)
    assert result.optimizer == "the compiled Adam"
    assert result.findings == [] and result.changed == ["head/kernel", "head/bias"]
    assert model.optimizer.built is False  # the audit stepped a clone


def test_base_frozen_after_compile_and_fit() -> None:
    model, base = small(compiled=True)
    model.fit(np.zeros((4, 8)), np.zeros((4, 2)), verbose=0)
    base.trainable = False  # no compile() after: stale
    result = audited(model)
    if BACKEND == "jax":  # the optimizer was built for 8 variables and now gets 2
        assert [f.rule for f in result.findings] == ["stale-compile"]
        assert "train step raised" in result.findings[0].message and result.failed
    else:  # torch and tensorflow follow the current flags
        assert result.findings == [] and result.changed == ["head/kernel", "head/bias"]
        assert "changed since compile()" in result.notes[0]
    model.compile("adam", "mse")
    assert audited(model).findings == []


def test_integer_inputs_stay_within_the_embedding() -> None:
    inputs = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(7, 4, name="embed")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Flatten()(x)))
    result = audited(model)
    assert result.inputs == "(2, 5) int32"
    assert set(result.changed) == {"embed/embeddings", "out/kernel", "out/bias"} and result.findings == []


def test_factory_optimizer_stays_unbuilt_and_freeze_rules_undone() -> None:
    model, base = small()
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    result = audited(model, optimizer=optimizer, freeze=["base"])
    assert result.optimizer == "the factory's SGD"
    assert result.changed == ["head/kernel", "head/bias"] and result.findings == []
    assert optimizer.built is False and base.trainable


@pytest.mark.skipif(BACKEND != "torch", reason="the CLI runs the torch backend here")
def test_cli_audit_of_a_keras_file(tmp_path) -> None:
    import subprocess
    import sys

    model, _ = small()
    model.save(tmp_path / "m.keras")
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "audit", str(tmp_path / "m.keras"), "--freeze", "base"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Audit passed." in result.stdout


def test_base_frozen_after_compile_before_any_fit() -> None:
    """No train step traced and no optimizer built yet: every backend trains the current set,
    and the audit still says the flags changed since compile()."""
    model, base = small(compiled=True)
    base.trainable = False
    result = audited(model)
    assert result.findings == [] and result.changed == ["head/kernel", "head/bias"]
    assert "changed since compile()" in result.notes[0]
