"""Markdown: a GitHub-flavoured table of layers and the reading as a list and code block."""

from __future__ import annotations

from paramscope.core.report import Report
from paramscope.render import DEFAULT_DEPTH
from paramscope.render.reading import reading, type_suffix
from paramscope.render.tree_rows import NodeRow, rows, shape_text, tensor_counts


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: Report, depth: int | None = DEFAULT_DEPTH, show_tensors: bool = False) -> str:
    source = report.source
    lines = [
        f"## {report.root.name or '(root)'} ({report.root.type})",
        "",
        f"Source: {source.kind}"
        + (f" {source.framework_version}" if source.framework_version else "")
        + (f", {source.backend} backend" if source.backend and source.kind == "keras" else ""),
        "",
        "| Layer (type) | Trains | Tensors T/F/S | Params | Trainable |",
        "|---|:---:|---:|---:|---:|",
    ]
    for row in rows(report, depth, show_tensors):
        indent = "&nbsp;&nbsp;" * row.depth
        if isinstance(row, NodeRow):
            node = row.node
            lines.append(
                f"| {indent}{_cell(node.name or '(root)')}{type_suffix(node.type)} | {row.status} | "
                f"{tensor_counts(row.tensors)} | {row.params:,} | {row.trainable_params:,} |"
            )
        else:
            t = row.tensor
            alias = f" → `{_cell(t.shared_with)}`" if t.shared_with else ""
            params = f"({t.params:,})" if t.shared_with else f"{t.params:,}"
            label = f"{indent}`{_cell(t.name)}` {shape_text(t)} {t.dtype}{alias}"
            lines.append(f"| {label} | {t.role.value} | | {params} | |")
    read = reading(report)
    lines += ["", "| Role | Tensors and params | Meaning |", "|---|---|---|"]
    lines += [f"| {line.role} | {line.text} | {line.note} |" for line in read.roles]
    lines += ["", f"**{read.framework_title}:**", "", "```", *read.framework_lines, "```", ""]
    lines += [f"- {line}" for line in read.connections + read.extras]
    lines += [f"- **warning:** {line}" for line in read.warnings]
    return "\n".join(lines).rstrip() + "\n"
