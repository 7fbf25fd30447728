"""ONNX models decoded from the protobuf wire format into typed records, without the onnx
package and without reading tensor data.

The file is walked by :mod:`paramscope.sources.protobuf` over a memory map: ``onnx.load``
would copy every tensor's ``raw_data`` into memory (a 2 GB model costs 2 GB) and trusts what
the file declares. Each message is decoded once into the typed records below, validated at
that boundary: names are printable and bounded, shapes are non-negative with a product below
2**63, and a tensor's declared size must equal what the file stores for it — the bytes of
``raw_data``, the values of the typed fields (``float_data``, ``int32_data``…) or, for
external data, a span inside a regular file next to the model (checked by the reader). The
only values decoded are those of small int64 tensors and int attributes: shapes, which say
how large a weight generated at load time would be. Field numbers are those of onnx/onnx
``onnx/onnx.proto`` (checked against onnx 1.23.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePosixPath

from paramscope.core.printable import visible
from paramscope.errors import InputError
from paramscope.sources.boundary import name_of, shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.protobuf import FIXED32, FIXED64, VARINT, Field, ProtobufError, fields, signed64

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
INT64 = 7
SMALL_VALUES = 64  # values kept of an int64 tensor or an ints attribute: enough for any shape
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
    values: tuple[int, ...] | None = None  # an int64 tensor's, up to SMALL_VALUES: a shape

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
    i: int | None = None  # an int (MatMulNBits' K, N and bits)
    ints: tuple[int, ...] | None = ()  # an ints list (a shape); None past SMALL_VALUES
    float_count: int = 0  # values of floats (a Constant's value_floats)
    int_count: int = 0  # values of ints (value_ints)
    string_count: int = 0  # values of strings (value_strings)


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


def nbytes_of(dims: tuple[int, ...], data_type: int) -> int | None:
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
    number, ints, floats, longs, strings = None, [], 0, 0, 0
    for field in fields(data, budget, depth, "AttributeProto"):
        match field.number:
            case 1:
                name = _name(field, budget, "an attribute name")
            case 3:
                number = field.int64()
            case 5:
                _single(tensor, field)
                tensor = _tensor(field.chunk(), budget, depth + 1)
            case 6:
                _single(graph, field)
                graph = _graph(field.chunk(), budget, depth + 1)
            case 7:
                floats += field.count(FIXED32)
            case 8:
                longs += _extend_small(ints, field, longs)
            case 9:
                field.chunk()
                strings += 1
            case 10:
                tensors.append(_tensor(field.chunk(), budget, depth + 1))
            case 11:
                graphs.append(_graph(field.chunk(), budget, depth + 1))
            case 22:
                _single(sparse, field)
                sparse = _sparse(field.chunk(), budget, depth + 1)
    kept = tuple(ints) if longs <= SMALL_VALUES else None
    return Attribute(
        name, tensor, tuple(tensors), sparse, graph, tuple(graphs), number, kept, floats, longs, strings
    )


def _extend_small(values: list[int], field: Field, held: int) -> int:
    """How many int64 values this occurrence of a repeated field holds; they are appended while
    the field's values stay within SMALL_VALUES (a shape), only counted past it."""
    count = field.count(VARINT)
    if held + count <= SMALL_VALUES:
        values.extend(signed64(value) for value in field.varints())
    return count


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
    raw: memoryview | None = None
    typed: dict[int, int] = {}  # typed data field -> values it holds
    entries: list[tuple[str, str]] = []
    longs: list[int] = []  # int64_data, while a shape's worth
    for field in fields(data, budget, depth, "TensorProto"):
        match field.number:
            case 1:
                _extend_dims(dims, field, budget)
            case 2:
                data_type = field.int64()
            case 8:
                name = _name(field, budget, "a tensor name")
            case 9:
                raw = field.chunk()
            case 13:
                entries.append(_entry(field.chunk(), budget, depth + 1))
            case 14:
                location = field.uint()
            case 6:
                field.chunk()
                typed[6] = typed.get(6, 0) + 1
            case 7:
                typed[7] = typed.get(7, 0) + _extend_small(longs, field, typed.get(7, 0))
            case 4 | 5 | 10 | 11:
                typed[field.number] = typed.get(field.number, 0) + field.count(TYPED_FIELDS[field.number][1])
    label = f"tensor {name!r:.80}"
    if location not in (0, EXTERNAL):
        raise InputError(f"{label}: unknown data location {location}")
    shape = shape_of(dims, budget, label)
    dtype = DATA_TYPES[data_type][0] if data_type in DATA_TYPES else f"dtype_{data_type}"
    external = _external(entries, label) if location == EXTERNAL else None
    tensor = Tensor(name, shape, data_type, dtype, nbytes_of(shape, data_type), external)
    if external is None:
        _check_stored(label, tensor, None if raw is None else len(raw), typed)
        tensor.values = _shape_values(tensor, raw, longs)
    return tensor


def _shape_values(tensor: Tensor, raw: memoryview | None, longs: list[int]) -> tuple[int, ...] | None:
    """The values of a small int64 tensor, checked to be all it holds: the shape a
    ConstantOfShape would fill. None for other tensors."""
    if tensor.data_type != INT64 or math.prod(tensor.dims) > SMALL_VALUES:
        return None
    if raw is not None:
        return tuple(int.from_bytes(raw[i : i + 8], "little", signed=True) for i in range(0, len(raw), 8))
    return tuple(longs)


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
        check_bytes(label, tensor, raw_bytes, "raw_data holds")
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


def check_bytes(label: str, tensor: Tensor, stored: int, holds: str) -> None:
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
