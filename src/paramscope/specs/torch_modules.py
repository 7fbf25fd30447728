"""PyTorch module formulas, keyed by class name. Each mirrors the module's ``__init__``.

The config is the module's public attributes (``in_features``, ``kernel_size``, ``bias`` as
a flag…), gathered by the torch source; torch modules create their tensors eagerly, so no
input shape is needed.
"""

from __future__ import annotations

from paramscope.core.report import Node, Tensor
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


@register(TORCH, "Conv1D")
def transformers_conv1d(config: dict, build: dict) -> LayerSpec:
    """transformers' ``Conv1D`` (GPT-2's projections): a Linear whose weight is stored transposed."""
    i, o = Sym("in_features", config["nx"]), Sym("out_features", config["nf"])
    variables = (VarSpec("weight", (i.value, o.value)), VarSpec("bias", (o.value,)))
    return LayerSpec(
        variables, (i + 1) * o, "a Linear stored as (inputs, outputs), plus one bias per output."
    )


# peft's LoRA layers (peft/tuners/lora/layer.py) reuse torch's class names — Linear, Embedding,
# Conv2d — so their formula has a key of its own; a node is one when it wraps a ``base_layer``
# beside ``lora_A`` modules (lora_layer_config). Other layers peft wraps so (MultiheadAttention,
# 4-bit Linear) get no formula: their parts are explained one by one.
LORA_LAYER = "peft LoRA layer"


def _adapter_names(node: Node, child: str) -> dict[str, Node | Tensor]:
    """The per-adapter entries of one of a LoRA layer's dicts (``lora_A`` holds modules,
    ``lora_embedding_A`` parameters), by adapter name."""
    holder = next((c for c in node.children if c.name == child), None)
    if holder is None:
        return {}
    return {**{c.name: c for c in holder.children}, **{t.name: t for t in holder.tensors}}


def _adapter(name: str, node: Node) -> dict | None:
    """One adapter's rank, lora_bias and DoRA flag, as peft's ``update_layer`` created them;
    None for a layout that is not LoRA's."""
    dora = name in _adapter_names(node, "lora_magnitude_vector")
    embedding = _adapter_names(node, "lora_embedding_A").get(name)
    if isinstance(embedding, Tensor):
        return {"r": embedding.shape[0], "lora_bias": False, "dora": dora}  # no lora_bias on embeddings
    down, up = _adapter_names(node, "lora_A").get(name), _adapter_names(node, "lora_B").get(name)
    if not isinstance(down, Node) or not isinstance(up, Node):
        return None
    down_config, up_config = down.layer_config()[0] or {}, up.layer_config()[0] or {}
    rank = down_config.get("out_features", down_config.get("out_channels"))
    return {"r": rank, "lora_bias": bool(up_config.get("bias")), "dora": dora}


def lora_layer_config(node: Node) -> dict | None:
    """A peft LoRA layer's formula config, as plain data: the layer it wraps (its class and
    config) and each adapter's rank, lora_bias and DoRA flag; None for any other node."""
    children = {child.name: child for child in node.children}
    if "base_layer" not in children or "lora_A" not in children:
        return None
    config = node.layer_config()[0]
    if config is None:
        return None
    names = [*_adapter_names(node, "lora_A"), *_adapter_names(node, "lora_embedding_A")]
    adapters = {name: _adapter(name, node) for name in names}
    if None in adapters.values():
        return None
    base = children["base_layer"]
    return {
        "layer": node.type,
        "in_features": config.get("in_features"),
        "out_features": config.get("out_features"),
        "base": {"type": base.type, "config": base.layer_config()[0]},
        "adapters": adapters,
    }


def _linear_pair(r: Sym, i: Sym, o: Sym, base: dict, name: str) -> tuple[list[VarSpec], Expr, tuple]:
    """lora_A ``Linear(in, r)`` and lora_B ``Linear(r, out)``; DoRA's magnitude per output."""
    return (
        [VarSpec("weight", (r.value, i.value)), VarSpec("weight", (o.value, r.value))],
        r * (i + o),
        (o.value,),
    )


def _embedding_pair(r: Sym, i: Sym, o: Sym, base: dict, name: str) -> tuple[list[VarSpec], Expr, tuple]:
    """``lora_embedding_A`` (r × num_embeddings) and ``_B`` (dim × r), parameters named after
    the adapter."""
    return [VarSpec(name, (r.value, i.value)), VarSpec(name, (o.value, r.value))], r * (i + o), (o.value,)


def _conv_pair(r: Sym, i: Sym, o: Sym, base: dict, name: str) -> tuple[list[VarSpec], Expr, tuple]:
    """lora_A: the base's convolution from its inputs to r channels; lora_B: a 1×1 one from r to
    its outputs, in the base's groups; DoRA's magnitude shaped (1, out, 1, 1)."""
    size, groups = tuple(base["kernel_size"]), base["groups"]
    ones = (1,) * len(size)
    per_group = Sym("r/groups", r.value // groups) if groups > 1 else r
    variables = [
        VarSpec("weight", (r.value, i.value, *size)),
        VarSpec("weight", (o.value, per_group.value, *ones)),
    ]
    return variables, r * i * _window(size) + o * per_group, (1, o.value, *ones)


# per peft layer class: its adapter pair, and what its in_features and out_features are called
LORA_PAIRS = {
    "Linear": (_linear_pair, ("in_features", "out_features")),
    "Embedding": (_embedding_pair, ("num_embeddings", "embedding_dim")),
    **dict.fromkeys(("Conv1d", "Conv2d", "Conv3d"), (_conv_pair, ("in_channels", "out_channels"))),
}


def _lora_terms(config: dict, name: str, adapter: dict) -> tuple[list[VarSpec], Expr]:
    """One adapter's tensors and count: its pair of matrices, lora_B's bias, DoRA's magnitude."""
    pair, (in_name, out_name) = LORA_PAIRS[config["layer"]]
    i, o = Sym(in_name, config["in_features"]), Sym(out_name, config["out_features"])
    r = Sym("r" if len(config["adapters"]) == 1 else f"r[{name}]", adapter["r"])
    variables, term, magnitude = pair(r, i, o, config["base"]["config"], name)
    if adapter["lora_bias"]:
        variables.append(VarSpec("bias", (o.value,)))
        term = term + o
    if adapter["dora"]:
        variables.append(VarSpec("weight", magnitude))
        term = term + o
    return variables, term


@register(TORCH, LORA_LAYER)
def lora_layer(config: dict, build: dict) -> LayerSpec:
    """The wrapped layer's own formula plus each adapter's (peft's LoraLayer.update_layer).
    A KeyError where there is none: a base without a formula, a layer LORA_PAIRS lacks."""
    adapters, base_type = config["adapters"], config["base"]["type"]
    if config["layer"] not in LORA_PAIRS:
        raise KeyError(f"no LoRA formula for a peft {config['layer']}")
    base = TORCH[base_type](config["base"]["config"], build)
    variables, terms = list(base.variables), [base.formula]
    for name, adapter in adapters.items():
        adapter_variables, term = _lora_terms(config, name, adapter)
        variables += adapter_variables
        terms.append(term)
    ranks = ", ".join(f"{name} r={adapter['r']}" for name, adapter in adapters.items())
    dora = any(adapter["dora"] for adapter in adapters.values())
    why = (
        f"the wrapped {base_type}'s own weights, plus for each adapter ({ranks}) lora_A (r × in) and "
        f"lora_B (out × r)" + (", and DoRA's magnitude, one per output" if dora else "") + "."
    )
    return LayerSpec(tuple(variables), total(terms), why)
