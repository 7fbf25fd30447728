"""`summary` as Markdown: a GitHub-flavoured table of layers, then the reading as a table, a
code block of the framework's own lines and a list of the sums that connect them."""

from __future__ import annotations

from paramscope.core.report import Report
from paramscope.render import DEFAULT_DEPTH
from paramscope.render.markup import (
    cell,
    malicious_markdown,
    metadata_markdown,
    source_markdown,
    verdict_markdown,
)
from paramscope.render.reading import reading, type_suffix
from paramscope.render.tree_rows import NodeRow, TensorRow, rows, shape_text, tensor_counts


def _tensor_row(row: TensorRow) -> str:
    tensor = row.tensor
    indent = "&nbsp;&nbsp;" * row.depth
    alias = f" → `{cell(tensor.shared_with)}`" if tensor.shared_with else ""
    params = f"({tensor.params:,})" if tensor.shared_with else f"{tensor.params:,}"
    label = f"{indent}`{cell(tensor.name)}` {shape_text(tensor)} {tensor.dtype}{alias}"
    return f"| {label} | {tensor.role.value} | | {params} | |"


def _node_row(row: NodeRow) -> str:
    node = row.node
    indent = "&nbsp;&nbsp;" * row.depth
    return (
        f"| {indent}{cell(node.name or '(root)')}{type_suffix(node.type)} | {row.status} | "
        f"{tensor_counts(row.tensors)} | {row.params:,} | {row.trainable_params:,} |"
    )


def _reading_markdown(report: Report) -> list[str]:
    read = reading(report)
    lines = ["", "| Role | Tensors and params | Meaning |", "|---|---|---|"]
    lines += [f"| {line.role} | {line.text} | {line.note} |" for line in read.roles]
    lines += ["", f"**{read.framework_title}:**", "", "```", *read.framework_lines, "```", ""]
    lines += [f"- {line}" for line in read.connections + read.extras]
    lines += [f"- **warning:** {line}" for line in read.warnings]
    return lines


def markdown(report: Report, depth: int | None = DEFAULT_DEPTH, show_tensors: bool = False) -> str:
    lines = [
        *malicious_markdown(report),
        f"## {report.root.name or '(root)'} ({report.root.type})",
        "",
        source_markdown(report.source),
        "",
        *verdict_markdown(report),
        "| Layer (type) | Trains | Tensors T/F/S | Params | Trainable |",
        "|---|:---:|---:|---:|---:|",
    ]
    lines += [
        _node_row(row) if isinstance(row, NodeRow) else _tensor_row(row)
        for row in rows(report, depth, show_tensors)
    ]
    lines += _reading_markdown(report)
    lines += metadata_markdown(report)
    return "\n".join(lines).rstrip() + "\n"
