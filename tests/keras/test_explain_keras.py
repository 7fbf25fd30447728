"""explain on live Keras 3 models: formulas from random valid configurations equal the real counts.

Each hypothesis case builds a real layer, and the formula's value and listed tensors must equal
what Keras created (``layer.weights``); a disagreement, or a fallback to the generic formula,
fails. The lean jax and tensorflow runs (tests/backend_suites.py) draw 8 examples of each
layer family instead of 20: a formula is arithmetic on shapes, the same on every backend, and
what a backend changes (which weights a layer creates, and their names) shows in any example.
"""

from __future__ import annotations

import math
from functools import partial

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paramscope
from paramscope.ops.explain import explain_layers
from tests.backend_suites import LEAN

EXAMPLES = 8 if LEAN else 20
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

small = st.integers(1, 6)
flag = st.booleans()


def explained(model, layer):
    """The explanation covering ``layer``, checked against Keras's own list of its weights."""
    report = paramscope.inspect(model)
    matches = [e for e in explain_layers(report) if e.path.rsplit("/", 1)[-1] == layer.name]
    assert len(matches) == 1, [e.path for e in explain_layers(report)]
    explanation = matches[0]
    assert explanation.problem is None, explanation.problem
    assert not explanation.formula.generic
    assert explanation.formula.value == sum(math.prod(tuple(v.shape)) for v in layer.weights)
    assert sorted(t.name for t in explanation.tensors) == sorted(
        v.name.rsplit("/", 1)[-1] for v in layer.weights
    )
    return explanation


def on(layer, *shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


@st.composite
def conv_layers(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    groups = draw(st.sampled_from([1, 2]))
    filters, channels = groups * draw(small), groups * draw(small)
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    cls = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    return partial(cls, filters, kernel, groups=groups, use_bias=draw(flag)), (*(4,) * rank, channels)


@st.composite
def conv_transpose_layers(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    cls = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}[
        rank
    ]
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    return partial(cls, draw(small), kernel, use_bias=draw(flag)), (*(4,) * rank, draw(small))


@st.composite
def depthwise_and_separable(draw):
    rank = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    multiplier, bias = draw(st.integers(1, 3)), draw(flag)
    if draw(flag):
        cls = {1: keras.layers.DepthwiseConv1D, 2: keras.layers.DepthwiseConv2D}[rank]
        factory = partial(cls, kernel, depth_multiplier=multiplier, use_bias=bias)
    else:
        cls = {1: keras.layers.SeparableConv1D, 2: keras.layers.SeparableConv2D}[rank]
        factory = partial(cls, draw(small), kernel, depth_multiplier=multiplier, use_bias=bias)
    return factory, (*(5,) * rank, draw(small))


def _bidirectional(inner):
    return keras.layers.Bidirectional(inner())


@st.composite
def recurrent_layers(draw):
    kind = draw(st.sampled_from(["SimpleRNN", "LSTM", "GRU"]))
    kwargs = {"use_bias": draw(flag)}
    if kind == "GRU":
        kwargs["reset_after"] = draw(flag)
    factory = partial(getattr(keras.layers, kind), draw(small), **kwargs)
    if draw(flag):
        factory = partial(_bidirectional, factory)
    return factory, (3, draw(small))


@st.composite
def norm_layers(draw):
    channels = 2 * draw(small)
    choice = draw(st.sampled_from(["batch", "layer", "rms", "group"]))
    center, scale = draw(flag), draw(flag)
    factory = {
        "batch": partial(keras.layers.BatchNormalization, center=center, scale=scale),
        "layer": partial(keras.layers.LayerNormalization, center=center, scale=scale),
        "rms": partial(keras.layers.RMSNormalization),
        "group": partial(keras.layers.GroupNormalization, groups=2, center=center, scale=scale),
    }[choice]
    return factory, (3, channels)


def _time_distributed(units):
    return keras.layers.TimeDistributed(keras.layers.Dense(units))


def _dense_with_lora(units, rank):
    layer = keras.layers.Dense(units)
    layer.lora_rank_to_enable = rank  # enabled once built, as users do
    return layer


@st.composite
def other_layers(draw):
    choice = draw(
        st.sampled_from(
            ["dense", "lora", "embedding", "prelu", "time_distributed", "einsum", "normalization"]
        )
    )
    width = draw(small)
    if choice == "dense":
        return partial(keras.layers.Dense, draw(small), use_bias=draw(flag)), (width,)
    if choice == "lora":
        return partial(_dense_with_lora, draw(small), draw(st.integers(1, 3))), (width,)
    if choice == "embedding":
        return partial(keras.layers.Embedding, draw(st.integers(2, 50)), draw(small)), (3,)
    if choice == "prelu":
        return partial(keras.layers.PReLU, shared_axes=draw(st.sampled_from([None, [1]]))), (3, width)
    if choice == "time_distributed":
        return partial(_time_distributed, draw(small)), (3, width)
    if choice == "normalization":
        return partial(keras.layers.Normalization, axis=-1), (3, width)
    heads, depth, bias_axes = draw(small), draw(small), draw(st.sampled_from([None, "de", "e"]))
    return partial(
        keras.layers.EinsumDense, "abc,cde->abde", output_shape=(None, heads, depth), bias_axes=bias_axes
    ), (3, width)


@pytest.mark.parametrize(
    "strategy",
    [
        conv_layers(),
        conv_transpose_layers(),
        depthwise_and_separable(),
        recurrent_layers(),
        norm_layers(),
        other_layers(),
    ],
    ids=["conv", "conv-transpose", "depthwise-separable", "recurrent", "normalization", "other"],
)
def test_formula_equals_real_count(strategy) -> None:
    @SETTINGS
    @given(strategy)
    def check(case) -> None:
        factory, shape = case
        layer = factory()
        model = on(layer, *shape)
        rank = getattr(layer, "lora_rank_to_enable", None)
        if rank:
            layer.enable_lora(rank)
        explained(model, layer)

    check()


@SETTINGS
@given(
    heads=small,
    key_dim=small,
    value_dim=st.one_of(st.none(), small),
    out=st.one_of(st.none(), small),
    q_width=small,
    kv_width=small,
    bias=flag,
    gate=flag,
)
def test_multi_head_attention_formula(heads, key_dim, value_dim, out, q_width, kv_width, bias, gate) -> None:
    layer = keras.layers.MultiHeadAttention(
        heads, key_dim, value_dim=value_dim, output_shape=out, use_bias=bias, use_gate=gate
    )
    query, value = keras.Input((3, q_width)), keras.Input((4, kv_width))
    explained(keras.Model([query, value], layer(query, value)), layer)


@SETTINGS
@given(head_dim=small, kv_heads=st.integers(1, 3), ratio=st.integers(1, 3), width=small, bias=flag, gate=flag)
def test_group_query_attention_formula(head_dim, kv_heads, ratio, width, bias, gate) -> None:
    layer = keras.layers.GroupQueryAttention(
        head_dim, kv_heads * ratio, kv_heads, use_bias=bias, use_gate=gate
    )
    query, value = keras.Input((3, width)), keras.Input((4, width))
    explained(keras.Model([query, value], layer(query, value)), layer)


def test_seed_facts_explained() -> None:
    model = keras.Sequential(
        [
            keras.Input((None, 501)),
            keras.layers.LSTM(40, return_sequences=True, name="lstm"),
            keras.layers.TimeDistributed(keras.layers.Dense(501), name="td"),
        ]
    )
    lstm, td = explain_layers(paramscope.inspect(model))
    assert lstm.formula.symbolic == "4 · (inputs + units + 1) · units"
    assert lstm.formula.expression == "4 × (501 + 40 + 1) × 40"
    assert lstm.formula.value == 86_720
    assert [(t.name, t.shape) for t in lstm.tensors] == [
        ("kernel", (501, 160)),
        ("recurrent_kernel", (40, 160)),
        ("bias", (160,)),
    ]
    assert lstm.text.startswith("Four gates (input, forget, cell, output)")
    assert td.formula.expression == "(40 + 1) × 501" and td.formula.value == 20_541


def test_vgg16_convolutions_make_26_tensors() -> None:
    report = paramscope.inspect(keras.applications.VGG16(include_top=False, weights=None))
    convs = [e for e in explain_layers(report) if e.type == "Conv2D"]
    assert len(convs) == 13
    assert sum(len(e.tensors) for e in convs) == 26
    assert sum(e.formula.value for e in convs) == 14_714_688


def test_layer_glob_selects() -> None:
    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    report = paramscope.inspect(model)
    selected = explain_layers(report, "block_16_*")
    assert {e.path for e in selected} == {
        "block_16_expand",
        "block_16_expand_BN",
        "block_16_depthwise",
        "block_16_depthwise_BN",
        "block_16_project",
        "block_16_project_BN",
    }


def _compiled_model():
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")], name="base")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(base(inputs)))
    model.compile(optimizer="adam", loss="mse")
    return model, base


def test_stale_compile_explained() -> None:
    model, base = _compiled_model()
    base.trainable = False  # after compile(): stale
    answer = paramscope.explain(model).answer
    stale = [line for line in answer if line.startswith("Stale compile")]
    assert len(stale) == 1 and "base" in stale[0] and "call compile() again" in stale[0]


def test_recompiled_model_is_not_stale() -> None:
    model, base = _compiled_model()
    base.trainable = False
    model.compile(optimizer="adam", loss="mse")
    assert not any(line.startswith("Stale compile") for line in paramscope.explain(model).answer)


def test_answer_explains_optimizer_params_after_fit() -> None:
    model, _ = _compiled_model()
    model.fit(np.zeros((2, 4)), np.zeros((2, 1)), verbose=0)
    answer = paramscope.explain(model).answer
    assert any(line.startswith("Optimizer: model.summary()'s Total params") for line in answer)
