"""ONNX models: the tensors ``onnx.load`` sees, each counted by what the graph uses it for.

The parameters are the initializers (dense and sparse) of the main graph and of every subgraph
(If/Loop/Scan bodies, in node attributes), path-prefixed by the node and attribute holding
them, and the Constant nodes whose values feed weight inputs (converters and graph rewriters
fold initializers into Constants), named after the Constant's output and said in a warning.
Quantized weights (an int8 initializer behind DequantizeLinear, MatMulInteger, QLinearConv…)
are weights of unknown role marked with their scheme, not "state" for their integer type; their
scales and zero points are state, marked as what they are. Other Constant nodes' tensors
(shapes, axes, scalars) are listed apart, not counted. Weights that operators generate when the
model loads have no values in the file: a warning names them.

The file is decoded by :mod:`paramscope.sources.onnx_proto` (no onnx package, no tensor data
read) and what each tensor is for decided by :mod:`paramscope.sources.onnx_graph`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.printable import visible
from paramscope.core.report import Report, Role, Source, Tensor, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames
from paramscope.errors import InputError
from paramscope.sources.boundary import beside, require_regular
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.flat import NO_TRAINABILITY, FlatTensor, flat_tree
from paramscope.sources.onnx_graph import Analysis, Generated, Stored, Use, analyse
from paramscope.sources.onnx_proto import Model, check_bytes, decode_model
from paramscope.sources.onnx_proto import Tensor as Record
from paramscope.sources.protobuf import ProtobufError, map_file

COUNTED = (Use.WEIGHT, Use.STATE)  # a Constant with one of these uses is a parameter
MARKS = {Use.SCALE: "scale", Use.ZERO_POINT: "zero-point", Use.GROUP_INDEX: "group-index"}
SHOWN = 3  # names a warning shows before "and N more"


def read_onnx(path: Path, budget: ReadBudget) -> Report:
    model = _decoded(path, budget)
    analysis = analyse(model, budget)
    external = [record for stored in analysis.stored for record in stored.records if record.external]
    _check_external_files(path.parent, external, budget)
    if not analysis.stored:
        raise InputError(f"{path}: an ONNX model without initializers or constants")
    counted = [s for s in analysis.stored if s.constant is None or s.use in COUNTED]
    apart = [s for s in analysis.stored if s.constant is not None and s.use not in COUNTED]
    source = Source(kind=Kind.ONNX, framework_version=f"opset {_opset_text(model)}", path=str(path))
    report = _report(counted, source, model.graph.name or path.name, _warnings(analysis, external), budget)
    report.constants = _constants(apart, budget)
    return report


def _decoded(path: Path, budget: ReadBudget) -> Model:
    try:
        model = decode_model(map_file(path), budget)
    except ProtobufError as exc:
        raise InputError(f"{path}: not a readable ONNX model ({exc})") from None
    except RecursionError:  # only when the depth limit is raised past Python's own
        raise BudgetExceeded("depth", budget.limits.depth, "the ONNX model") from None
    if model.graph is None:
        raise InputError(f"{path}: not an ONNX model (no graph)")
    return model


def _check_external_files(folder: Path, tensors: list[Record], budget: ReadBudget) -> None:
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
            check_bytes(label, tensor, external.length, "its external data length is")
        elif tensor.nbytes is None:
            check_bytes(label, tensor, available, "its external file holds")
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


class _ClassifiedBuilder(TreeBuilder):
    """Gives each tensor the role, logical parameters and quantization its use says, and its
    key: the initializer's (or Constant output's) own name, without its subgraph's prefix.

    ``flat_tree`` builds one tensor per entry, in entry order; each call takes the next stored
    tensor and checks that it is the one being built, so a change to that order fails loudly.
    """

    def __init__(self, stored: list[Stored], names: list[str]) -> None:
        super().__init__()
        self._next = zip(stored, names, strict=True)

    def tensor(
        self,
        obj: object,
        node_path: str,
        name: str,
        shape: Iterable[int],
        dtype: object,
        role: Role,
        persistent: bool | None = None,
        nbytes: int | None = None,
        **_: object,
    ) -> Tensor:
        stored, full_name = next(self._next)
        if not full_name.endswith(name) or tuple(shape) != stored.dims:
            raise AssertionError(f"flat_tree built {name!r} where {full_name!r} was next")
        if stored.use is Use.WEIGHT:
            role = Role.UNKNOWN
        elif stored.use is not None:
            role = Role.STATE
        quantized = MARKS.get(stored.use, stored.quantized)
        return super().tensor(
            obj,
            node_path,
            name,
            shape,
            dtype,
            role,
            persistent,
            nbytes,
            stored.params,
            quantized,
            stored.name,
        )


def _report(
    counted: list[Stored], source: Source, root: str, warnings: list[str], budget: ReadBudget
) -> Report:
    """The parameters as a tree of their dotted names (as flat files are), classified."""
    names = [_prefixed(s.prefix, s.name, budget) for s in counted]
    entries = [
        FlatTensor(n, s.dims, s.dtype, s, nbytes=s.nbytes) for n, s in zip(names, counted, strict=True)
    ]
    tree = flat_tree(entries, root, _ClassifiedBuilder(counted, names))
    if any(t.role is Role.UNKNOWN for t in tree.all_tensors()):
        warnings.insert(0, NO_TRAINABILITY.format(format="ONNX"))
    return Report(source=source, root=tree, warnings=warnings)


def _warnings(analysis: Analysis, external: list[Record]) -> list[str]:
    warnings = []
    if external:
        locations = sorted({visible(t.external.location) for t in external})
        warnings.append(
            f"weights stored outside the file ({', '.join(locations[:SHOWN])}): counted from their "
            "declared shapes, not read."
        )
    constants = [s for s in analysis.stored if s.constant is not None and s.use in COUNTED]
    if constants:
        params = sum(_params(s) for s in constants)
        warnings.append(
            f"{len(constants):,} weights stored as Constant nodes, not initializers, counted as "
            f"parameters ({params:,}) under their Constant's output name."
        )
    warnings += _quantized_warning(analysis.stored)
    if analysis.generated:
        warnings.append(_generated_warning(analysis.generated))
    return warnings


def _params(stored: Stored) -> int:
    return stored.params if stored.params is not None else math.prod(stored.dims)


def _quantized_warning(stored: list[Stored]) -> list[str]:
    """How many quantized weights, their parameters per scheme, and how many scales beside them."""
    schemes: Counter[str] = Counter()
    for tensor in stored:
        if tensor.use is Use.WEIGHT and tensor.quantized is not None:
            schemes[tensor.quantized] += _params(tensor)
    if not schemes:
        return []
    weights = sum(1 for t in stored if t.use is Use.WEIGHT and t.quantized is not None)
    marked = sum(1 for t in stored if t.use in MARKS)
    listed = ", ".join(f"{scheme} {params:,}" for scheme, params in sorted(schemes.items()))
    return [
        f"{weights:,} quantized weights counted as parameters of unknown role ({listed}); "
        f"{marked:,} scales and zero points are state, marked as such."
    ]


def _generated_warning(generated: list[Generated]) -> str:
    shown = ", ".join(
        f"{g.name!r:.80} ({g.op_type}, shape {list(g.shape)!s:.60})"
        if g.shape is not None
        else f"{g.name!r:.80} ({g.op_type})"
        for g in generated[:SHOWN]
    )
    more = f" and {len(generated) - SHOWN:,} more" if len(generated) > SHOWN else ""
    return (
        f"{len(generated):,} weights are generated when the model loads, by operators that make "
        f"their values; the file holds none for {shown}{more}: not counted."
    )


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


def _opset_text(model: Model) -> str:
    return ",".join(str(version) for domain, version in model.opsets if domain in ("", "ai.onnx")) or "?"


def _constants(apart: list[Stored], budget: ReadBudget) -> TensorGroup | None:
    """Other Constant nodes' tensors: listed apart from the parameters, never counted as them;
    scales and zero points of quantized weights say so."""
    builder, names = TreeBuilder(), UniqueNames()
    tensors = [
        builder.tensor(
            object(),
            "constants",
            names(_prefixed(s.prefix, s.name, budget)),
            s.dims,
            s.dtype,
            Role.STATE,
            nbytes=s.nbytes,
            quantized=MARKS.get(s.use),
            key=s.name,
        )
        for s in apart
    ]
    return TensorGroup("constants", tensors) if tensors else None
