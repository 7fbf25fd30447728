"""ONNX models: the parameters are the initializers (dense and sparse) of the main graph, its
subgraphs (If/Loop/Scan bodies) and nothing else.

Parsed with the ``onnx`` package (protobuf data, no code). Tensors held by Constant nodes are
listed apart and not counted as parameters. Tensors stored as external data are counted from
their declared shape and never read; a location outside the model's folder is refused.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from paramscope.core.report import Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames
from paramscope.errors import InputError
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flat import FlatTensor, flat_report

DTYPES = {
    "FLOAT": "float32",
    "DOUBLE": "float64",
    "FLOAT16": "float16",
    "BFLOAT16": "bfloat16",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "BOOL": "bool",
    "COMPLEX64": "complex64",
    "COMPLEX128": "complex128",
    "FLOAT8E4M3FN": "float8_e4m3fn",
    "FLOAT8E5M2": "float8_e5m2",
    "INT4": "int4",
    "UINT4": "uint4",
}


def _text(value) -> str:
    """A string field as text: protobuf returns bytes when the file holds invalid UTF-8 there."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _dtype(onnx, data_type: int) -> str:
    name = (
        onnx.TensorProto.DataType.Name(data_type) if data_type in onnx.TensorProto.DataType.values() else "?"
    )
    return DTYPES.get(name, name.lower())


def _check_external(path: Path, tensor, onnx) -> str | None:
    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        return None
    location = next(
        (_text(entry.value) for entry in tensor.external_data if _text(entry.key) == "location"), ""
    )
    parts = PurePosixPath(location.replace("\\", "/"))
    if not location or parts.is_absolute() or ".." in parts.parts or location.startswith("~"):
        raise InputError(
            f"{path}: tensor {_text(tensor.name)!r} points to external data {location!r} outside the model's folder"
        )
    return location


def _graphs(graph, prefix: str = ""):
    """The graph and every subgraph nested in node attributes, with a path prefix for each."""
    yield prefix, graph
    for node in graph.node:
        for attribute in node.attribute:
            label = f"{prefix}{_text(node.name) or _text(node.op_type)}.{_text(attribute.name)}"
            if attribute.HasField("g"):
                yield from _graphs(attribute.g, label + ".")
            for i, sub in enumerate(attribute.graphs):
                yield from _graphs(sub, f"{label}.{i}.")


def read_onnx(path: Path, budget: ReadBudget) -> Report:
    try:
        import onnx
    except ImportError:
        raise InputError(
            f"{path}: an ONNX model; reading it needs the onnx package (pip install 'paramscope[onnx]')"
        ) from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decoding of hostile bytes: any failure is a bad file
        raise InputError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph"):
        raise InputError(f"{path}: not an ONNX model (no graph)")
    entries, constants, external = [], [], set()
    for prefix, graph in _graphs(model.graph):
        for tensor in graph.initializer:
            if location := _check_external(path, tensor, onnx):
                external.add(location)
            entries.append(
                FlatTensor(
                    prefix + _text(tensor.name),
                    tuple(tensor.dims),
                    _dtype(onnx, tensor.data_type),
                    (prefix, _text(tensor.name)),
                )
            )
        for sparse in graph.sparse_initializer:
            entries.append(
                FlatTensor(
                    prefix + _text(sparse.values.name),
                    tuple(sparse.dims),
                    _dtype(onnx, sparse.values.data_type),
                    (prefix, _text(sparse.values.name)),
                )
            )
        constants += [(prefix, node) for node in graph.node if _text(node.op_type) == "Constant"]
    for function in model.functions:
        constants += [
            (f"{_text(function.name)}.", node) for node in function.node if _text(node.op_type) == "Constant"
        ]
    if not entries and not constants:
        raise InputError(f"{path}: an ONNX model without initializers or constants")
    warnings = []
    if external:
        warnings.append(
            f"weights stored outside the file ({', '.join(sorted(external)[:3])}): counted from their "
            "declared shapes, not read."
        )
    report = flat_report(
        entries,
        Source(kind="onnx", framework_version=f"opset {_opset(model)}", path=str(path)),
        "ONNX",
        _text(model.graph.name) or path.name,
        warnings=warnings,
    )
    report.constants = _constants(onnx, constants)
    return report


def _opset(model) -> str:
    return ",".join(str(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")) or "?"


def _constants(onnx, constants) -> TensorGroup | None:
    """Constant nodes' tensors: listed apart from the parameters, never counted as them."""
    builder, names, tensors = TreeBuilder(), UniqueNames(), []
    for prefix, node in constants:
        for attribute in node.attribute:
            if _text(attribute.name) == "value" and attribute.HasField("t"):
                t = attribute.t
                label = names(prefix + _text(node.output[0] if node.output else node.name or "constant"))
                tensors.append(
                    builder.tensor(
                        object(), "constants", label, tuple(t.dims), _dtype(onnx, t.data_type), Role.STATE
                    )
                )
    return TensorGroup("constants", tensors) if tensors else None
