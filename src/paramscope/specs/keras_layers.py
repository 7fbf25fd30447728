"""Keras 3 layer formulas, keyed by class name. Each mirrors the layer's ``build()``.

Read against keras/src/layers/*: the variable names, their order and their shapes are the
ones Keras creates; formulas say the same thing in words and numbers.
"""

from __future__ import annotations

import math
import re

from paramscope.specs.expr import Const, Expr, Sym, product, times, total
from paramscope.specs.spec import ANY_NAME, KERAS, KERAS2, LayerSpec, VarSpec, input_shape, register


def _channels(config: dict, shape: tuple) -> int:
    return shape[1] if config.get("data_format") == "channels_first" else shape[-1]


def _tuple(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def _bias(config: dict, key: str = "use_bias") -> bool:
    return bool(config.get(key, True))


@register(KERAS, "Dense")
def dense(config: dict, build: dict) -> LayerSpec:
    inputs, units = Sym("inputs", input_shape(build)[-1]), Sym("units", config["units"])
    variables = [VarSpec("kernel", (inputs.value, units.value))]
    formula: Expr = inputs * units
    why = "one weight from every input to every unit"
    if _bias(config):
        variables.append(VarSpec("bias", (units.value,)))
        formula = (inputs + 1) * units
        why += ", plus one bias per unit"
    rank = config.get("lora_rank")
    if rank:
        r = Sym("rank", rank)
        variables += [
            VarSpec("lora_kernel_a", (inputs.value, r.value)),
            VarSpec("lora_kernel_b", (r.value, units.value)),
        ]
        formula = formula + r * (inputs + units)
        why += f"; LoRA adds two rank-{rank} factors (inputs × rank and rank × units) and freezes the kernel"
    return LayerSpec(tuple(variables), formula, why + ".")


EINSUM_FORMS = (  # (pattern, whether the ellipsis is on the left), with `...` written as `0`
    (r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$", False),
    (r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$", True),
    (r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$", False),
)


def _split_einsum(equation: str) -> tuple[str, str, str, bool]:
    for pattern, left in EINSUM_FORMS:
        match = re.match(pattern, equation.replace("...", "0"))
        if match:
            return (*match.groups(), left)
    raise ValueError(f"unsupported einsum equation {equation!r}")


def einsum_shapes(
    equation: str, bias_axes: str | None, shape: tuple, output_shape
) -> tuple[tuple, tuple | None]:
    """Kernel and bias shapes of an EinsumDense, as Keras's `_analyze_einsum_string` derives them."""
    in_spec, w_spec, out_spec, left = _split_einsum(equation)
    elided = len(shape) - len(in_spec)
    out = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    out.insert(0, shape[0])
    if elided > 0 and left:
        for i in range(1, elided):
            out.insert(1, shape[i])
    elif elided > 0:
        out.extend(shape[len(shape) - elided :])
    if left:
        in_map = {d: i + elided - len(shape) for i, d in enumerate(in_spec)}
        out_map = {d: i + elided for i, d in enumerate(out_spec)}
    else:
        in_map = {d: i for i, d in enumerate(in_spec)}
        out_map = {d: i for i, d in enumerate(out_spec)}
    kernel = tuple(out[out_map[d]] if d in out_map else shape[in_map[d]] for d in w_spec)
    if not bias_axes:
        return kernel, None
    sizes = {d: out[i + (elided if left else 0)] for i, d in enumerate(out_spec)}
    first = min(out_spec.find(d) for d in bias_axes)
    bias = [sizes[d] if d in bias_axes else 1 for d in out_spec[first:]]
    if not left:
        bias += [1] * max(elided, 0)
    return kernel, tuple(bias)


@register(KERAS, "EinsumDense")
def einsum_dense(config: dict, build: dict) -> LayerSpec:
    kernel, bias = einsum_shapes(
        config["equation"], config.get("bias_axes"), input_shape(build), config["output_shape"]
    )
    variables = [VarSpec("kernel", kernel)]
    terms: list = [product([Sym(f"k{i}", d) for i, d in enumerate(kernel, 1)])]
    if bias is not None:
        variables.append(VarSpec("bias", bias))
        terms.append(product([Sym(f"b{i}", d) for i, d in enumerate(bias, 1)]))
    why = f"a kernel shaped by the equation {config['equation']!r} (k1…k{len(kernel)} are its axes)"
    if bias is not None:
        why += f", plus a bias over the output axes {config.get('bias_axes')!r}"
    return LayerSpec(tuple(variables), total(terms), why + ".")


@register(KERAS, "Conv1D", "Conv2D", "Conv3D")
def conv(config: dict, build: dict) -> LayerSpec:
    rank = len(config["kernel_size"]) if isinstance(config["kernel_size"], (list, tuple)) else 2
    size = _tuple(config["kernel_size"], rank)
    channels, filters, groups = (
        _channels(config, input_shape(build)),
        config["filters"],
        config.get("groups", 1),
    )
    k = product([Sym(f"k{i}" if rank > 1 else "k", d) for i, d in enumerate(size, 1)])
    c, f = Sym("channels", channels), Sym("filters", filters)
    per_filter_channels = Sym("channels/groups", channels // groups) if groups > 1 else c
    variables = [VarSpec("kernel", (*size, channels // groups, filters))]
    formula = k * per_filter_channels * f
    why = f"each of the {filters} filters is a {'×'.join(map(str, size))} window over "
    why += f"{channels // groups} input channels" + (
        f" (channels split into {groups} groups)" if groups > 1 else ""
    )
    if _bias(config):
        variables.append(VarSpec("bias", (filters,)))
        formula = formula + f
        why += ", plus one bias per filter"
    rank = config.get("lora_rank")
    if rank:
        r = Sym("rank", rank)
        variables += [
            VarSpec("lora_kernel_a", (*size, channels // groups, rank)),
            VarSpec("lora_kernel_b", (rank, filters)),
        ]
        formula = formula + r * (k * per_filter_channels + f)
        why += f"; LoRA adds two rank-{rank} factors and freezes the kernel"
    return LayerSpec(tuple(variables), formula, why + ".")


@register(KERAS, "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def conv_transpose(config: dict, build: dict) -> LayerSpec:
    size = tuple(config["kernel_size"])
    channels, filters = _channels(config, input_shape(build)), config["filters"]
    k = product([Sym(f"k{i}" if len(size) > 1 else "k", d) for i, d in enumerate(size, 1)])
    c, f = Sym("channels", channels), Sym("filters", filters)
    variables = [VarSpec("kernel", (*size, filters, channels))]
    formula = k * f * c
    why = f"a {'×'.join(map(str, size))} window from each of {channels} input channels to each of {filters} filters"
    if _bias(config):
        variables.append(VarSpec("bias", (filters,)))
        formula = formula + f
        why += ", plus one bias per filter"
    return LayerSpec(tuple(variables), formula, why + ".")


@register(KERAS2, "DepthwiseConv1D", "DepthwiseConv2D")
def depthwise_conv_keras2(config: dict, build: dict) -> LayerSpec:
    """tf.keras names the depthwise kernel `depthwise_kernel`; Keras 3 calls it `kernel`."""
    return depthwise_conv(config, build, kernel_name="depthwise_kernel")


@register(KERAS, "DepthwiseConv1D", "DepthwiseConv2D")
def depthwise_conv(config: dict, build: dict, kernel_name: str = "kernel") -> LayerSpec:
    size = tuple(config["kernel_size"])
    channels, multiplier = _channels(config, input_shape(build)), config.get("depth_multiplier", 1)
    k = product([Sym(f"k{i}" if len(size) > 1 else "k", d) for i, d in enumerate(size, 1)])
    c, m = Sym("channels", channels), Sym("depth_multiplier", multiplier)
    variables = [VarSpec(kernel_name, (*size, channels, multiplier))]
    formula = k * c * m
    why = (
        f"one {'×'.join(map(str, size))} window per input channel (× {multiplier}), no mixing across channels"
    )
    if _bias(config):
        variables.append(VarSpec("bias", (channels * multiplier,)))
        formula = formula + c * m
        why += ", plus one bias per output channel"
    return LayerSpec(tuple(variables), formula, why + ".")


@register(KERAS, "SeparableConv1D", "SeparableConv2D")
def separable_conv(config: dict, build: dict) -> LayerSpec:
    size = tuple(config["kernel_size"])
    channels, multiplier, filters = (
        _channels(config, input_shape(build)),
        config.get("depth_multiplier", 1),
        config["filters"],
    )
    k = product([Sym(f"k{i}" if len(size) > 1 else "k", d) for i, d in enumerate(size, 1)])
    c, m, f = Sym("channels", channels), Sym("depth_multiplier", multiplier), Sym("filters", filters)
    variables = [
        VarSpec("depthwise_kernel", (*size, channels, multiplier)),
        VarSpec("pointwise_kernel", (*(1,) * len(size), channels * multiplier, filters)),
    ]
    formula = k * c * m + c * m * f
    why = "a depthwise window per channel, then a 1×1 pointwise map to the filters"
    if _bias(config):
        variables.append(VarSpec("bias", (filters,)))
        formula = formula + f
        why += ", plus one bias per filter"
    return LayerSpec(tuple(variables), formula, why + ".")


@register(KERAS, "Embedding")
def embedding(config: dict, build: dict) -> LayerSpec:
    n, d = Sym("input_dim", config["input_dim"]), Sym("output_dim", config["output_dim"])
    variables = [VarSpec("embeddings", (n.value, d.value))]
    formula: Expr = n * d
    why = f"one {d.value}-dimensional vector for each of the {n.value} token ids"
    rank = config.get("lora_rank")
    if rank:
        r = Sym("rank", rank)
        variables += [
            VarSpec("lora_embeddings_a", (n.value, rank)),
            VarSpec("lora_embeddings_b", (rank, d.value)),
        ]
        formula = formula + r * (n + d)
        why += f"; LoRA adds two rank-{rank} factors and freezes the table"
    return LayerSpec(tuple(variables), formula, why + ".")


GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
GATE_WORDS = {
    1: "one dense map",
    4: "four gates (input, forget, cell, output)",
    3: "three gates (update, reset, candidate)",
}


def _recurrent(kind: str, config: dict, build: dict) -> LayerSpec:
    gates = GATES[kind]
    i, u = Sym("inputs", input_shape(build)[-1]), Sym("units", config["units"])
    variables = [
        VarSpec("kernel", (i.value, gates * u.value)),
        VarSpec("recurrent_kernel", (u.value, gates * u.value)),
    ]
    why = f"{GATE_WORDS[gates]}, each a dense map of the input and of the previous output"
    two_biases = kind == "GRU" and config.get("reset_after", True)
    if not _bias(config):
        formula = product([gates, i + u, u]) if gates > 1 else (i + u) * u
    elif two_biases:
        variables.append(VarSpec("bias", (2, gates * u.value)))
        formula = gates * (i + u + 2) * u
        why += "; reset_after keeps two bias rows (input and recurrent)"
    else:
        variables.append(VarSpec("bias", (gates * u.value,)))
        formula = product([gates, i + u + 1, u]) if gates > 1 else (i + u + 1) * u
        why += ", plus a bias"
    return LayerSpec(tuple(variables), formula, why + ".")


for _kind in GATES:
    register(KERAS, _kind, f"{_kind}Cell")(
        lambda config, build, _kind=_kind: _recurrent(_kind, config, build)
    )


def _inner(config: dict, build: dict, key: str = "layer") -> LayerSpec:
    """The spec of a wrapped layer (Bidirectional, TimeDistributed), from this registry."""
    inner = config[key]
    function = KERAS.get(inner["class_name"])
    if function is None:
        raise KeyError(f"no formula for {inner['class_name']}")
    return function(inner["config"], build)


@register(KERAS, "Bidirectional")
def bidirectional(config: dict, build: dict) -> LayerSpec:
    forward = _inner(config, build)
    backward = _inner(config, build, "backward_layer") if config.get("backward_layer") else forward
    formula = 2 * forward.formula if backward is forward else forward.formula + backward.formula
    return LayerSpec(
        forward.variables + backward.variables,
        formula,
        "two independent copies of the wrapped layer, one reading forwards and one backwards.",
    )


@register(KERAS, "TimeDistributed")
def time_distributed(config: dict, build: dict) -> LayerSpec:
    shape = input_shape(build)
    inner = _inner(config, {"input_shape": (shape[0], *shape[2:])})
    return LayerSpec(
        inner.variables, inner.formula, "the wrapped layer, shared across time steps: " + inner.why
    )


def _axes_size(config: dict, shape: tuple) -> int:
    axes = config.get("axis", -1)
    axes = axes if isinstance(axes, (list, tuple)) else [axes]
    size = 1
    for axis in axes:
        size *= shape[axis]
    return size


@register(KERAS, "BatchNormalization")
def batch_norm(config: dict, build: dict) -> LayerSpec:
    c = Sym("channels", _axes_size(config, input_shape(build)))
    variables, terms = [], []
    for name, flag in (("gamma", "scale"), ("beta", "center")):
        if config.get(flag, True):
            variables.append(VarSpec(name, (c.value,)))
            terms.append(c)
    variables += [
        VarSpec("moving_mean", (c.value,), state=True),
        VarSpec("moving_variance", (c.value,), state=True),
    ]
    formula = total([times(len(terms), c), 2 * c]) if terms else 2 * c
    return LayerSpec(
        tuple(variables),
        formula,
        "a learned scale (gamma) and shift (beta) per channel, plus a moving mean and variance "
        "per channel that training updates by averaging, not by gradients (state).",
    )


@register(KERAS, "LayerNormalization")
def layer_norm(config: dict, build: dict) -> LayerSpec:
    c = Sym("features", _axes_size(config, input_shape(build)))
    rms = config.get("rms_scaling", False)
    variables = []
    if config.get("scale", True) or rms:
        variables.append(VarSpec("gamma" if "scale" in config else "scale", (c.value,)))
    if config.get("center", True) and not rms:
        variables.append(VarSpec("beta", (c.value,)))
    formula = times(len(variables), c)
    return LayerSpec(
        tuple(variables), formula, "a learned scale and (unless rms_scaling) shift per normalised feature."
    )


@register(KERAS, "RMSNormalization")
def rms_norm(config: dict, build: dict) -> LayerSpec:
    c = Sym("features", _axes_size(config, input_shape(build)))
    return LayerSpec(
        (VarSpec("scale", (c.value,)),), c, "one learned scale per normalised feature, no shift."
    )


@register(KERAS, "GroupNormalization")
def group_norm(config: dict, build: dict) -> LayerSpec:
    c = Sym("channels", input_shape(build)[config.get("axis", -1)])
    variables = [
        VarSpec(n, (c.value,)) for n, f in (("gamma", "scale"), ("beta", "center")) if config.get(f, True)
    ]
    return LayerSpec(
        tuple(variables),
        times(len(variables), c),
        "a learned scale and shift per channel (groups share statistics, not weights).",
    )


@register(KERAS, "Normalization")
def normalization(config: dict, build: dict) -> LayerSpec:
    if config.get("mean") is not None:
        return LayerSpec((), Const(0), "mean and variance were given as constants: no variables.")
    shape = input_shape(build)
    axes = config.get("axis", -1)
    axes = [axes] if isinstance(axes, int) else list(axes or [])
    kept = tuple(shape[d] for d in sorted(a % len(shape) for a in axes))
    c = Sym("features", math.prod(kept))
    variables = (
        VarSpec("mean", kept, state=True),
        VarSpec("variance", kept, state=True),
        VarSpec("count", (), state=True),
    )
    return LayerSpec(
        variables,
        2 * c + 1,
        "the mean and variance of the data it was adapted to, and the sample count: all state, never trained.",
    )


@register(KERAS, "MultiHeadAttention")
def multi_head_attention(config: dict, build: dict) -> LayerSpec:
    shapes = build.get("shapes_dict", {})
    q_dim = shapes["query_shape"][-1]
    v_dim = shapes["value_shape"][-1]
    k_dim = (shapes.get("key_shape") or shapes["value_shape"])[-1]
    heads, key_dim = config["num_heads"], config["key_dim"]
    value_dim = config.get("value_dim") or key_dim
    out = config.get("output_shape") or q_dim
    out = tuple(out) if isinstance(out, (list, tuple)) else (out,)
    h, kd, vd = Sym("heads", heads), Sym("key_dim", key_dim), Sym("value_dim", value_dim)
    q, k, v = Sym("query_width", q_dim), Sym("key_width", k_dim), Sym("value_width", v_dim)
    o = product([Sym("output_width" if len(out) == 1 else f"out{i}", d) for i, d in enumerate(out, 1)])
    bias = _bias(config)
    projections = [(q_dim, key_dim, q, kd), (k_dim, key_dim, k, kd), (v_dim, value_dim, v, vd)]
    if config.get("use_gate"):
        projections.append((q_dim, value_dim, q, vd))
    variables, terms = [], []
    for width, depth, width_sym, depth_sym in projections:
        variables.append(VarSpec("kernel", (width, heads, depth)))
        if bias:
            variables.append(VarSpec("bias", (heads, depth)))
        terms.append((width_sym + 1) * h * depth_sym if bias else width_sym * h * depth_sym)
    variables.append(VarSpec("kernel", (heads, value_dim, *out)))
    if bias:
        variables.append(VarSpec("bias", out))
    terms.append((h * vd + 1) * o if bias else h * vd * o)
    why = "query, key and value projections into each head (heads × key_dim), then an output projection back"
    why += ", each with a bias" if bias else ""
    if config.get("use_gate"):
        why += "; use_gate adds a sigmoid gate projection of the query"
    return LayerSpec(tuple(variables), total(terms), why + ".")


@register(KERAS, "GroupedQueryAttention", "GroupQueryAttention")
def group_query_attention(config: dict, build: dict) -> LayerSpec:
    shapes = build.get("shapes_dict", {})
    q_dim = shapes["query_shape"][-1]
    v_dim = shapes["value_shape"][-1]
    k_dim = (shapes.get("key_shape") or shapes["value_shape"])[-1]
    qh, kvh, hd = config["num_query_heads"], config["num_key_value_heads"], config["head_dim"]
    QH, KVH, HD = Sym("query_heads", qh), Sym("kv_heads", kvh), Sym("head_dim", hd)
    q, k, v = Sym("query_width", q_dim), Sym("key_width", k_dim), Sym("value_width", v_dim)
    bias = _bias(config)
    b = 1 if bias else 0
    projections = [
        ((q_dim, qh, hd), (qh, hd), q, QH),
        ((k_dim, kvh, hd), (kvh, hd), k, KVH),
        ((v_dim, kvh, hd), (kvh, hd), v, KVH),
    ]
    if config.get("use_gate"):
        projections.append(((q_dim, qh, hd), (qh, hd), q, QH))
    variables, terms = [], []
    for kernel, bias_shape, width, heads in projections:
        variables.append(VarSpec("kernel", kernel))
        if bias:
            variables.append(VarSpec("bias", bias_shape))
        terms.append((width + b) * heads * HD if bias else width * heads * HD)
    variables.append(VarSpec("kernel", (qh, hd, q_dim)))
    if bias:
        variables.append(VarSpec("bias", (q_dim,)))
    terms.append((QH * HD + b) * q if bias else QH * HD * q)
    why = "query heads, fewer key/value heads shared between them, and an output projection back to the query width"
    if config.get("use_gate"):
        why += "; use_gate adds a sigmoid gate projection shaped like the query's"
    return LayerSpec(tuple(variables), total(terms), why + ".")


@register(KERAS, "PReLU")
def prelu(config: dict, build: dict) -> LayerSpec:
    shape = list(input_shape(build)[1:])
    for axis in config.get("shared_axes") or []:
        shape[axis - 1] = 1
    alpha = product([Sym(f"d{i}", d) for i, d in enumerate(shape, 1)])
    return LayerSpec(
        (VarSpec("alpha", tuple(shape)),),
        alpha,
        "one learned negative slope per input element (shared axes collapse to 1).",
    )


@register(KERAS, "LayerScale")
def layer_scale(config: dict, build: dict) -> LayerSpec:
    c = Sym("projection_dim", config["projection_dim"])
    return LayerSpec(
        (VarSpec(ANY_NAME, (c.value,)),), c, "one learned scale per channel on a residual branch (ConvNeXt)."
    )


__all__ = ["KERAS"]
