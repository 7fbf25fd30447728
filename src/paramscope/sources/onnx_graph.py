"""What each tensor an ONNX file stores is for — a weight, a quantized weight, its scale or zero
point, a running statistic, or plain data — decided by the operator inputs it reaches.

ONNX has no notion of a parameter, and exporters put weights in several places: initializers;
Constant nodes (converters and graph rewriters fold initializers into them: silero-vad's model
holds all its 545,282 values so); int8/uint8/int4 initializers behind DequantizeLinear,
QLinearConv/QLinearMatMul, MatMulInteger/ConvInteger or onnxruntime's contrib operators
(quantized weights, whose integer type says nothing of their role); and operators that generate
a weight when the model loads (RandomNormal, ConstantOfShape…), for which the file holds no
values. The operator schemas (onnx/defs and onnxruntime's contrib_defs) say which inputs are
weights: Conv's W and B, LSTM's W, R and B, QLinearConv's w, scales and zero points. Each such
input is traced back through operators that only move, re-type, cut, join or dequantize data
(Identity, Cast, Transpose, Reshape, Slice, Split, Concat, DequantizeLinear…) to the stored
tensors or generating operators behind it, and each stored tensor found takes the input's use.

Linear in the graph's size whatever its shape: every value name is defined once in one scoped
table (a subgraph sees the names of the graphs around it, and its own vanish when it ends);
each computed value is traced back at most once per kind of input, and each chain of
pass-through operators resolved once, iteratively, its answer remembered on every link — so a
million Identity nodes in a row cost a million steps, and a cycle of names (a node consuming
its own output) ends as an activation from nowhere; a node looks only at the inputs its schema
has; subgraphs are walked with an explicit stack, not by recursion.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from paramscope.errors import InputError
from paramscope.sources.budget import ReadBudget
from paramscope.sources.onnx_proto import (
    DATA_TYPES,
    Attribute,
    Graph,
    Model,
    Node,
    SparseTensor,
    Tensor,
    nbytes_of,
)


class Use(IntEnum):
    """What a stored tensor is for; where its uses differ, the larger wins."""

    GROUP_INDEX = 1  # MatMulNBits' g_idx: which quantization group each input row belongs to
    ZERO_POINT = 2
    SCALE = 3
    STATE = 4  # BatchNormalization's running mean and variance
    WEIGHT = 5


class Slot(Enum):
    """What an operator input expects."""

    WEIGHT = "weight"  # a float weight (or an 8-bit-or-smaller quantized one behind it)
    QUANTIZED = "quantized"  # a quantized operator's weight or bias: any integer type
    PACKED = "packed"  # several low-bit values per uint8 (MatMulNBits, GatherBlockQuantized)
    STATE = "state"
    SCALE = "scale"
    ZERO_POINT = "zero-point"
    GROUP_INDEX = "group-index"


W, Q, S, Z = Slot.WEIGHT, Slot.QUANTIZED, Slot.SCALE, Slot.ZERO_POINT
STANDARD, MICROSOFT = "", "com.microsoft"
_QLINEAR_BINARY = {1: S, 2: Z, 4: S, 5: Z, 6: S, 7: Z}  # QLinearMatMul/Add/Mul: a, b quantized
_QLINEAR_UNARY = {1: S, 2: Z, 3: S, 4: Z}  # QLinearSigmoid, QLinearAveragePool…
_NORMALIZATION = {1: W, 2: W}

# (domain, operator) -> {input index: what it expects}, from the operator schemas.
INPUTS: dict[tuple[str, str], dict[int, Slot]] = {
    **{(STANDARD, op): {1: W, 2: W} for op in ("Conv", "ConvTranspose")},
    (STANDARD, "Gemm"): {2: W},
    (STANDARD, "LSTM"): {1: W, 2: W, 3: W, 7: W},
    **{(STANDARD, op): {1: W, 2: W, 3: W} for op in ("GRU", "RNN")},
    (STANDARD, "BatchNormalization"): {1: W, 2: W, 3: Slot.STATE, 4: Slot.STATE},
    **{
        (STANDARD, op): _NORMALIZATION
        for op in ("LayerNormalization", "InstanceNormalization", "GroupNormalization")
    },
    **{(STANDARD, op): {1: W} for op in ("RMSNormalization", "SimplifiedLayerNormalization", "PRelu")},
    **{(domain, "DequantizeLinear"): {0: Q, 1: S, 2: Z} for domain in (STANDARD, MICROSOFT)},
    **{(domain, "QuantizeLinear"): {1: S, 2: Z} for domain in (STANDARD, MICROSOFT)},
    (STANDARD, "QLinearConv"): {1: S, 2: Z, 3: Q, 4: S, 5: Z, 6: S, 7: Z, 8: Q},
    (STANDARD, "QLinearMatMul"): _QLINEAR_BINARY,
    (STANDARD, "MatMulInteger"): {2: Z, 3: Z},
    (STANDARD, "ConvInteger"): {1: Q, 2: Z, 3: Z},
    **{(MICROSOFT, op): _QLINEAR_BINARY for op in ("QLinearAdd", "QLinearMul")},
    **{
        (MICROSOFT, op): _QLINEAR_UNARY
        for op in ("QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool", "QLinearGlobalAveragePool")
    },
    (MICROSOFT, "QGemm"): {1: S, 2: Z, 4: S, 5: Z, 6: Q, 7: S, 8: Z},
    (MICROSOFT, "DynamicQuantizeLSTM"): {1: Q, 2: Q, 3: W, 7: W, 8: S, 9: Z, 10: S, 11: Z},
    (MICROSOFT, "DynamicQuantizeMatMul"): {1: Q, 2: S, 3: Z, 4: W},
    (MICROSOFT, "MatMulIntegerToFloat"): {1: Q, 2: S, 3: S, 4: Z, 5: Z, 6: W},
    (MICROSOFT, "MatMulNBits"): {1: Slot.PACKED, 2: S, 3: Z, 4: Slot.GROUP_INDEX, 5: W},
    (MICROSOFT, "GatherBlockQuantized"): {0: Slot.PACKED, 2: S, 3: Z},
    (MICROSOFT, "QAttention"): {1: Q, 2: W, 3: S, 4: S, 6: Z, 7: Z},
    (MICROSOFT, "Attention"): {1: W, 2: W},
    (MICROSOFT, "SkipLayerNormalization"): {2: W, 3: W, 4: W},
    (MICROSOFT, "SkipSimplifiedLayerNormalization"): {2: W, 3: W},
    (MICROSOFT, "EmbedLayerNormalization"): {2: W, 3: W, 4: W, 5: W, 6: W},
    **{(MICROSOFT, op): {1: W} for op in ("FastGelu", "BiasGelu")},
    (MICROSOFT, "FusedConv"): {1: W, 2: W},
    (MICROSOFT, "FusedGemm"): {2: W},
}
# Operators with two inputs either of which may be the weight: it is the one whose values the
# file holds while the other is computed (both stored is constant folding left undone).
# Gather's data is an embedding table when its indices are computed.
PAIRS: dict[tuple[str, str], tuple[int, int, Slot]] = {
    **{(STANDARD, op): (0, 1, W) for op in ("MatMul", "Gemm", "Gather")},
    **{(MICROSOFT, op): (0, 1, W) for op in ("FusedMatMul", "FusedGemm")},
    (STANDARD, "MatMulInteger"): (0, 1, Q),
    **{(STANDARD, op): (0, 3, Q) for op in ("QLinearMatMul",)},
    **{(MICROSOFT, op): (0, 3, Q) for op in ("QLinearAdd", "QLinearMul", "QGemm")},
}
# Operators whose output 0 is their input 0 moved, re-typed, cut or (de)quantized, and Split,
# each of whose outputs is a piece of its input 0: a weight reaches a weight input through them.
# Concat joins pieces of weights too (torch's exporter reorders LSTM gates with Slice and Concat):
# a weight input is traced back through all its inputs.
PASS_THROUGH = frozenset(
    {(STANDARD, op) for op in ("Identity", "Cast", "CastLike", "Transpose", "Reshape", "Squeeze")}
    | {(STANDARD, op) for op in ("Unsqueeze", "Flatten", "Slice", "DequantizeLinear", "QuantizeLinear")}
    | {(MICROSOFT, op) for op in ("DequantizeLinear", "QuantizeLinear")}
)
SPLIT, CONCAT, ADD, MUL = ((STANDARD, op) for op in ("Split", "Concat", "Add", "Mul"))
GENERATORS = frozenset(
    (STANDARD, op)
    for op in (
        "ConstantOfShape",
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "EyeLike",
    )
)
LINEAR = frozenset({(STANDARD, op) for op in ("MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum")})
INTEGER_LINEAR = frozenset({(STANDARD, "MatMulInteger"), (STANDARD, "ConvInteger")})
FLOATS = frozenset({"float16", "float32", "float64", "bfloat16"})
UNQUANTIZABLE = frozenset({"bool", "string", "complex64", "complex128"})
# What a Constant node's value attribute holds when it is not a tensor: (data type, values from).
CONSTANT_LISTS = {
    "value_float": (1, None),
    "value_floats": (1, "float_count"),
    "value_int": (7, None),
    "value_ints": (7, "int_count"),
    "value_string": (8, None),
    "value_strings": (8, "string_count"),
}


BITS = {name: bits for name, bits in DATA_TYPES.values()}
SLOT_BITS = {slot: 1 << i for i, slot in enumerate(Slot)}
_UNRESOLVED, _VISITING, _NOWHERE, _MISSING = object(), object(), object(), object()


@dataclass(slots=True, eq=False)
class Stored:
    """A tensor whose values the file holds: an initializer or a Constant node's value."""

    name: str  # the initializer's name, or the Constant's output
    prefix: str  # the subgraph holding it: "" for the main graph, "Loop.body." …
    dims: tuple[int, ...]
    dtype: str
    nbytes: int | None
    records: tuple[Tensor, ...]  # the file's records holding its data (for external data checks)
    values: tuple[int, ...] | None = None  # a small int64 tensor's values (a shape)
    constant: Node | None = None  # the Constant node holding it
    use: Use | None = None
    quantized: str | None = None  # the storage scheme of a quantized weight: int8, uint8, int4…
    params: int | None = None  # logical parameters where the shape does not say (packed bits)


@dataclass(slots=True, eq=False)
class Produced:
    """Output ``index`` of a node other than a Constant: computed when the model runs."""

    node: Node
    index: int
    terminal: object = _UNRESOLVED  # what it comes from through pass-through operators, once known
    traced: int = 0  # bits of the slots a weight input was traced back through it for


@dataclass(slots=True)
class Generated:
    """An operator that feeds a weight input with values it makes when the model loads."""

    name: str  # its output
    op_type: str
    shape: tuple[int, ...] | None  # None where the file does not fix it


@dataclass
class Analysis:
    stored: list[Stored] = field(default_factory=list)  # in file order, each graph before its subgraphs
    generated: list[Generated] = field(default_factory=list)


Origin = Stored | Produced | None  # where a value comes from; None: a graph input, or nowhere


def analyse(model: Model, budget: ReadBudget) -> Analysis:
    """Every stored tensor of the model's graphs and functions, with what it is for."""
    walk = _Walk(budget)
    walk.scopes(model.graph, "")
    for function in model.functions:  # a function sees only its own names
        walk.scopes(Graph(function.name, function.nodes, (), ()), f"{function.name}.")
    return walk.analysis


class _Walk:
    """One pass over the scopes, with the name table of the scope being analysed."""

    def __init__(self, budget: ReadBudget) -> None:
        self.budget = budget
        self.analysis = Analysis()
        self.visible: dict[str, Stored | Produced] = {}
        self.generators: set[int] = set()  # id() of the generating nodes already listed

    def scopes(self, top: Graph, prefix: str) -> None:
        """A graph and its subgraphs, depth first: each defines its names, analyses its nodes
        (seeing the names of the graphs around it), then forgets its names."""
        stack: list[tuple[Graph, str] | list[tuple[str, object]]] = [(top, prefix)]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                self._forget(item)
                continue
            graph, prefix = item
            stack.append(self._define(graph, prefix))
            for node in graph.nodes:
                self.budget.tick()
                self._node(node)
            stack.extend(reversed(list(_subgraphs(graph, prefix, self.budget))))

    def _define(self, graph: Graph, prefix: str) -> list[tuple[str, object]]:
        """Enter a graph's names, initializers last (a name that is also a node's output, which
        onnx.checker refuses, reads as the stored tensor); returns what each name shadowed, to
        restore when the graph ends."""
        undo: list[tuple[str, object]] = []
        constants = []
        for node in graph.nodes:
            constant = _constant(node, prefix)
            if constant is not None:
                constants.append(constant)
            for index, name in enumerate(node.outputs):
                computed = constant is None or index > 0
                self._enter(name, Produced(node, index) if computed else constant, undo)
        _unique_names(graph)
        initializers = [_dense(t, prefix) for t in graph.initializers]
        initializers += [_sparse(s, prefix) for s in graph.sparse_initializers]
        for stored in initializers:
            self._enter(stored.name, stored, undo)
        self.analysis.stored += initializers + constants
        return undo

    def _enter(self, name: str, definition: Stored | Produced, undo: list[tuple[str, object]]) -> None:
        if name:
            undo.append((name, self.visible.get(name, _MISSING)))
            self.visible[name] = definition

    def _forget(self, undo: list[tuple[str, object]]) -> None:
        for name, previous in reversed(undo):
            if previous is _MISSING:
                del self.visible[name]
            else:
                self.visible[name] = previous

    def _node(self, node: Node) -> None:
        """Give each stored tensor reaching one of this node's weight inputs that input's use."""
        key = _key(node)
        for index, slot in INPUTS.get(key, {}).items():
            if index < len(node.inputs):
                self._reach(node.inputs[index], slot, node)
        pair = PAIRS.get(key)
        if pair is not None:
            self._pair(node, *pair)
        if key == ADD:
            self._bias(node)
        elif key == MUL:
            self._dequantizing_scales(node)

    def _reach(self, name: str, slot: Slot, node: Node) -> None:
        """Give the input's use to every stored tensor whose values reach it, traced back through
        moves and joins; each computed value is traced once per kind of input, so the work stays
        linear however the graph shares its values."""
        bit, names = SLOT_BITS[slot], [name]
        while names:
            definition = self.visible.get(names.pop())
            if isinstance(definition, Stored):
                _mark(definition, slot, node)
            elif isinstance(definition, Produced) and not definition.traced & bit:
                definition.traced |= bit
                if _generates(definition) and slot in (Slot.WEIGHT, Slot.QUANTIZED, Slot.PACKED):
                    self._generated(definition.node)
                names += _traced_from(definition)

    def _sources(self, node: Node, first: int, second: int) -> tuple[Origin, Origin] | None:
        if max(first, second) >= len(node.inputs):
            return None
        return self.terminal(node.inputs[first]), self.terminal(node.inputs[second])

    def _pair(self, node: Node, first: int, second: int, slot: Slot) -> None:
        """Either input may be the weight: the one held (or generated) while the other is computed."""
        sources = self._sources(node, first, second)
        if sources is not None and _held(sources[0]) != _held(sources[1]):
            self._reach(node.inputs[first if _held(sources[0]) else second], slot, node)

    def _bias(self, node: Node) -> None:
        """Add(linear output, held tensor): the bias torch and converters split from a MatMul."""
        sources = self._sources(node, 0, 1)
        for this, other in ((0, 1), (1, 0)) if sources is not None else ():
            if self._linear(sources[this]) and _held(sources[other]):
                self._reach(node.inputs[other], Slot.WEIGHT, node)

    def _linear(self, source: Origin) -> bool:
        """A MatMul/Gemm/Conv output, or the Mul that rescales a MatMulInteger's or ConvInteger's
        (onnxruntime's dynamic quantization writes Mul(Cast(MatMulInteger(…)), scale))."""
        if not isinstance(source, Produced):
            return False
        key, factors = _key(source.node), source.node.inputs[:2]
        return key in LINEAR or (key == MUL and any(_integer_linear(self.terminal(n)) for n in factors))

    def _dequantizing_scales(self, node: Node) -> None:
        """Mul(Cast(MatMulInteger(…)), a_scale × w_scale): the held factors are scales."""
        sources = self._sources(node, 0, 1)
        for this, other in ((0, 1), (1, 0)) if sources is not None else ():
            if not _integer_linear(sources[this]):
                continue
            factor = sources[other]
            product = isinstance(factor, Produced) and _key(factor.node) == MUL
            for name in factor.node.inputs[:2] if product else (node.inputs[other],):
                self._reach(name, Slot.SCALE, node)

    def terminal(self, name: str) -> Origin:
        """What a value comes from through pass-through operators: a stored tensor, the node
        that computes it, or None (a graph input, an undefined name, a cycle of names). Each
        link of a chain is resolved once and remembers the answer."""
        current = self.visible.get(name)
        chain: list[Produced] = []
        while isinstance(current, Produced):
            state = current.terminal
            if state is _VISITING:  # a cycle: no value ever reaches it
                current = _NOWHERE
            elif state is not _UNRESOLVED:
                current = state
            elif not _passes_through(current.node, current.index):
                current.terminal = current
            else:
                current.terminal = _VISITING
                chain.append(current)
                current = self.visible.get(current.node.inputs[0], _NOWHERE)
                continue
            break
        for link in chain:
            link.terminal = current
        return None if current is _NOWHERE else current

    def _generated(self, node: Node) -> None:
        if id(node) in self.generators:
            return
        self.generators.add(id(node))
        source = self.terminal(node.inputs[0]) if node.inputs else None
        name = node.outputs[0] if node.outputs else node.name or node.op_type
        self.analysis.generated.append(Generated(name, node.op_type, _generated_shape(node, source)))


def _key(node: Node) -> tuple[str, str]:
    return (STANDARD if node.domain == "ai.onnx" else node.domain, node.op_type)


def _passes_through(node: Node, index: int) -> bool:
    key = _key(node)
    return bool(node.inputs) and ((index == 0 and key in PASS_THROUGH) or key == SPLIT)


def _traced_from(produced: Produced) -> tuple[str, ...]:
    """The inputs a computed value's data comes from, where it only moves or joins them."""
    if _passes_through(produced.node, produced.index):
        return produced.node.inputs[:1]
    return produced.node.inputs if _key(produced.node) == CONCAT else ()


def _generates(source: Origin) -> bool:
    return isinstance(source, Produced) and _key(source.node) in GENERATORS


def _held(source: Origin) -> bool:
    """Whether a value is fixed when the model loads: stored in the file, or generated."""
    return isinstance(source, Stored) or _generates(source)


def _integer_linear(source: Origin) -> bool:
    return isinstance(source, Produced) and _key(source.node) in INTEGER_LINEAR


def _mark(stored: Stored, slot: Slot, node: Node) -> None:
    """Record what an input says of a stored tensor, where it says more than before."""
    judged = _judged(stored, slot, node)
    if judged is not None and (stored.use is None or judged[0] > stored.use):
        stored.use, stored.quantized, stored.params = judged


def _judged(stored: Stored, slot: Slot, node: Node) -> tuple[Use, str | None, int | None] | None:
    """(use, quantized scheme, logical params) of a stored tensor at an input; None when its
    type does not fit the input (an int64 table at Gather's data is a lookup, not a weight)."""
    dtype = stored.dtype
    floating = dtype in FLOATS
    if slot is Slot.WEIGHT and (floating or _low_bit(dtype)):
        return Use.WEIGHT, None if floating else dtype, None
    if slot is Slot.QUANTIZED and dtype in BITS and dtype not in UNQUANTIZABLE:
        return Use.WEIGHT, None if floating else dtype, None
    if slot is Slot.PACKED and dtype == "uint8":
        return _packed(stored, node)
    if slot is Slot.PACKED and _low_bit(dtype):
        return Use.WEIGHT, dtype, None
    if slot is Slot.STATE and floating:
        return Use.STATE, None, None
    if slot in (Slot.SCALE, Slot.ZERO_POINT, Slot.GROUP_INDEX):
        return Use[slot.name], None, None
    return None


def _low_bit(dtype: str) -> bool:
    """An integer or float type of 8 bits or fewer: a quantized weight's storage."""
    return (BITS.get(dtype) or 64) <= 8 and dtype != "bool"


def _packed(stored: Stored, node: Node) -> tuple[Use, str, int | None]:
    """MatMulNBits' B / GatherBlockQuantized's data: ``bits``-bit values packed in uint8 blocks
    (onnxruntime contrib_defs). MatMulNBits says its logical K × N, which the blocks may pad."""
    numbers = {attribute.name: attribute.i for attribute in node.attributes if attribute.i is not None}
    bits = numbers.get("bits", 4)
    if not 1 <= bits <= 8:
        return Use.WEIGHT, "uint8", None
    held = math.prod(stored.dims) * 8 // bits
    k, n = numbers.get("K", 0), numbers.get("N", 0)
    logical = k * n if node.op_type == "MatMulNBits" and k > 0 and n > 0 and k * n <= held else held
    return Use.WEIGHT, f"blockwise-{bits}bit", logical


def _generated_shape(node: Node, source: Origin) -> tuple[int, ...] | None:
    """The shape a generating operator gives its output, where the file fixes it: an attribute
    (RandomNormal), the stored tensor a *Like copies, ConstantOfShape's stored shape."""
    if node.op_type in ("RandomNormal", "RandomUniform"):
        shape = next((a.ints for a in node.attributes if a.name == "shape"), None)
    elif node.op_type == "ConstantOfShape":
        shape = source.values if isinstance(source, Stored) else None
    else:
        shape = source.dims if isinstance(source, Stored) else None
    return tuple(shape) if shape is not None and all(d >= 0 for d in shape) else None


def _subgraphs(graph: Graph, prefix: str, budget: ReadBudget) -> Iterator[tuple[Graph, str]]:
    """The graphs nested in a graph's node attributes, each with its name prefix."""
    for node in graph.nodes:
        for attribute in node.attributes:
            label = f"{prefix}{node.name or node.op_type}.{attribute.name}"
            budget.check("name_chars", len(label), "a subgraph's name prefix")
            if attribute.graph is not None:
                yield attribute.graph, label + "."
            for i, sub in enumerate(attribute.graphs):
                yield sub, f"{label}.{i}."


def _unique_names(graph: Graph) -> None:
    """Initializer names are unique in a graph (onnx.checker refuses a second definition);
    a repeated one would otherwise pass as an alias of the first and go uncounted."""
    seen: set[str] = set()
    for name in [t.name for t in graph.initializers] + [s.values.name for s in graph.sparse_initializers]:
        if name in seen:
            raise InputError(f"initializer {name!r:.80} is defined twice in one graph")
        seen.add(name)


def _dense(tensor: Tensor, prefix: str) -> Stored:
    return Stored(tensor.name, prefix, tensor.dims, tensor.dtype, tensor.nbytes, (tensor,), tensor.values)


def _sparse(sparse: SparseTensor, prefix: str) -> Stored:
    """A sparse tensor counts its dense shape."""
    values = sparse.values
    records = (values,) if sparse.indices is None else (values, sparse.indices)
    return Stored(
        values.name, prefix, sparse.dims, values.dtype, nbytes_of(sparse.dims, values.data_type), records
    )


def _constant(node: Node, prefix: str) -> Stored | None:
    """A Constant node's value, whichever attribute holds it; None for other nodes."""
    if _key(node) != (STANDARD, "Constant"):
        return None
    name = node.outputs[0] if node.outputs else node.name or "constant"
    for attribute in node.attributes:
        if attribute.name == "value" and attribute.tensor is not None:
            stored = _dense(attribute.tensor, prefix)
        elif attribute.name == "sparse_value" and attribute.sparse_tensor is not None:
            stored = _sparse(attribute.sparse_tensor, prefix)
        elif attribute.name in CONSTANT_LISTS:
            stored = _listed(attribute, prefix)
        else:
            continue
        stored.name, stored.constant = name, node
        return stored
    return None


def _listed(attribute: Attribute, prefix: str) -> Stored:
    """value_float(s), value_int(s), value_string(s): a scalar or a list of the attribute's values."""
    data_type, count = CONSTANT_LISTS[attribute.name]
    dims = () if count is None else (getattr(attribute, count),)
    values = attribute.ints if attribute.name == "value_ints" else None
    if attribute.name == "value_int":
        values = (attribute.i,) if attribute.i is not None else None
    return Stored("", prefix, dims, DATA_TYPES[data_type][0], nbytes_of(dims, data_type), (), values)
