"""`diff` as text: the one-line summary, the nodes, the structural changes, the changed
tensors with their statistics, and `--expect-frozen` violations in red."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from paramscope.core.printable import visible
from paramscope.ops.diff import CHANGED, IDENTICAL, PARTLY, Diff
from paramscope.render.diff import MAX_LISTED, change_cells, node_name, node_rows, side, structure, verdict

STATUS_STYLE = {IDENTICAL: "green", CHANGED: "yellow", PARTLY: "yellow"}


def _more(count: int) -> list[RenderableType]:
    return [Text(f"  … and {count - MAX_LISTED:,} more", style="dim")] if count > MAX_LISTED else []


def _nodes(diff: Diff) -> Table:
    """Node, type (files that store no layer types leave it out), status, tensors, changed."""
    nodes = node_rows(diff)
    typed = any(node.type for node in nodes)
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for title in ("Node", "Type", "Status") if typed else ("Node", "Status"):
        table.add_column(title)
    table.add_column("Tensors", justify="right")
    table.add_column("Changed", justify="right")
    for node in nodes:
        status = Text(node.status, style=STATUS_STYLE.get(node.status, "dim"))
        kind = [visible(node.type)] if typed else []
        table.add_row(node_name(node), *kind, status, f"{node.tensors:,}", f"{node.changed:,}")
    return table


def _changed(diff: Diff) -> list[RenderableType]:
    if not diff.changed:
        return []
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    table.add_column("Changed tensor")
    for title in ("max |Δ|", "‖Δ‖/‖A‖", "elements changed"):
        table.add_column(title, justify="right")
    for change in diff.changed[:MAX_LISTED]:
        table.add_row(*change_cells(change))
    return [Text(""), table, *_more(len(diff.changed))]


def _sections(diff: Diff) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for section in structure(diff):
        parts += [Text(""), Text(f"{section.title} ({len(section.lines):,}):", style="bold")]
        parts += [Text(f"  {line}") for line in section.lines[:MAX_LISTED]] + _more(len(section.lines))
    return parts


def _frozen(diff: Diff) -> list[RenderableType]:
    said = verdict(diff)
    if said is None:
        return []
    if not diff.failed:
        return [Text(""), Text(said + ".", style="bold green")]
    listed = [Text(f"  {visible(path)}", style="red") for path in diff.frozen_broken[:MAX_LISTED]]
    return [Text(""), Text(said + ":", style="bold red"), *listed, *_more(len(diff.frozen_broken))]


def renderable(diff: Diff) -> Group:
    parts: list[RenderableType] = [
        Text.assemble(("A  ", "bold"), (side(diff.source_a), "dim")),
        Text.assemble(("B  ", "bold"), (side(diff.source_b), "dim")),
        Text(""),
        Text(visible(diff.summary), style="bold"),
        Text(""),
        _nodes(diff),
        *_sections(diff),
        *_changed(diff),
        *[Text(f"note: {visible(note)}", style="cyan") for note in diff.notes],
        *_frozen(diff),
    ]
    return Group(*parts)
