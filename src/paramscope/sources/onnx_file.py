"""ONNX models, read from the protobuf wire format without the onnx package or any tensor data.

The parameters are the initializers (dense and sparse) of the main graph and of every subgraph
(If/Loop/Scan bodies, in node attributes), path-prefixed by the node and attribute holding
them. Tensors held by Constant nodes (in graphs and functions) are listed apart, not counted as
parameters.

The file is walked by :mod:`paramscope.sources.protobuf` over a memory map: ``onnx.load``
would copy every tensor's ``raw_data`` into memory (a 2 GB model costs 2 GB) and trusts what
the file declares. Each message is decoded once into the typed records below, validated at
that boundary: names are printable and bounded, shapes are non-negative with a product below
2**63, and a tensor's declared size must equal what the file stores for it — the bytes of
``raw_data``, the values of the typed fields (``float_data``, ``int32_data``…) or, for
external data, a span inside a regular file next to the model. Field numbers are those of
onnx/onnx ``onnx/onnx.proto`` (checked against onnx 1.23.2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from paramscope.core.printable import visible
from paramscope.core.report import Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames
from paramscope.errors import InputError
from paramscope.sources.boundary import beside, name_of, require_regular, shape_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.protobuf import (
    FIXED32,
    FIXED64,
    VARINT,
    Field,
    ProtobufError,
    fields,
    map_file,
    signed64,
)

# TensorProto.DataType -> (our name, bits per element); STRING has no fixed size.
DATA_TYPES: dict[int, tuple[str, int | None]] = {
    1: ("float32", 32),
    2: ("uint8", 8),
    3: ("int8", 8),
    4: ("uint16", 16),
    5: ("int16", 16),
    6: ("int32", 32),
    7: ("int64", 64),
    8: ("string", None),
    9: ("bool", 8),
    10: ("float16", 16),
    11: ("float64", 64),
    12: ("uint32", 32),
    13: ("uint64", 64),
    14: ("complex64", 64),
    15: ("complex128", 128),
    16: ("bfloat16", 16),
    17: ("float8_e4m3fn", 8),
    18: ("float8_e4m3fnuz", 8),
    19: ("float8_e5m2", 8),
    20: ("float8_e5m2fnuz", 8),
    21: ("uint4", 4),
    22: ("int4", 4),
    23: ("float4_e2m1fn", 4),
    24: ("float8_e8m0fnu", 8),
    25: ("uint2", 2),
    26: ("int2", 2),
    27: ("float6_e2m3fn", 6),
    28: ("float6_e3m2fn", 6),
}
STRING = 8
EXTERNAL = 1  # TensorProto.DataLocation; DEFAULT = 0

# The typed data fields of a TensorProto: field -> (its name, the wire type of one value,
# {data type it may hold: (values, per elements)}); 4-bit types pack two elements in a value,
# 2-bit types four, complex numbers take two values.
_SMALL_INTS = {t: (1, 1) for t in (2, 3, 4, 5, 6, 9, 10, 16, 17, 18, 19, 20, 24, 27, 28)}
TYPED_FIELDS: dict[int, tuple[str, int, dict[int, tuple[int, int]]]] = {
    4: ("float_data", FIXED32, {1: (1, 1), 14: (2, 1)}),
    5: ("int32_data", VARINT, {**_SMALL_INTS, 21: (1, 2), 22: (1, 2), 23: (1, 2), 25: (1, 4), 26: (1, 4)}),
    6: ("string_data", None, {STRING: (1, 1)}),
    7: ("int64_data", VARINT, {7: (1, 1)}),
    10: ("double_data", FIXED64, {11: (1, 1), 15: (2, 1)}),
    11: ("uint64_data", VARINT, {12: (1, 1), 13: (1, 1)}),
}
HOLDERS = {data_type: number for number, (_, _, kinds) in TYPED_FIELDS.items() for data_type in kinds}
GRAPH_ENTRIES = "the ONNX graph"  # what node, attribute and value-name charges are reported as

# The typed records a file decodes into. Plain slotted dataclasses, not frozen ones (a frozen
# dataclass costs several times as much to build, and a model has up to a million tensors):
# treat them as read-only.


@dataclass(slots=True)
class ExternalData:
    location: str  # relative to the model's folder, checked not to leave it
    offset: int
    length: int | None


@dataclass(slots=True)
class Tensor:
    name: str
    dims: tuple[int, ...]
    data_type: int  # TensorProto.DataType
    dtype: str  # its name here: float32, int4…, dtype_<n> for a type we do not know
    nbytes: int | None  # checked against what the file stores; None for strings and unknown types
    external: ExternalData | None  # None: stored in the model file

    def described(self) -> str:
        """Its dtype and shape, for error messages."""
        return f"{self.dtype} {list(self.dims)!s:.60}"


@dataclass(slots=True)
class SparseTensor:
    values: Tensor  # the non-default values, shape [NNZ]
    indices: Tensor | None  # shape [NNZ, rank] or [NNZ]
    dims: tuple[int, ...]  # the dense shape


@dataclass(slots=True)
class Attribute:
    name: str
    tensor: Tensor | None  # t
    tensors: tuple[Tensor, ...]
    sparse_tensor: SparseTensor | None
    graph: Graph | None  # g
    graphs: tuple[Graph, ...]


@dataclass(slots=True)
class Node:
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: tuple[Attribute, ...]


@dataclass(slots=True)
class Graph:
    name: str
    nodes: tuple[Node, ...]
    initializers: tuple[Tensor, ...]
    sparse_initializers: tuple[SparseTensor, ...]


@dataclass(slots=True)
class Function:
    name: str
    nodes: tuple[Node, ...]


@dataclass(slots=True)
class Model:
    ir_version: int
    opsets: tuple[tuple[str, int], ...]  # (domain, version)
    graph: Graph | None
    functions: tuple[Function, ...]


def _nbytes(dims: tuple[int, ...], data_type: int) -> int | None:
    """Bytes of a tensor's data; None for strings and unknown data types."""
    bits = DATA_TYPES.get(data_type, ("", None))[1]
    return None if bits is None else (math.prod(dims) * bits + 7) // 8


def _name(field: Field, budget: ReadBudget, what: str) -> str:
    return name_of(field.text(budget, what), budget, what)


def _value_name(field: Field, budget: ReadBudget) -> str:
    budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
    return _name(field, budget, "a node input or output name")


def _single(current: object, field: Field) -> None:
    """Refuse a second occurrence of a singular message field (protobuf would merge the two;
    no writer produces that)."""
    if current is not None:
        raise ProtobufError(f"field {field.number} of {field.message} appears twice")


def decode_model(data: memoryview, budget: ReadBudget) -> Model:
    ir_version, opsets, graph, functions = 0, [], None, []
    for field in fields(data, budget, 1, "ModelProto"):
        match field.number:
            case 1:
                ir_version = field.int64()
            case 7:
                _single(graph, field)
                graph = _graph(field.chunk(), budget, 2)
            case 8:
                opsets.append(_opset(field.chunk(), budget, 2))
            case 25:
                functions.append(_function(field.chunk(), budget, 2))
    return Model(ir_version, tuple(opsets), graph, tuple(functions))


def _opset(data: memoryview, budget: ReadBudget, depth: int) -> tuple[str, int]:
    budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
    domain, version = "", 0
    for field in fields(data, budget, depth, "OperatorSetIdProto"):
        match field.number:
            case 1:
                domain = _name(field, budget, "an opset domain")
            case 2:
                version = field.int64()
    return domain, version


def _function(data: memoryview, budget: ReadBudget, depth: int) -> Function:
    name, nodes = "", []
    for field in fields(data, budget, depth, "FunctionProto"):
        match field.number:
            case 1:
                name = _name(field, budget, "a function name")
            case 7:
                nodes.append(_node(field.chunk(), budget, depth + 1))
    return Function(name, tuple(nodes))


def _graph(data: memoryview, budget: ReadBudget, depth: int) -> Graph:
    # Count the initializers first (skipping is cheap), so too many are refused before any is decoded.
    declared = sum(1 for field in fields(data, budget, depth, "GraphProto") if field.number in (5, 15))
    budget.check("tensors", budget.used("tensors") + declared, "the ONNX model")
    name, nodes, initializers, sparse = "", [], [], []
    for field in fields(data, budget, depth, "GraphProto"):
        match field.number:
            case 1:
                nodes.append(_node(field.chunk(), budget, depth + 1))
            case 2:
                name = _name(field, budget, "a graph name")
            case 5:
                initializers.append(_tensor(field.chunk(), budget, depth + 1))
            case 15:
                sparse.append(_sparse(field.chunk(), budget, depth + 1))
    return Graph(name, tuple(nodes), tuple(initializers), tuple(sparse))


def _node(data: memoryview, budget: ReadBudget, depth: int) -> Node:
    budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
    name = op_type = domain = ""
    inputs, outputs, attributes = [], [], []
    for field in fields(data, budget, depth, "NodeProto"):
        match field.number:
            case 1:
                inputs.append(_value_name(field, budget))
            case 2:
                outputs.append(_value_name(field, budget))
            case 3:
                name = _name(field, budget, "a node name")
            case 4:
                op_type = _name(field, budget, "an operator type")
            case 5:
                attributes.append(_attribute(field.chunk(), budget, depth + 1))
            case 7:
                domain = _name(field, budget, "an operator domain")
    return Node(name, op_type, domain, tuple(inputs), tuple(outputs), tuple(attributes))


def _attribute(data: memoryview, budget: ReadBudget, depth: int) -> Attribute:
    budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
    name, tensor, tensors, sparse, graph, graphs = "", None, [], None, None, []
    for field in fields(data, budget, depth, "AttributeProto"):
        match field.number:
            case 1:
                name = _name(field, budget, "an attribute name")
            case 5:
                _single(tensor, field)
                tensor = _tensor(field.chunk(), budget, depth + 1)
            case 6:
                _single(graph, field)
                graph = _graph(field.chunk(), budget, depth + 1)
            case 10:
                tensors.append(_tensor(field.chunk(), budget, depth + 1))
            case 11:
                graphs.append(_graph(field.chunk(), budget, depth + 1))
            case 22:
                _single(sparse, field)
                sparse = _sparse(field.chunk(), budget, depth + 1)
    return Attribute(name, tensor, tuple(tensors), sparse, graph, tuple(graphs))


def _sparse(data: memoryview, budget: ReadBudget, depth: int) -> SparseTensor:
    values, indices, dims = None, None, []
    for field in fields(data, budget, depth, "SparseTensorProto"):
        match field.number:
            case 1:
                _single(values, field)
                values = _tensor(field.chunk(), budget, depth + 1)
            case 2:
                _single(indices, field)
                indices = _tensor(field.chunk(), budget, depth + 1)
            case 3:
                _extend_dims(dims, field, budget)
    if values is None:
        raise InputError("a sparse tensor without values")
    label = f"sparse tensor {values.name!r:.80}"
    shape = shape_of(dims, budget, label)
    _check_sparse(label, values, indices, shape)
    return SparseTensor(values, indices, shape)


def _check_sparse(label: str, values: Tensor, indices: Tensor | None, shape: tuple[int, ...]) -> None:
    """Values are a list of NNZ, no more than the dense shape holds, each with an index."""
    nonzero = math.prod(values.dims)
    if len(values.dims) != 1 or nonzero > math.prod(shape):
        raise InputError(
            f"{label}: values of shape {list(values.dims)!s:.40} for a dense shape {list(shape)!s:.40}"
        )
    if indices is not None and (not indices.dims or indices.dims[0] != nonzero):
        raise InputError(f"{label}: indices of shape {list(indices.dims)!s:.40} for {nonzero:,} values")


def _extend_dims(dims: list[int], field: Field, budget: ReadBudget) -> None:
    """Append a packed or unpacked ``dims`` occurrence, refusing too many before storing them."""
    for value in field.varints():
        dims.append(signed64(value))
        budget.check("dims", len(dims), "a tensor's shape")


def _tensor(data: memoryview, budget: ReadBudget, depth: int) -> Tensor:
    budget.charge("tensors", 1, "the ONNX model")
    name, dims, data_type, location = "", [], 0, 0
    raw_bytes: int | None = None
    typed: dict[int, int] = {}  # typed data field -> values it holds
    entries: list[tuple[str, str]] = []
    for field in fields(data, budget, depth, "TensorProto"):
        match field.number:
            case 1:
                _extend_dims(dims, field, budget)
            case 2:
                data_type = field.int64()
            case 8:
                name = _name(field, budget, "a tensor name")
            case 9:
                raw_bytes = len(field.chunk())
            case 13:
                entries.append(_entry(field.chunk(), budget, depth + 1))
            case 14:
                location = field.uint()
            case 6:
                field.chunk()
                typed[6] = typed.get(6, 0) + 1
            case 4 | 5 | 7 | 10 | 11:
                typed[field.number] = typed.get(field.number, 0) + field.count(TYPED_FIELDS[field.number][1])
    label = f"tensor {name!r:.80}"
    if location not in (0, EXTERNAL):
        raise InputError(f"{label}: unknown data location {location}")
    shape = shape_of(dims, budget, label)
    dtype = DATA_TYPES[data_type][0] if data_type in DATA_TYPES else f"dtype_{data_type}"
    external = _external(entries, label) if location == EXTERNAL else None
    tensor = Tensor(name, shape, data_type, dtype, _nbytes(shape, data_type), external)
    if external is None:
        _check_stored(label, tensor, raw_bytes, typed)
    return tensor


def _entry(data: memoryview, budget: ReadBudget, depth: int) -> tuple[str, str]:
    """A StringStringEntryProto, as raw text: an external data location is a path, not a name."""
    budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
    key = value = ""
    for field in fields(data, budget, depth, "StringStringEntryProto"):
        match field.number:
            case 1:
                key = field.text(budget, "an external data key")
            case 2:
                value = field.text(budget, "an external data value")
    return key, value


def _check_stored(label: str, tensor: Tensor, raw_bytes: int | None, typed: dict[int, int]) -> None:
    """The data stored in the file must be exactly what the shape and data type need, so that a
    tensor declaring 10**18 elements over 4 bytes is refused. As onnx reads it, ``raw_data``
    wins over typed fields."""
    if raw_bytes is not None:
        if tensor.data_type == STRING:
            raise InputError(f"{label}: a string tensor with raw_data")
        _check_bytes(label, tensor, raw_bytes, "raw_data holds")
        return
    holder = HOLDERS.get(tensor.data_type)
    if holder is None:
        if math.prod(tensor.dims):
            raise InputError(
                f"{label}: {tensor.described()} has no raw_data, and its data type no typed field"
            )
        return
    field_name, _, kinds = TYPED_FIELDS[holder]
    values, per = kinds[tensor.data_type]
    needed, held = -(-math.prod(tensor.dims) * values // per), typed.get(holder, 0)
    if held != needed:
        raise InputError(
            f"{label}: {tensor.described()} needs {needed:,} values in {field_name}, it holds {held:,}"
        )


def _check_bytes(label: str, tensor: Tensor, stored: int, holds: str) -> None:
    """Known data types need exactly their bytes; for unknown ones, at least one bit an element."""
    if tensor.nbytes is None:
        if math.prod(tensor.dims) > 8 * stored:
            raise InputError(f"{label}: {tensor.described()} cannot fit in {stored:,} bytes")
    elif stored != tensor.nbytes:
        raise InputError(f"{label}: {tensor.described()} needs {tensor.nbytes:,} bytes, {holds} {stored:,}")


def _external(entries: list[tuple[str, str]], label: str) -> ExternalData:
    """Where external data lives, refused unless it is a relative path inside the model's folder."""
    values = dict(entries)
    location = values.get("location", "")
    parts = PurePosixPath(location.replace("\\", "/"))
    if "\x00" in location:
        raise InputError(f"{label}: an external data location with a NUL byte")
    if not location or parts.is_absolute() or ".." in parts.parts or location.startswith("~"):
        raise InputError(
            f"{label} points to external data {visible(location)!r:.80} outside the model's folder"
        )
    offset = _decimal(values.get("offset", "0"), label, "offset")
    length = _decimal(values["length"], label, "length") if "length" in values else None
    return ExternalData(location, offset, length)


def _decimal(text: str, label: str, key: str) -> int:
    """A non-negative integer stored as text, below 2**63."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InputError(f"{label}: external data {key} {visible(text)!r:.40} is not a byte count")
    return int(text)


def _check_external_files(folder: Path, tensors: list[Tensor], budget: ReadBudget) -> None:
    """Each external span must lie inside a regular file of the model's folder, and hold the
    tensor's bytes exactly where a length is given. The data itself is never read."""
    sizes: dict[str, int] = {}
    for tensor in tensors:
        budget.tick()
        external, label = tensor.external, f"tensor {tensor.name!r:.80}"
        shown = f"{visible(external.location)!r:.80}"
        if external.location not in sizes:
            location = beside(folder, external.location, f"{label}: external data")
            sizes[external.location] = _file_size(location, shown, label)
        size = sizes[external.location]
        available = max(size - external.offset, 0)
        if external.length is not None:
            if external.offset + external.length > size:
                raise InputError(f"{label}: its external data runs past the end of {shown}")
            _check_bytes(label, tensor, external.length, "its external data length is")
        elif tensor.nbytes is None:
            _check_bytes(label, tensor, available, "its external file holds")
        elif external.offset + tensor.nbytes > size:
            raise InputError(
                f"{label}: {tensor.described()} needs {tensor.nbytes:,} bytes, {shown} holds {available:,}"
            )


def _file_size(target: Path, shown: str, label: str) -> int:
    try:
        return require_regular(target)
    except InputError as exc:
        reason = str(exc).removeprefix(f"{target}: ")
        raise InputError(f"{label}: its external data file {shown}: {reason}") from None


def _graphs(graph: Graph, budget: ReadBudget, prefix: str = "") -> Iterator[tuple[str, Graph]]:
    """The graph and every subgraph nested in node attributes, each with its name prefix."""
    yield prefix, graph
    for node in graph.nodes:
        for attribute in node.attributes:
            label = f"{prefix}{node.name or node.op_type}.{attribute.name}"
            budget.check("name_chars", len(label), "a subgraph's name prefix")
            if attribute.graph is not None:
                yield from _graphs(attribute.graph, budget, label + ".")
            for i, sub in enumerate(attribute.graphs):
                yield from _graphs(sub, budget, f"{label}.{i}.")


def _prefixed(prefix: str, name: str, budget: ReadBudget) -> str:
    """A tensor's name under its subgraph prefix.

    The file stores a prefix once but we repeat it for every tensor of its subgraph, and the
    report's tree splits each name at its dots, building a path of up to its length for each
    part; so what the repetition costs is charged, the prefix's length times its parts. Real
    prefixes (``Loop.body.If.then_branch.``) cost a hundred bytes a tensor; a 4,000-character
    prefix of 2,000 parts over thousands of empty tensors is refused instead of built.
    """
    if prefix:
        budget.charge("header_bytes", len(prefix) * prefix.count("."), "the names of subgraph tensors")
    return prefix + name


def _unique_names(graph: Graph) -> None:
    """Initializer names are unique in a graph (onnx.checker refuses a second definition);
    a repeated one would otherwise pass as an alias of the first and go uncounted."""
    seen: set[str] = set()
    for name in [t.name for t in graph.initializers] + [s.values.name for s in graph.sparse_initializers]:
        if name in seen:
            raise InputError(f"initializer {name!r:.80} is defined twice in one graph")
        seen.add(name)


class _Listing:
    """What the report lists: parameters, Constant nodes, and the tensors stored outside."""

    def __init__(self) -> None:
        self.parameters: list[FlatTensor] = []
        self.constants: list[tuple[str, Node, Tensor]] = []  # (prefix, node, its value)
        self.external: list[Tensor] = []

    def graph(self, prefix: str, graph: Graph, budget: ReadBudget) -> None:
        """A graph's initializers (a sparse one counts its dense shape) and Constant nodes."""
        _unique_names(graph)
        for tensor in graph.initializers:
            name = _prefixed(prefix, tensor.name, budget)
            self.parameters.append(
                FlatTensor(name, tensor.dims, tensor.dtype, (prefix, tensor.name), nbytes=tensor.nbytes)
            )
            self.stored(tensor)
        for sparse in graph.sparse_initializers:
            values = sparse.values
            name, nbytes = _prefixed(prefix, values.name, budget), _nbytes(sparse.dims, values.data_type)
            self.parameters.append(
                FlatTensor(name, sparse.dims, values.dtype, (prefix, values.name), nbytes=nbytes)
            )
            self.stored(values)
            self.stored(sparse.indices)
        self.constant_nodes(prefix, graph.nodes)

    def constant_nodes(self, prefix: str, nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            if node.op_type != "Constant":
                continue
            for attribute in node.attributes:
                if attribute.name == "value" and attribute.tensor is not None:
                    self.constants.append((prefix, node, attribute.tensor))
                    self.stored(attribute.tensor)

    def stored(self, tensor: Tensor | None) -> None:
        if tensor is not None and tensor.external is not None:
            self.external.append(tensor)


def _listing(model: Model, budget: ReadBudget) -> _Listing:
    listing = _Listing()
    for prefix, graph in _graphs(model.graph, budget):
        budget.tick()
        listing.graph(prefix, graph, budget)
    for function in model.functions:
        listing.constant_nodes(f"{function.name}.", function.nodes)
    return listing


def read_onnx(path: Path, budget: ReadBudget) -> Report:
    try:
        model = decode_model(map_file(path), budget)
    except ProtobufError as exc:
        raise InputError(f"{path}: not a readable ONNX model ({exc})") from None
    except RecursionError:  # only when the depth limit is raised past Python's own
        raise BudgetExceeded("depth", budget.limits.depth, "the ONNX model") from None
    if model.graph is None:
        raise InputError(f"{path}: not an ONNX model (no graph)")
    listing = _listing(model, budget)
    _check_external_files(path.parent, listing.external, budget)
    if not listing.parameters and not listing.constants:
        raise InputError(f"{path}: an ONNX model without initializers or constants")
    warnings = []
    if listing.external:
        locations = sorted({visible(t.external.location) for t in listing.external})
        warnings.append(
            f"weights stored outside the file ({', '.join(locations[:3])}): counted from their "
            "declared shapes, not read."
        )
    report = flat_report(
        listing.parameters,
        Source(kind="onnx", framework_version=f"opset {_opset_text(model)}", path=str(path)),
        "ONNX",
        model.graph.name or path.name,
        warnings=warnings,
    )
    report.constants = _constants(listing.constants, budget)
    return report


def _opset_text(model: Model) -> str:
    return ",".join(str(version) for domain, version in model.opsets if domain in ("", "ai.onnx")) or "?"


def _constants(constants: list[tuple[str, Node, Tensor]], budget: ReadBudget) -> TensorGroup | None:
    """Constant nodes' tensors: listed apart from the parameters, never counted as them."""
    builder, names = TreeBuilder(), UniqueNames()
    tensors = [
        builder.tensor(
            object(),
            "constants",
            names(_prefixed(prefix, node.outputs[0] if node.outputs else node.name or "constant", budget)),
            value.dims,
            value.dtype,
            Role.STATE,
            nbytes=value.nbytes,
        )
        for prefix, node, value in constants
    ]
    return TensorGroup("constants", tensors) if tensors else None
