"""The JSON contract's shared objects (``schema_version`` 1), each built in one place.

Every command's JSON is one envelope: ``schema_version``, ``command``, ``source`` (the same
object everywhere), then the command's own keys. The objects a report is made of — tensors,
nodes, totals, the pickle verdict and metadata, findings — are built here, so that a key
means the same in every command. ``paramscope/schema/`` publishes their JSON Schema.
"""

from __future__ import annotations

from paramscope.core.report import Node, Report, RoleTotals, Source, Tensor, TensorGroup

SCHEMA_VERSION = 1


def envelope(command: str, source: dict, **body: object) -> dict:
    """The object every command's JSON output is: the envelope keys first, then ``body``."""
    return {"schema_version": SCHEMA_VERSION, "command": command, "source": source, **body}


def source_dict(source: Source) -> dict:
    return {
        "kind": source.kind.value,
        "framework_version": source.framework_version,
        "backend": source.backend,
        "path": source.path,
    }


def tensor_dict(tensor: Tensor) -> dict:
    return {
        "name": tensor.name,
        "path": tensor.path,
        "key": tensor.key,
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


def totals_dict(totals: dict[str, RoleTotals]) -> dict:
    """``{"trainable": {"tensors", "params", "bytes"}, ..., "all": {...}}``."""
    return {role: role_totals.as_dict() for role, role_totals in totals.items()}


def group_dict(group: TensorGroup | None) -> dict | None:
    """Tensors reported apart from the model (optimizer slots, metrics, constants), or null."""
    if group is None:
        return None
    return {"totals": group.totals.as_dict(), "tensors": [tensor_dict(t) for t in group.tensors]}


def file_facts(report: Report) -> dict:
    """What a file is beside its tensors: the verdict on its pickle (``{"verdict",
    "needs_code", "malicious": [{"global", "does"}]}``, or null when it is no pickle) and its
    plain metadata (values as the file gave them, JSON-able). Every command that reads a
    model's report from a file carries them."""
    return {
        "pickle": report.pickle.as_dict() if report.pickle is not None else None,
        "metadata": report.metadata,
    }


def findings_list(findings) -> list[dict]:
    """Lint's, freeze's and audit's findings: each with its rule, severity, fix and references."""
    return [finding.as_dict() for finding in findings]
