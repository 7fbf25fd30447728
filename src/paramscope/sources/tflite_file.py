"""TensorFlow Lite models (``.tflite``): the constant tensors of every subgraph, read from the
FlatBuffer without TensorFlow, never their data.

A TFLite file is a FlatBuffer (file identifier ``TFL3`` at bytes 4-8) whose root is a ``Model``:
subgraphs of tensors (shape, type, the index of the buffer holding their data, name,
quantization parameters) and the model's list of buffers, each holding its bytes inline or, in
a model over 2 GB, at an ``offset``/``size`` after the FlatBuffer in the same file. Field ids
and types are those of tensorflow/compiler/mlir/lite/schema/schema.fbs (checked against the
schema classes of TensorFlow 2.21); the FlatBuffer is read by :mod:`paramscope.sources.flatbuffer`,
which checks every offset, vtable and length against the file.

What the report counts:

- Parameters are the constant tensors: those whose buffer holds data. Activations, inputs and
  outputs point at an empty buffer (buffer 0 by convention) and are not parameters. Tensors
  sharing one buffer are one stored array: the first is its owner, the others aliases.
- A buffer must hold at least the bytes its tensor's shape and type need (4-bit types packed
  two to a byte; a string tensor at least its count and offsets); bytes are the buffer's real
  size.
- TFLite stores no trainability: float constants (weights, folded batch norms) are
  ``unknown``; integer and bool constants without quantization (shapes, indices) and variable
  tensors are ``state``. Quantized weights (an integer type with scales: int8 from
  ``Optimize.DEFAULT``, uint8, int16, int4, int32 biases) are weights, ``unknown``, their dtype
  prefixed with ``q`` (``qint8``); their scales and zero points are listed apart, as
  ``quantization`` tensors, not counted with the model.
- Names are TFLite's (``functional_1/dense_1/MatMul``); a constant that fused several ops
  is named ``a;b`` and placed by its first name. Nodes are the ``/`` scopes, under one node per
  subgraph when there are several.

Sparse tensors and tensors in external buffer files are recognised and refused, not read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames
from paramscope.errors import InputError
from paramscope.sources.boundary import name_of, shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flat import NO_TRAINABILITY
from paramscope.sources.flatbuffer import FlatbufferError, Table, Vector, root_table
from paramscope.sources.protobuf import ProtobufError, map_file
from paramscope.sources.savedmodel import ScopedTensor, scope_tree

IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
TICK_EVERY = 4096  # tensors read between two looks at the clock

# schema.fbs TensorType -> (our name, bits per element; None where the size varies).
TENSOR_TYPES: dict[int, tuple[str, int | None]] = {
    0: ("float32", 32),
    1: ("float16", 16),
    2: ("int32", 32),
    3: ("uint8", 8),
    4: ("int64", 64),
    5: ("string", None),
    6: ("bool", 8),
    7: ("int16", 16),
    8: ("complex64", 64),
    9: ("int8", 8),
    10: ("float64", 64),
    11: ("complex128", 128),
    12: ("uint64", 64),
    13: ("resource", None),
    14: ("variant", None),
    15: ("uint32", 32),
    16: ("uint16", 16),
    17: ("int4", 4),
    18: ("bfloat16", 16),
    19: ("int2", 2),
    20: ("uint4", 4),
}
STRING = 5
FLOATS = ("float", "bfloat", "complex")
INTEGERS = ("int", "uint")  # the types quantization parameters turn into weights

# Field ids of the tables we read (schema.fbs order).
MODEL_VERSION, MODEL_SUBGRAPHS, MODEL_BUFFERS = 0, 2, 4
SUBGRAPH_TENSORS, SUBGRAPH_NAME = 0, 4
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION = 0, 1, 2, 3, 4
TENSOR_IS_VARIABLE, TENSOR_SPARSITY, TENSOR_EXTERNAL_BUFFER = 5, 6, 10
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
QUANTIZATION_SCALE, QUANTIZATION_ZERO_POINT = 2, 3


@dataclass(slots=True)
class Constant:
    """A tensor backed by data, as the file declares it (validated)."""

    subgraph: str
    name: str
    shape: tuple[int, ...]
    tensor_type: int  # schema.fbs TensorType
    buffer: int
    stored: int  # bytes its buffer holds
    scales: int  # how many quantization scales it has (one, or one per channel)
    zero_points: int
    is_variable: bool

    @property
    def type_name(self) -> str:
        return TENSOR_TYPES.get(self.tensor_type, (f"tflite_type_{self.tensor_type}", None))[0]

    @property
    def quantized(self) -> bool:
        return self.scales > 0 and self.type_name.startswith(INTEGERS)

    @property
    def dtype(self) -> str:
        return f"q{self.type_name}" if self.quantized else self.type_name

    @property
    def role(self) -> Role:
        if self.is_variable:
            return Role.STATE
        if self.quantized or self.type_name.startswith(FLOATS):
            return Role.UNKNOWN
        return Role.STATE


class _Buffers:
    """The model's buffers, each read once and only when a tensor points at it."""

    def __init__(self, model: Table, file_size: int) -> None:
        self._vector = model.vector(MODEL_BUFFERS, "I", "the buffer list")
        self._file_size = file_size
        self._sizes: dict[int, int] = {}

    def stored(self, index: int, label: str) -> int:
        """The bytes buffer ``index`` holds, inline or after the FlatBuffer."""
        if index not in self._sizes:
            length = self._vector.length if self._vector is not None else 0
            if index >= length:
                raise InputError(f"{label} points at buffer {index:,}; the model has {length:,}")
            self._sizes[index] = self._size(self._vector.table(index, "Buffer"), label)
        return self._sizes[index]

    def _size(self, buffer: Table, label: str) -> int:
        data = buffer.vector(BUFFER_DATA, "B", "buffer data")
        if data is not None and data.length:
            return data.length
        offset, size = int(buffer.scalar(BUFFER_OFFSET, "Q", 0)), int(buffer.scalar(BUFFER_SIZE, "Q", 0))
        if offset <= 1:  # "only valid if > 1"
            return 0
        if offset + size > self._file_size:
            raise InputError(
                f"{label}: its buffer of {size:,} bytes at byte {offset:,} runs past the end of the file"
            )
        return size


def _needed(constant: Constant) -> int:
    """The fewest bytes a buffer of this tensor can hold: a string tensor holds a count and an
    offset per string plus one past the last; a type of varying size at least a bit an element."""
    elements = math.prod(constant.shape)
    if constant.tensor_type == STRING:
        return 4 * (elements + 2)
    bits = TENSOR_TYPES.get(constant.tensor_type, ("", None))[1]
    return (elements * (bits or 1) + 7) // 8


def _quantization(tensor: Table) -> tuple[int, int]:
    """How many scales and zero points a tensor's quantization parameters hold."""
    parameters = tensor.table(TENSOR_QUANTIZATION, "QuantizationParameters")
    if parameters is None:
        return 0, 0
    scales = parameters.vector(QUANTIZATION_SCALE, "f", "quantization scales")
    zero_points = parameters.vector(QUANTIZATION_ZERO_POINT, "q", "quantization zero points")
    return (scales.length if scales else 0), (zero_points.length if zero_points else 0)


def _shape(tensor: Table, budget: ReadBudget, label: str) -> tuple[int, ...]:
    dims = tensor.vector(TENSOR_SHAPE, "i", "a tensor shape")
    if dims is None:
        return ()
    budget.check("dims", dims.length, label)
    return shape_of(list(dims.scalars("i")), budget, label)


def _name(table: Table, field_id: int, budget: ReadBudget, what: str) -> str | None:
    """A name, its characters charged: tables may share one string, so that one long name
    read for every tensor would cost far more than the file holds."""
    raw = table.string(field_id, budget.limits.name_chars * 4, what)
    if raw is None:
        return None
    name = name_of(raw, budget, what)
    budget.charge("tree_chars", len(name), "the tensor names")
    return name


def _constant(
    tensor: Table, label: str, subgraph: str, buffers: _Buffers, budget: ReadBudget
) -> Constant | None:
    """The tensor if its buffer holds data, validated; None for an activation (its name and
    shape are not even read)."""
    if int(tensor.scalar(TENSOR_EXTERNAL_BUFFER, "I", 0)):
        raise InputError(f"{label} is stored in an external buffer file: not read")
    buffer = int(tensor.scalar(TENSOR_BUFFER, "I", 0))
    stored = buffers.stored(buffer, label)
    if not stored:
        return None
    name = _name(tensor, TENSOR_NAME, budget, "a tensor name") or ""
    label = f"tensor {name!r:.80}"
    if tensor.table(TENSOR_SPARSITY, "SparsityParameters") is not None:
        raise InputError(f"{label} is a sparse tensor: not read")
    scales, zero_points = _quantization(tensor)
    constant = Constant(
        subgraph,
        name,
        _shape(tensor, budget, label),
        int(tensor.scalar(TENSOR_TYPE, "b", 0)),
        buffer,
        stored,
        scales,
        zero_points,
        bool(tensor.scalar(TENSOR_IS_VARIABLE, "?", False)),
    )
    needed = _needed(constant)
    if stored < needed:
        raise InputError(
            f"{label}: {constant.type_name} {list(constant.shape)!s:.60} needs {needed:,} bytes, "
            f"its buffer holds {stored:,}"
        )
    return constant


def _tensor_lists(subgraphs: Vector, file_size: int, budget: ReadBudget) -> list[tuple[str, Vector | None]]:
    """Each subgraph's unique name and tensor list. Lists may point into each other, so that
    walking them all would read the same entries again and again: their lengths together must
    fit in the file, four bytes an entry, as disjoint lists do."""
    names, lists = UniqueNames(), []
    for index in range(subgraphs.length):
        subgraph = subgraphs.table(index, "SubGraph")
        name = _name(subgraph, SUBGRAPH_NAME, budget, "a subgraph name") or f"subgraph_{index}"
        lists.append((names(name), subgraph.vector(SUBGRAPH_TENSORS, "I", "a tensor list")))
    entries = sum(tensors.length for _, tensors in lists if tensors is not None)
    if entries > file_size // 4:
        raise InputError(f"tensor lists of {entries:,} entries overlap in a {file_size:,}-byte file")
    return lists


def read_constants(data: memoryview, budget: ReadBudget) -> tuple[int, list[Constant]]:
    """The schema version and every constant tensor of every subgraph, in file order."""
    model = root_table(data, IDENTIFIER, "Model")
    version = int(model.scalar(MODEL_VERSION, "I", 0))
    if version != SCHEMA_VERSION:
        raise InputError(f"TFLite schema version {version:,}, not {SCHEMA_VERSION}")
    subgraphs = model.vector(MODEL_SUBGRAPHS, "I", "the subgraph list")
    if subgraphs is None or not subgraphs.length:
        raise InputError("a TFLite model without subgraphs")
    budget.charge("metadata_entries", subgraphs.length, "the TFLite subgraphs")
    buffers, constants = _Buffers(model, len(data)), []
    for subgraph, tensors in _tensor_lists(subgraphs, len(data), budget):
        for position in range(tensors.length if tensors is not None else 0):
            budget.charge("tensors", 1, "the TFLite model")
            if position % TICK_EVERY == 0:
                budget.tick()
            label = f"tensor {position:,} of subgraph {subgraph!r:.80}"
            constant = _constant(tensors.table(position, "Tensor"), label, subgraph, buffers, budget)
            if constant is not None:
                constants.append(constant)
    return version, constants


def _scoped(constant: Constant, several_subgraphs: bool) -> ScopedTensor:
    first_name = constant.name.split(";", 1)[0]
    name = f"{constant.subgraph}/{first_name}" if several_subgraphs else first_name
    return ScopedTensor(
        name, constant.shape, constant.dtype, constant.role, constant.buffer, constant.stored, constant.name
    )


def _quantization_group(constants: list[Constant]) -> TensorGroup | None:
    """The scales (float32) and zero points (int64) of each quantized weight, listed once per buffer."""
    builder, names, tensors, seen = TreeBuilder(), UniqueNames(), [], set()
    for constant in constants:
        if constant.buffer in seen or not constant.quantized:
            continue
        seen.add(constant.buffer)
        first_name = constant.name.split(";", 1)[0]
        for suffix, count, dtype, width in (
            ("scale", constant.scales, "float32", 4),
            ("zero_point", constant.zero_points, "int64", 8),
        ):
            if count:
                tensors.append(
                    builder.tensor(
                        object(),
                        "quantization",
                        names(f"{first_name}.{suffix}"),
                        (count,),
                        dtype,
                        Role.STATE,
                        nbytes=count * width,
                    )
                )
    return TensorGroup("quantization", tensors) if tensors else None


def read_tflite(path: Path, budget: ReadBudget) -> Report:
    try:
        version, constants = read_constants(map_file(path), budget)
    except (FlatbufferError, ProtobufError) as exc:
        raise InputError(f"{path}: not a readable TFLite model ({exc})") from None
    several = len({constant.subgraph for constant in constants}) > 1
    root = scope_tree(
        (_scoped(constant, several) for constant in constants),
        name_of(path.name, budget, "the file name"),
        budget,
    )
    warnings = []
    if any(t.role is Role.UNKNOWN for t in root.all_tensors()):
        warnings.append(NO_TRAINABILITY.format(format="TFLite"))
    return Report(
        source=Source(kind=Kind.TFLITE, framework_version=f"schema v{version}", path=str(path)),
        root=root,
        constants=_quantization_group(constants),
        warnings=warnings,
    )
