"""The rows of the layer table, shared by the text and Markdown renderers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from paramscope.core.report import Node, Report, Tensor


@dataclass(frozen=True)
class NodeRow:
    prefix: str  # tree guides ("├─ ") in text; indentation depth in Markdown
    depth: int
    node: Node
    status: str  # Y / N / partial / — (Node.training_status)
    tensors: dict[str, int]  # tensor counts by role in this subtree
    params: int
    trainable_params: int


@dataclass(frozen=True)
class TensorRow:
    prefix: str
    depth: int
    tensor: Tensor


def rows(report: Report, depth: int | None, show_tensors: bool) -> Iterator[NodeRow | TensorRow]:
    """Nodes down to ``depth`` (root = 0, None = all), each with its subtree totals."""

    subtree = report.summaries

    def visit(node: Node, level: int, lead: str, guide: str) -> Iterator[NodeRow | TensorRow]:
        summary = subtree[id(node)]
        totals, status = summary.totals(), summary.status
        yield NodeRow(
            lead + guide,
            level,
            node,
            status,
            {role: totals[role].tensors for role in ("trainable", "frozen", "state", "unknown")},
            totals["all"].params,
            totals["trainable"].params,
        )
        child_lead = lead + ("   " if guide == "└─ " else "│  " if guide else "")
        if show_tensors:
            more_below = bool(node.children) and (depth is None or level < depth)
            for tensor in node.tensors:
                yield TensorRow(child_lead + ("│  " if more_below else "   "), level + 1, tensor)
        if depth is not None and level >= depth:
            return
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            yield from visit(child, level + 1, child_lead, "└─ " if last else "├─ ")

    yield from visit(report.root, 0, "", "")


def tensor_counts(counts: dict[str, int]) -> str:
    """`2/156/104` (trainable/frozen/state), then `/3?` when some roles are unknown."""
    text = f"{counts['trainable']:,}/{counts['frozen']:,}/{counts['state']:,}"
    return text + (f"/{counts['unknown']:,}?" if counts["unknown"] else "")


def shape_text(tensor: Tensor) -> str:
    return "(" + ", ".join(str(d) for d in tensor.shape) + ("," if len(tensor.shape) == 1 else "") + ")"
