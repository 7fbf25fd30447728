"""Live Keras 3 models: DESIGN.md's facts, nesting, sharing, optimizer and metrics, no side effects."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import paramscope
from paramscope.core.conventions import keras_lines
from paramscope.core.report import Role
from tests.truth import assert_matches_keras, keras_footer


def layer_on(layer, *shape, dtype="float32"):
    """A model holding ``layer`` applied to inputs of ``shape`` (batch excluded)."""
    inputs = keras.Input(shape, dtype=dtype)
    return keras.Model(inputs, layer(inputs))


def node(report, path):
    return next(n for n in report.nodes() if n.path == path)


def test_vgg16_without_top_fact() -> None:
    model = keras.applications.VGG16(include_top=False, weights=None)
    report = paramscope.inspect(model)
    assert report.totals["trainable"].tensors == 26
    assert report.totals["trainable"].params == 14_714_688
    assert_matches_keras(report, model)


@pytest.mark.sweep  # a fact of Keras's own tracking, the same on every backend: the torch run checks it
def test_resnet50_fact() -> None:
    model = keras.applications.ResNet50(weights=None)
    report = paramscope.inspect(model)
    assert (report.totals["trainable"].tensors, report.totals["state"].tensors) == (214, 106)
    assert (report.totals["trainable"].params, report.totals["state"].params) == (25_583_592, 53_120)
    assert report.totals["all"].params == 25_636_712
    assert_matches_keras(report, model)


def test_lstm_time_distributed_fact() -> None:
    model = keras.Sequential(
        [
            keras.Input((None, 501)),
            keras.layers.LSTM(40, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(501)),
        ]
    )
    report = paramscope.inspect(model)
    lstm, td = report.root.children
    assert lstm.totals()["trainable"].params == 86_720 == 4 * (501 + 40 + 1) * 40
    assert td.totals()["trainable"].params == 20_541 == (40 + 1) * 501
    assert report.totals["trainable"].tensors == 5
    assert report.totals["all"].params == 107_261
    assert [c.type for c in td.children] == ["Dense"]  # the wrapper's layer is a child node
    assert_matches_keras(report, model)


@pytest.mark.parametrize(
    ("layer", "shape", "expected", "tensors"),
    [
        (lambda: keras.layers.GRU(64), (5, 32), 18_816, 3),
        (lambda: keras.layers.Bidirectional(keras.layers.LSTM(64)), (5, 32), 49_664, 6),
        (lambda: keras.layers.Conv2D(64, 3, groups=4), (8, 8, 32), 4_672, 2),
        (lambda: keras.layers.SeparableConv2D(64, 3), (8, 8, 32), 2_400, 3),
        (lambda: keras.layers.MultiHeadAttention(num_heads=2, key_dim=2, output_shape=4), None, 56, 8),
    ],
    ids=["gru", "bidirectional-lstm", "grouped-conv", "separable-conv", "mha"],
)
def test_layer_facts(layer, shape, expected, tensors) -> None:
    if shape is None:  # attention takes query and value
        query = keras.Input((3, 2))
        model = keras.Model(query, layer()(query, query))
    else:
        model = layer_on(layer(), *shape)
    report = paramscope.inspect(model)
    assert report.totals["trainable"].params == expected
    assert report.totals["trainable"].tensors == tensors
    assert_matches_keras(report, model)


def test_batchnorm_roles() -> None:
    channels = 7
    report = paramscope.inspect(layer_on(keras.layers.BatchNormalization(), 4, channels))
    bn = report.root.children[-1]
    assert {t.name: t.role for t in bn.tensors} == {
        "gamma": Role.TRAINABLE,
        "beta": Role.TRAINABLE,
        "moving_mean": Role.STATE,
        "moving_variance": Role.STATE,
    }
    assert report.totals["trainable"].params == report.totals["state"].params == 2 * channels


def test_multihead_attention_sublayers_are_nodes() -> None:
    query = keras.Input((3, 2))
    model = keras.Model(query, keras.layers.MultiHeadAttention(2, 2, name="mha")(query, query))
    mha = node(paramscope.inspect(model), "mha")
    weighted = [c for c in mha.children if c.tensors]
    assert [c.name for c in weighted] == ["query", "key", "value", "attention_output"]
    assert all([t.name for t in c.tensors] == ["kernel", "bias"] for c in weighted)
    assert {c.type for c in mha.children} >= {"EinsumDense", "Softmax", "Dropout"}


def test_sublayer_reenabled_under_frozen_parent_trains_in_keras3() -> None:
    base = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")], name="base"
    )
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(base(inputs)))
    base.trainable = False
    base.get_layer("b").trainable = True
    report = paramscope.inspect(model)
    roles = {t.path: t.role for t in report.tensors()}
    assert roles["base/b/kernel"] is Role.TRAINABLE
    assert roles["base/a/kernel"] is Role.FROZEN
    assert node(report, "base").training_status() == "partial"
    assert node(report, "base").trainable is False  # the flag as set
    assert_matches_keras(report, model)


def test_shared_layer_counted_once() -> None:
    shared = keras.layers.Dense(4, name="shared")
    left = keras.Sequential([keras.Input((3,)), shared], name="left")
    right = keras.Sequential([keras.Input((3,)), shared], name="right")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Add()([left(inputs), right(inputs)]))
    report = paramscope.inspect(model)
    aliases = [t for t in report.tensors() if t.shared_with]
    assert {(t.path, t.shared_with) for t in aliases} == {
        ("right/shared/kernel", "left/shared/kernel"),
        ("right/shared/bias", "left/shared/bias"),
    }
    assert report.totals["all"].tensors == len(model.weights) == 2
    assert_matches_keras(report, model)


def test_compiled_and_fit_reports_optimizer_apart() -> None:
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5), keras.layers.BatchNormalization(), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    before_fit = paramscope.inspect(model)
    assert before_fit.optimizer is None  # not built until the first step
    model.fit(np.zeros((4, 6)), np.zeros((4, 1)), epochs=1, verbose=0)
    report = paramscope.inspect(model)
    trainable = len(model.trainable_weights)
    assert report.optimizer is not None
    assert report.optimizer.totals.tensors == len(model.optimizer.variables) == 2 * trainable + 2
    assert report.totals["all"].tensors == len(model.weights)  # optimizer never in model totals
    assert report.metrics is not None and report.metrics.totals.tensors == len(model.metrics_variables)
    assert any(line.startswith(" Optimizer params:") for line in keras_lines(report))
    assert_matches_keras(report, model)  # footer equal, Optimizer params line included
    assert keras_footer(model)[0] != keras_footer(model)[1]


def test_unbuilt_model_warns() -> None:
    model = keras.Sequential([keras.layers.Dense(3)])
    report = paramscope.inspect(model)
    assert report.totals["all"].tensors == 0
    assert any("not built" in w for w in report.warnings)


def test_seed_generator_state_is_not_a_weight() -> None:
    model = layer_on(keras.layers.Dropout(0.5), 3)
    report = paramscope.inspect(model)
    assert report.totals["all"].tensors == 0 == len(model.weights)


def test_inspect_changes_nothing() -> None:
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(base(inputs))))
    base.trainable = False
    base.layers[-3].trainable = True
    layers = model._flatten_layers()
    flags = [layer.trainable for layer in layers]
    variable_flags = [v.trainable for v in model.weights]
    values = [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]
    paramscope.inspect(model)
    assert [layer.trainable for layer in layers] == flags
    assert [v.trainable for v in model.weights] == variable_flags
    after = [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(values, after, strict=True))
    assert not model.compiled
