"""`diff` as Markdown: the summary as the heading's paragraph, a table of nodes, the
structural changes as lists, the changed tensors as a table."""

from __future__ import annotations

from paramscope.ops.diff import Diff
from paramscope.render.diff import MAX_LISTED, change_cells, node_name, node_rows, side, structure, verdict
from paramscope.render.markup import cell, code, quoted


def _more(count: int) -> list[str]:
    return [f"- … and {count - MAX_LISTED:,} more"] if count > MAX_LISTED else []


def _nodes(diff: Diff) -> list[str]:
    """Node, type (left out for files that store no layer types), status, tensors, changed."""
    nodes = node_rows(diff)
    typed = any(node.type for node in nodes)
    lines = [
        "| node |" + (" type |" if typed else "") + " status | tensors | changed |",
        "|---|" + ("---|" if typed else "") + "---|---:|---:|",
    ]
    for node in nodes:
        kind = f" {cell(quoted(node.type))} |" if typed else ""
        name = cell(code(node.path) if node.path else quoted(node_name(node)))
        lines.append(f"| {name} |{kind} {node.status} | {node.tensors:,} | {node.changed:,} |")
    return lines


def _changed(diff: Diff) -> list[str]:
    if not diff.changed:
        return []
    lines = ["", "| changed tensor | max \\|Δ\\| | ‖Δ‖/‖A‖ | elements changed |", "|---|---:|---:|---:|"]
    for change in diff.changed[:MAX_LISTED]:
        path, *numbers = change_cells(change)
        lines.append(f"| {cell(code(path))} | " + " | ".join(numbers) + " |")
    return lines + _more(len(diff.changed))


def _sections(diff: Diff) -> list[str]:
    lines = []
    for section in structure(diff):
        lines += ["", f"{section.title} ({len(section.lines):,}):", ""]
        lines += [f"- {quoted(line)}" for line in section.lines[:MAX_LISTED]] + _more(len(section.lines))
    return lines


def _frozen(diff: Diff) -> list[str]:
    said = verdict(diff)
    if said is None:
        return []
    if not diff.failed:
        return ["", f"{quoted(said)}."]
    listed = [f"- {code(path)}" for path in diff.frozen_broken[:MAX_LISTED]]
    return ["", f"**{quoted(said)}:**", "", *listed, *_more(len(diff.frozen_broken))]


def markdown(diff: Diff) -> str:
    title = "failed" if diff.failed else "changed" if diff.changed or diff.reshaped else "unchanged"
    lines = [
        f"## Diff: {title}",
        "",
        f"A: {quoted(side(diff.source_a))}  ",
        f"B: {quoted(side(diff.source_b))}",
        "",
        f"**{quoted(diff.summary)}**",
        "",
        *_nodes(diff),
        *_sections(diff),
        *_changed(diff),
        *[f"\nNote: {quoted(note)}" for note in diff.notes],
        *_frozen(diff),
    ]
    return "\n".join(lines) + "\n"
