"""explain on torch modules: formulas from random valid configurations equal the real counts."""

from __future__ import annotations

from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import paramscope
from paramscope.ops.explain import explain_layers
from tests.test_torch import ZOO

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
small = st.integers(1, 6)
flag = st.booleans()


def explained(module: nn.Module):
    """The explanation of a module standing alone, checked against torch's own counts."""
    report = paramscope.inspect(module)
    (explanation,) = [e for e in explain_layers(report) if e.path == ""]
    assert explanation.problem is None, explanation.problem
    assert not explanation.formula.generic
    assert explanation.formula.value == sum(p.numel() for p in module.parameters()) + sum(
        b.numel() for b in module.buffers()
    )
    names = [n.rsplit(".", 1)[-1] for n, _ in [*module.named_parameters(), *module.named_buffers()]]
    assert sorted(t.name for t in explanation.tensors) == sorted(names)
    return explanation


@st.composite
def modules(draw):
    kind = draw(
        st.sampled_from(
            [
                "linear",
                "bilinear",
                "conv",
                "conv_t",
                "embedding",
                "bag",
                "norm",
                "layernorm",
                "groupnorm",
                "prelu",
            ]
        )
    )
    bias = draw(flag)
    if kind == "linear":
        return partial(nn.Linear, draw(small), draw(small), bias=bias)
    if kind == "bilinear":
        return partial(nn.Bilinear, draw(small), draw(small), draw(small), bias=bias)
    if kind in ("conv", "conv_t"):
        rank, groups = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2]))
        cls = {
            ("conv", 1): nn.Conv1d,
            ("conv", 2): nn.Conv2d,
            ("conv", 3): nn.Conv3d,
            ("conv_t", 1): nn.ConvTranspose1d,
            ("conv_t", 2): nn.ConvTranspose2d,
            ("conv_t", 3): nn.ConvTranspose3d,
        }[(kind, rank)]
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        return partial(cls, groups * draw(small), groups * draw(small), kernel, groups=groups, bias=bias)
    if kind == "embedding":
        return partial(nn.Embedding, draw(st.integers(1, 40)), draw(small))
    if kind == "bag":
        return partial(nn.EmbeddingBag, draw(st.integers(1, 40)), draw(small))
    if kind == "norm":
        cls = draw(
            st.sampled_from(
                [
                    nn.BatchNorm1d,
                    nn.BatchNorm2d,
                    nn.BatchNorm3d,
                    nn.InstanceNorm1d,
                    nn.InstanceNorm2d,
                    nn.InstanceNorm3d,
                ]
            )
        )
        return partial(cls, draw(small), affine=draw(flag), track_running_stats=draw(flag))
    if kind == "layernorm":
        shape = tuple(draw(small) for _ in range(draw(st.integers(1, 2))))
        return partial(nn.LayerNorm, shape, elementwise_affine=draw(flag), bias=bias)
    if kind == "groupnorm":
        groups = draw(small)
        return partial(nn.GroupNorm, groups, groups * draw(small), affine=draw(flag))
    return partial(nn.PReLU, draw(st.sampled_from([1, 3, 8])))


@SETTINGS
@given(modules())
def test_module_formula_equals_real_count(factory) -> None:
    explained(factory())


@SETTINGS
@given(
    kind=st.sampled_from([nn.RNN, nn.LSTM, nn.GRU]),
    inputs=small,
    hidden=small,
    layers=st.integers(1, 3),
    bidirectional=flag,
    bias=flag,
    proj=st.integers(0, 3),
)
def test_recurrent_formula(kind, inputs, hidden, layers, bidirectional, bias, proj) -> None:
    kwargs = {"proj_size": proj} if kind is nn.LSTM and proj < hidden else {}
    module = kind(inputs, hidden, num_layers=layers, bidirectional=bidirectional, bias=bias, **kwargs)
    explanation = explained(module)
    assert "b_ih and b_hh" in explanation.text or not bias


@SETTINGS
@given(heads=st.integers(1, 3), per_head=small, bias=flag, bias_kv=flag, kdim=st.one_of(st.none(), small))
def test_multihead_attention_formula(heads, per_head, bias, bias_kv, kdim) -> None:
    module = nn.MultiheadAttention(
        heads * per_head, heads, bias=bias, add_bias_kv=bias_kv, kdim=kdim, vdim=kdim
    )
    explained(module)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_explained_without_generic(name: str) -> None:
    explanations = explain_layers(paramscope.inspect(ZOO[name]()))
    assert explanations
    assert [e.problem for e in explanations if e.problem] == []
    assert [e.type for e in explanations if e.formula.generic] == []


def test_lstm_formula_words() -> None:
    (explanation,) = explain_layers(paramscope.inspect(nn.LSTM(501, 40)))
    assert explanation.formula.symbolic == "gates · hidden · (input_size + hidden + 2)"
    assert explanation.formula.expression == "4 × 40 × (501 + 40 + 2)"
    assert explanation.formula.value == 86_880  # torch keeps two bias vectors: 160 more than Keras


def test_buffers_answered_as_keras_non_trainable() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model[0].requires_grad_(False)
    answer = paramscope.explain(model).answer
    assert any(line.startswith("Buffers: 3 tensors (9 values") for line in answer)
    assert any(line.startswith("Frozen: 2 tensors (112 params)") for line in answer)


def test_lazy_layer_not_built_is_said_not_a_bug() -> None:
    import torch

    """LazyLinear before its first input: 'not built yet', never 'paramscope bug', exit 0."""
    model = torch.nn.Sequential(torch.nn.LazyLinear(3), torch.nn.Linear(3, 2))
    lazy = paramscope.explain(model).layers[0]
    assert lazy.problem is None and "Not built yet" in lazy.text and lazy.params == 0
    model(torch.randn(2, 5))
    built = paramscope.explain(model).layers[0]
    assert built.problem is None and built.formula.value == 18 == sum(
        p.numel() for p in model[0].parameters()
    )
