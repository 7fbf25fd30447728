"""PyTorch module formulas, keyed by class name. Each mirrors the module's ``__init__``.

The config is the module's public attributes (``in_features``, ``kernel_size``, ``bias`` as
a flag…), gathered by the torch source; torch modules create their tensors eagerly, so no
input shape is needed.
"""

from __future__ import annotations

from paramscope.specs.expr import Const, Expr, Sym, product, times, total
from paramscope.specs.spec import TORCH, LayerSpec, VarSpec, register


@register(TORCH, "Linear", "NonDynamicallyQuantizableLinear", "LazyLinear")
def linear(config: dict, build: dict) -> LayerSpec:
    i, o = Sym("in_features", config["in_features"]), Sym("out_features", config["out_features"])
    variables = [VarSpec("weight", (o.value, i.value))]
    formula: Expr = i * o
    if config["bias"]:
        variables.append(VarSpec("bias", (o.value,)))
        formula = (i + 1) * o
    return LayerSpec(
        tuple(variables),
        formula,
        "one weight from every input feature to every output feature"
        + (", plus one bias per output." if config["bias"] else "."),
    )


@register(TORCH, "Bilinear")
def bilinear(config: dict, build: dict) -> LayerSpec:
    a, b, o = (
        Sym("in1", config["in1_features"]),
        Sym("in2", config["in2_features"]),
        Sym("out", config["out_features"]),
    )
    variables = [VarSpec("weight", (o.value, a.value, b.value))]
    formula: Expr = o * a * b
    if config["bias"]:
        variables.append(VarSpec("bias", (o.value,)))
        formula = formula + o
    return LayerSpec(tuple(variables), formula, "a matrix between the two inputs for every output feature.")


def _window(size: tuple[int, ...]) -> Expr:
    return product([Sym(f"k{i}" if len(size) > 1 else "k", d) for i, d in enumerate(size, 1)])


@register(TORCH, "Conv1d", "Conv2d", "Conv3d")
def conv(config: dict, build: dict) -> LayerSpec:
    size, groups = tuple(config["kernel_size"]), config["groups"]
    cin, cout = config["in_channels"], config["out_channels"]
    i = Sym("in_channels/groups", cin // groups) if groups > 1 else Sym("in_channels", cin)
    o = Sym("out_channels", cout)
    variables = [VarSpec("weight", (cout, cin // groups, *size))]
    formula = o * i * _window(size)
    if config["bias"]:
        variables.append(VarSpec("bias", (cout,)))
        formula = formula + o
    return LayerSpec(
        tuple(variables),
        formula,
        f"each output channel is a {'×'.join(map(str, size))} window over "
        f"{cin // groups} input channels" + (", plus a bias." if config["bias"] else "."),
    )


@register(TORCH, "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
def conv_transpose(config: dict, build: dict) -> LayerSpec:
    size, groups = tuple(config["kernel_size"]), config["groups"]
    cin, cout = config["in_channels"], config["out_channels"]
    i = Sym("in_channels", cin)
    o = Sym("out_channels/groups", cout // groups) if groups > 1 else Sym("out_channels", cout)
    variables = [VarSpec("weight", (cin, cout // groups, *size))]
    formula = i * o * _window(size)
    if config["bias"]:
        variables.append(VarSpec("bias", (cout,)))
        formula = formula + Sym("out_channels", cout)
    return LayerSpec(
        tuple(variables), formula, "a window from every input channel to its group's output channels."
    )


@register(TORCH, "Embedding", "EmbeddingBag")
def embedding(config: dict, build: dict) -> LayerSpec:
    n, d = Sym("num_embeddings", config["num_embeddings"]), Sym("embedding_dim", config["embedding_dim"])
    return LayerSpec((VarSpec("weight", (n.value, d.value)),), n * d, "one vector for each token id.")


GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


@register(TORCH, "RNN", "LSTM", "GRU")
def recurrent(config: dict, build: dict) -> LayerSpec:
    gates = GATES[config["mode"].split("_")[0]]  # RNN_TANH, RNN_RELU, LSTM, GRU
    hidden, proj = config["hidden_size"], config.get("proj_size", 0) or 0
    layers, directions = config["num_layers"], 2 if config["bidirectional"] else 1
    out = proj or hidden
    g, h = Sym("gates", gates), Sym("hidden", hidden)
    variables, terms = [], []
    for layer in range(layers):
        width = config["input_size"] if layer == 0 else out * directions
        x = Sym("input_size" if layer == 0 else "layer_input", width)
        r = Sym("proj_size", proj) if proj else h
        for suffix in ("", "_reverse")[:directions]:
            variables += [
                VarSpec(f"weight_ih_l{layer}{suffix}", (gates * hidden, width)),
                VarSpec(f"weight_hh_l{layer}{suffix}", (gates * hidden, out)),
            ]
            if config["bias"]:
                variables += [
                    VarSpec(f"bias_ih_l{layer}{suffix}", (gates * hidden,)),
                    VarSpec(f"bias_hh_l{layer}{suffix}", (gates * hidden,)),
                ]
            if proj:
                variables.append(VarSpec(f"weight_hr_l{layer}{suffix}", (proj, hidden)))
        term = g * h * (x + r + 2) if config["bias"] else g * h * (x + r)
        if proj:
            term = term + r * h
        terms.append(directions * term if directions > 1 else term)
    why = f"{gates} gate(s) per layer, each a map of the input and the previous hidden state"
    why += ", with two bias vectors (b_ih and b_hh)" if config["bias"] else ""
    why += f"; {layers} layer(s)" + (", both directions" if directions > 1 else "")
    return LayerSpec(tuple(variables), total(terms), why + ".")


def _norm(config: dict, channels_key: str, stats: bool) -> LayerSpec:
    c = Sym("channels", config[channels_key])
    variables, terms = [], []
    if config.get("affine", True):
        variables += [VarSpec("weight", (c.value,)), VarSpec("bias", (c.value,))]
        terms.append(2 * c)
    if stats and config.get("track_running_stats", False):
        variables += [
            VarSpec("running_mean", (c.value,), True),
            VarSpec("running_var", (c.value,), True),
            VarSpec("num_batches_tracked", (), True),
        ]
        terms.append(2 * c + 1)
    why = "a learned scale and shift per channel" if config.get("affine", True) else "no learned weights"
    if stats and config.get("track_running_stats", False):
        why += "; running mean and variance and a batch counter are buffers (state)"
    return LayerSpec(tuple(variables), total(terms) if terms else Const(0), why + ".")


@register(TORCH, "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm")
def batch_norm(config: dict, build: dict) -> LayerSpec:
    return _norm(config, "num_features", stats=True)


@register(TORCH, "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
def instance_norm(config: dict, build: dict) -> LayerSpec:
    return _norm(config, "num_features", stats=True)


@register(TORCH, "GroupNorm")
def group_norm(config: dict, build: dict) -> LayerSpec:
    return _norm(config, "num_channels", stats=False)


@register(TORCH, "LayerNorm", "RMSNorm")
def layer_norm(config: dict, build: dict) -> LayerSpec:
    shape = tuple(config["normalized_shape"])
    n = product([Sym(f"d{i}" if len(shape) > 1 else "features", d) for i, d in enumerate(shape, 1)])
    variables = []
    if config.get("elementwise_affine", True):
        variables.append(VarSpec("weight", shape))
        if config.get("bias", True) and config.get("has_bias", True):
            variables.append(VarSpec("bias", shape))
    formula = times(len(variables), n)
    return LayerSpec(tuple(variables), formula, "a learned scale (and shift) per normalised element.")


@register(TORCH, "MultiheadAttention")
def multihead_attention(config: dict, build: dict) -> LayerSpec:
    e = config["embed_dim"]
    E = Sym("embed_dim", e)
    k, v = config.get("kdim") or e, config.get("vdim") or e
    variables = []
    if config.get("_qkv_same_embed_dim", True):
        variables.append(VarSpec("in_proj_weight", (3 * e, e)))
        projections: Expr = 3 * E * E
    else:
        K, V = Sym("kdim", k), Sym("vdim", v)
        variables += [
            VarSpec("q_proj_weight", (e, e)),
            VarSpec("k_proj_weight", (e, k)),
            VarSpec("v_proj_weight", (e, v)),
        ]
        projections = E * (E + K + V)
    terms = [projections]
    if config["has_in_proj_bias"]:
        variables.append(VarSpec("in_proj_bias", (3 * e,)))
        terms.append(3 * E)
    if config.get("has_bias_k"):
        variables += [VarSpec("bias_k", (1, 1, e)), VarSpec("bias_v", (1, 1, e))]
        terms.append(2 * E)
    variables.append(VarSpec("weight", (e, e)))
    if config["bias"]:
        variables.append(VarSpec("bias", (e,)))
        terms.append((E + 1) * E)
    else:
        terms.append(E * E)
    return LayerSpec(
        tuple(variables),
        total(terms),
        "packed query/key/value projections, then the output projection (out_proj).",
    )


@register(TORCH, "PReLU")
def prelu(config: dict, build: dict) -> LayerSpec:
    n = Sym("num_parameters", config["num_parameters"])
    return LayerSpec((VarSpec("weight", (n.value,)),), n, "one learned negative slope (or one per channel).")
