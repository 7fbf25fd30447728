"""JSON per DESIGN.md's contract (``schema_version`` 1): the interface other tools build on."""

from __future__ import annotations

import json

from paramscope.core.conventions import conventions
from paramscope.core.report import Node, Report, Source, Tensor, TensorGroup

SCHEMA_VERSION = 1


def tensor_dict(tensor: Tensor) -> dict:
    return {
        "name": tensor.name,
        "path": tensor.path,
        "shape": list(tensor.shape),
        "dtype": tensor.dtype,
        "role": tensor.role.value,
        "params": tensor.params,
        "bytes": tensor.bytes,
        "shared_with": tensor.shared_with,
        "persistent": tensor.persistent,
        "quantized": tensor.quantized,
    }


def node_dict(node: Node) -> dict:
    return {
        "path": node.path,
        "name": node.name,
        "type": node.type,
        "trainable": node.trainable,
        "mode": node.mode,
        "tensors": [tensor_dict(t) for t in node.tensors],
        "children": [node_dict(c) for c in node.children],
    }


def _group_dict(group: TensorGroup | None) -> dict | None:
    if group is None:
        return None
    return {"totals": group.totals.as_dict(), "tensors": [tensor_dict(t) for t in group.tensors]}


def source_dict(source: Source) -> dict:
    return {
        "kind": source.kind,
        "framework_version": source.framework_version,
        "backend": source.backend,
        "path": source.path,
    }


def file_facts(report: Report) -> dict:
    """What a file is beside its tensors: the verdict on its pickle (``{"verdict",
    "needs_code", "malicious": [{"global", "does"}]}``, or null when it is no pickle) and its
    plain metadata (values as the file gave them, JSON-able). Every command that reads a
    model's report carries them."""
    return {
        "pickle": report.pickle.as_dict() if report.pickle is not None else None,
        "metadata": report.metadata,
    }


def report_dict(report: Report) -> dict:
    """The shared core of every command's JSON output."""
    source = report.source
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source_dict(source),
        **file_facts(report),
        "totals": {role: totals.as_dict() for role, totals in report.totals.items()},
        "conventions": conventions(report),
        "root": node_dict(report.root),
        "optimizer": _group_dict(report.optimizer),
        "metrics": _group_dict(report.metrics),
        "constants": _group_dict(report.constants),
        "compiled_trainable": report.compiled_trainable,
        "warnings": list(report.warnings),
    }


def render_json(report: Report, **_: object) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"
