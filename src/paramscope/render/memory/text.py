"""`memory` as text: the parts of training memory by role, what freezing saved, the
per-device share beside DeepSpeed's figure, and the rules applied in words."""

from __future__ import annotations

import textwrap

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from paramscope.core.units import keras_size
from paramscope.ops.memory import MemoryEstimate
from paramscope.render.console import ROLE_STYLE, source_line
from paramscope.render.memory import comparison_line, device_line, roles_shown, rows, setup_line


def _table(estimate: MemoryEstimate) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    table.add_column("Part")
    for role in roles_shown(estimate):
        table.add_column(role.capitalize(), justify="right", header_style=f"bold {ROLE_STYLE[role]}")
    table.add_column("Total", justify="right")
    for row in rows(estimate):
        style = "bold" if row.label == "total" else None
        table.add_row(row.label, *row.cells, row.total, style=style)
    return table


class Bullets:
    """One bullet per line, wrapped at the console's width with its later lines indented under
    its first (rich's own wrap starts them at the margin; a grid pads every line with spaces)."""

    def __init__(self, lines: list[str], style: str) -> None:
        self.lines, self.style = lines, style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width - 2, 20)
        for line in self.lines:
            for index, piece in enumerate(textwrap.wrap(line, width, break_on_hyphens=False)):
                yield Text(("- " if index == 0 else "  ") + piece, style=self.style)


def _assumptions(estimate: MemoryEstimate) -> list[RenderableType]:
    return [Text("Assumptions:", style="bold"), Bullets(estimate.assumptions, "dim")]


def renderable(estimate: MemoryEstimate) -> Group:
    total = estimate.total.bytes
    device = device_line(estimate)
    parts: list[RenderableType] = [
        source_line(estimate.report),
        Text(setup_line(estimate, " · "), style="dim"),
        Text(""),
        _table(estimate),
        Text(""),
        Text(f"Training holds {keras_size(total)} ({total:,} bytes).", style="bold"),
        Text(comparison_line(estimate) + ".", style="green"),
        *([Text(device + ".")] if device else []),
        Text(""),
        *_assumptions(estimate),
    ]
    return Group(*parts)
