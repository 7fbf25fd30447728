"""`summary` as Markdown: the one-line answer, a GitHub-flavoured table of the same rows as
the text, the notes under it, then the reading as a table, a code block of the framework's own
lines and a list of the sums that connect them."""

from __future__ import annotations

from paramscope.core.report import Report
from paramscope.render.html_parts.collapsible import collapsible
from paramscope.render.markup import (
    cell,
    malicious_markdown,
    metadata_markdown,
    quoted,
    source_markdown,
    verdict_markdown,
)
from paramscope.render.reading import reading, type_suffix
from paramscope.render.summary.answer import TIED_MARK, answer_line, notes
from paramscope.render.summary.view import LayerRow, TensorRow, ViewOptions, build_view
from paramscope.render.tree_rows import output_shape_text, shape_text, tensor_counts, tensor_counts_title

HEADER = ("Layer (type)", "Trains", "Tensors T/F/S", "Params", "Trainable")
ALIGN = ("---", ":---:", "---:", "---:", "---:")


def _tensor_cells(row: TensorRow) -> list[str]:
    tensor = row.tensor
    indent = "&nbsp;&nbsp;" * row.depth
    alias = f" → `{cell(row.alias_of)}`" if row.alias_of else ""
    params = f"({tensor.params:,})" if tensor.shared_with else f"{tensor.params:,}"
    label = f"{indent}`{cell(row.label)}` {shape_text(tensor)} {tensor.dtype}{alias}"
    return [label, tensor.role.value, "", params, "", ""]


def _role_counts(row: LayerRow) -> dict[str, int]:
    return {role: row.totals[role].tensors for role in ("trainable", "frozen", "state", "unknown")}


def _layer_cells(row: LayerRow) -> list[str]:
    indent = "&nbsp;&nbsp;" * row.depth
    tied = f" {TIED_MARK} {cell(', '.join(row.tied))}" if row.tied else ""
    counts = _role_counts(row)
    name = f"{indent}{cell(row.label)}{type_suffix(row.type)}{tied}"
    numbers = [f"{row.totals['all'].params:,}", f"{row.totals['trainable'].params:,}"]
    return [name, row.status, tensor_counts(counts), *numbers, output_shape_text(row.output_shape)]


def _table(rows: list[LayerRow | TensorRow]) -> list[str]:
    """The layer table; its output shape column only where some layer knows its shape."""
    cells = [_layer_cells(row) if isinstance(row, LayerRow) else _tensor_cells(row) for row in rows]
    shapes = any(isinstance(row, LayerRow) and row.output_shape for row in rows)
    counts = [_role_counts(row) for row in rows if isinstance(row, LayerRow)]
    header, align = [*HEADER[:2], tensor_counts_title(counts), *HEADER[3:], "Output shape"], [*ALIGN, "---"]
    width = len(header) if shapes else len(HEADER)
    lines = ["| " + " | ".join(line[:width]) + " |" for line in (header, *cells)]
    return [lines[0], "|" + "|".join(align[:width]) + "|", *lines[1:]]


def _reading_markdown(report: Report) -> list[str]:
    read = reading(report)
    lines = ["", "| Role | Tensors and params | Meaning |", "|---|---|---|"]
    lines += [f"| {line.role} | {line.text} | {line.note} |" for line in read.roles]
    lines += ["", f"**{read.framework_title}:**", "", "```", *read.framework_lines, "```", ""]
    lines += [f"- {line}" for line in read.connections + read.extras]
    lines += [f"- **warning:** {line}" for line in read.warnings]
    return lines


def markdown(
    report: Report,
    depth: int | None = None,
    show_tensors: bool = False,
    all_layers: bool = False,
    only: str | None = None,
) -> str:
    """The summary as Markdown, with the same rows as the text (render/summary/view.py)."""
    view = build_view(report, ViewOptions(depth, all_layers, only, show_tensors))
    lines = [
        *malicious_markdown(report),
        f"## {quoted(report.root.name or '(root)')}{type_suffix(report.root.type)}",
        "",
        source_markdown(report.source),
        "",
        *verdict_markdown(report),
        f"**{answer_line(report)}**",
        "",
        *collapsible(f"Layer table ({len(view.rows):,} rows)", _table(view.rows), len(view.rows)),
    ]
    below = notes(report, view)
    lines += ["", *(f"- {note}" for note in below)] if below else []
    lines += _reading_markdown(report)
    lines += metadata_markdown(report)
    return "\n".join(lines).rstrip() + "\n"
