"""Live tf.keras (Keras 2) models, against tf.keras's own numbers.

Run in its own process by tests/test_backend_*.py. tf.keras decides trainability per parent:
a sublayer re-enabled under a frozen parent stays frozen (Keras 3 would train it).
"""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras

import paramscope
from paramscope.core.conventions import keras_lines
from paramscope.core.report import Role
from tests.truth import assert_matches_keras, keras_footer


def test_resnet50_fact() -> None:
    model = tf_keras.applications.ResNet50(weights=None)
    report = paramscope.inspect(model)
    assert report.source.kind == "tf_keras"
    assert (report.totals["trainable"].tensors, report.totals["state"].tensors) == (214, 106)
    assert report.totals["all"].params == 25_636_712
    assert_matches_keras(report, model)


@pytest.mark.parametrize("name", ["MobileNetV2", "VGG16", "DenseNet121", "EfficientNetB0", "InceptionV3"])
def test_transfer_model_frozen_base(name: str) -> None:
    base = getattr(tf_keras.applications, name)(weights=None, include_top=False, input_shape=(75, 75, 3))
    inputs = tf_keras.Input((75, 75, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(23)(x))
    before = paramscope.inspect(model)
    assert_matches_keras(before, model)
    base.trainable = False
    after = paramscope.inspect(model)
    assert_matches_keras(after, model)
    assert after.totals["trainable"].tensors == 2
    assert after.totals["frozen"].tensors == before.totals["trainable"].tensors - 2


def test_seed_transfer_numbers() -> None:
    base = tf_keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(224, 224, 3))
    inputs = tf_keras.Input((224, 224, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(23)(x))
    assert paramscope.inspect(model).totals["trainable"].params == 2_253_335
    base.trainable = False
    report = paramscope.inspect(model)
    assert (report.totals["trainable"].tensors, report.totals["trainable"].params) == (2, 29_463)


def reenabled_under_frozen_parent():
    """A frozen base whose last Dense is set trainable again afterwards."""
    base = tf_keras.Sequential(
        [tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="a"), tf_keras.layers.Dense(2, name="b")],
        name="base",
    )
    inputs = tf_keras.Input((4,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1, name="head")(base(inputs)))
    base.trainable = False
    base.get_layer("b").trainable = True
    return model


def test_sublayer_reenabled_under_frozen_parent_stays_frozen() -> None:
    model = reenabled_under_frozen_parent()
    report = paramscope.inspect(model)
    roles = {t.path: t.role for t in report.tensors()}
    assert roles["base/b/kernel"] is Role.FROZEN  # per-parent semantics
    assert roles["head/kernel"] is Role.TRAINABLE
    assert_matches_keras(report, model)


def test_compiled_and_fit() -> None:
    model = tf_keras.Sequential(
        [
            tf_keras.Input((6,)),
            tf_keras.layers.Dense(5),
            tf_keras.layers.BatchNormalization(),
            tf_keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 6)), np.zeros((4, 1)), epochs=1, verbose=0)
    report = paramscope.inspect(model)
    assert keras_lines(report) == keras_footer(model)  # tf.keras never prints optimizer params
    assert report.totals["state"].tensors == 2


def test_weight_names_are_short() -> None:
    model = tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(2, name="d")])
    report = paramscope.inspect(model)
    assert [t.path for t in report.tensors()] == ["d/kernel", "d/bias"]


def _compiled_transfer():
    base = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="a")], name="base")
    inputs = tf_keras.Input((4,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1, name="head")(base(inputs)))
    model.compile(optimizer="adam", loss="mse")
    return model, base


def test_stale_compile_explained() -> None:
    model, base = _compiled_transfer()
    base.trainable = False
    report = paramscope.inspect(model)
    assert {"base", "base/a"} <= set(report.changed_since_compile)
    assert "head" not in report.changed_since_compile
    (stale,) = [line for line in paramscope.explain(model).answer if line.startswith("Stale compile")]
    assert "fit() restores the flags captured at compile()" in stale and "call compile() again" in stale


def test_recompiled_model_is_not_stale() -> None:
    model, base = _compiled_transfer()
    base.trainable = False
    model.compile(optimizer="adam", loss="mse")
    assert paramscope.inspect(model).changed_since_compile == []
    assert not any(line.startswith("Stale compile") for line in paramscope.explain(model).answer)


@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50", "InceptionV3"])
def test_explain_tf_keras_applications(name: str) -> None:
    model = getattr(tf_keras.applications, name)(weights=None)
    explained = paramscope.explain(model).layers
    assert [e.problem for e in explained if e.problem] == []
    assert [e.type for e in explained if e.formula.generic] == []
    assert sum(e.params for e in explained) == model.count_params()


@pytest.mark.parametrize("unfreeze", [False, True], ids=["frozen-base", "sublayer-reenabled"])
def test_tf_keras_h5_matches_loaded_model(unfreeze: bool, tmp_path) -> None:
    """Keras 2 writes `layer/kernel:0` names and decides roles per parent."""
    base = tf_keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3))
    inputs = tf_keras.Input((64, 64, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(5, name="head")(x))
    base.trainable = False
    if unfreeze:
        base.get_layer("Conv_1").trainable = True  # stays frozen under a frozen parent in Keras 2
    path = tmp_path / "model.h5"
    model.save(path)
    from_file = paramscope.inspect(path)
    loaded = tf_keras.models.load_model(path)
    live = paramscope.inspect(loaded)
    assert {t.path: t.role for t in from_file.tensors()} == {t.path: t.role for t in live.tensors()}
    assert from_file.totals["trainable"].tensors == len(loaded.trainable_weights)
    # tf.keras does not restore a nested model's flag: a re-enabled sublayer trains after loading
    assert len(loaded.trainable_weights) == (3 if unfreeze else 2)
    assert any("saved frozen, loads trainable" in w for w in from_file.warnings) == unfreeze


@pytest.mark.parametrize(
    "rules",
    [
        [("freeze", "base")],
        [("freeze", "base"), ("unfreeze", "base/b")],
        [("freeze", "all"), ("unfreeze", "head")],
    ],
    ids=["base", "reenabled-under-frozen-parent", "all-then-head"],
)
def test_freeze_simulation_equals_applying(rules) -> None:
    def build():
        base = tf_keras.Sequential(
            [tf_keras.Input((4,)), tf_keras.layers.Dense(3, name="a"), tf_keras.layers.Dense(2, name="b")],
            name="base",
        )
        inputs = tf_keras.Input((4,))
        return tf_keras.Model(inputs, tf_keras.layers.Dense(1, name="head")(base(inputs)))

    model = build()
    simulated = paramscope.freeze(model, rules=rules).roles_after
    applied = paramscope.freeze(model, rules=rules, apply=True).roles_after
    assert applied == simulated
    assert_matches_keras(paramscope.inspect(model), model)
    if rules[-1] == ("unfreeze", "base/b"):
        assert simulated["base/b/kernel"] is Role.FROZEN  # per-parent semantics


def test_frozen_parent_override_tf_keras_stays_frozen() -> None:
    model = reenabled_under_frozen_parent()
    (finding,) = [f for f in paramscope.lint(model)[1] if f.rule == "frozen-parent-override"]
    assert finding.severity == "warning" and "tf.keras keeps them frozen" in finding.message
