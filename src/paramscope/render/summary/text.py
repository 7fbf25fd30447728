"""`summary` as text: the layer tree as a table, then the reading of the numbers.

A file whose pickle is malicious opens with a red panel, before anything else: the user who
looks at its counts is about to load it. The verdict on other pickles is one quiet line under
the source line; the file's metadata is a short block at the end.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.segment import Segment
from rich.text import Text

from paramscope.core.report import Report
from paramscope.render import DEFAULT_DEPTH
from paramscope.render.console import (
    ROLE_STYLE,
    Lines,
    malicious_panel,
    metadata_block,
    source_line,
    verdict_line,
)
from paramscope.render.reading import RoleLine, reading, type_suffix
from paramscope.render.tree_rows import NodeRow, rows, shape_text, tensor_counts

STATUS_STYLE = {"Y": "green", "N": "cyan", "partial": "yellow", "—": "dim"}


def _row_cells(row) -> tuple[Text, tuple[str, str], str, str, str]:
    """(name, (trains, its style), tensor counts, params, trainable params) of one table row."""
    if isinstance(row, NodeRow):
        return (
            Text.assemble(row.prefix, (row.node.name or "(root)", "bold"), type_suffix(row.node.type)),
            (row.status, STATUS_STYLE[row.status]),
            tensor_counts(row.tensors),
            f"{row.params:,}",
            f"{row.trainable_params:,}",
        )
    tensor = row.tensor
    label = Text.assemble(row.prefix, "· ", tensor.name, f" {shape_text(tensor)} {tensor.dtype}", style="dim")
    if tensor.shared_with:
        label.append(f" → {tensor.shared_with}", style="italic")
    if tensor.persistent is False:
        label.append(" non-persistent", style="italic")
    params = f"({tensor.params:,})" if tensor.shared_with else f"{tensor.params:,}"
    return label, (tensor.role.value, ROLE_STYLE[tensor.role.value]), "", params, ""


def _center(text: str, width: int) -> str:
    """Centre as rich does: an odd leftover space goes to the right (str.center varies)."""
    left = (width - len(text)) // 2
    return " " * left + text + " " * (width - len(text) - left)


class LayerTable:
    """The layer table, laid out at render time: numbers keep their full width, names shrink.

    Each row is one pre-padded ``Text`` line rather than a rich ``Table``: rich measures and
    wraps every cell of a table several times, which dominated the run time on models with
    thousands of layers, and would shrink number columns in proportion (cutting digits off
    parameter counts) when the terminal is narrow. Here only the name column ever shrinks.
    """

    HEADERS = ("Layer (type)", "Trains", "Tensors T/F/S", "Params", "Trainable")

    def __init__(self, report: Report, depth: int | None, show_tensors: bool) -> None:
        self.cells = [_row_cells(row) for row in rows(report, depth, show_tensors)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        trains_width = max(len(self.HEADERS[1]), *(len(cell[1][0]) for cell in self.cells))
        number_widths = [
            max(len(title), *(len(cell[i]) for cell in self.cells))
            for i, title in enumerate(self.HEADERS[2:], start=2)
        ]
        fixed = trains_width + sum(number_widths) + 2 * (1 + len(number_widths))
        longest_name = max(len(self.HEADERS[0]), *(cell[0].cell_len for cell in self.cells))
        name_width = max(6, min(longest_name, options.max_width - fixed))
        header = (Text(self.HEADERS[0]), (self.HEADERS[1], ""), *self.HEADERS[2:])
        for number, (name, (trains, trains_style), *numbers) in enumerate([header, *self.cells]):
            line = name.copy()
            line.truncate(name_width, overflow="ellipsis", pad=True)
            line.append("  ")
            line.append(_center(trains, trains_width), trains_style)
            line.append("".join("  " + n.rjust(w) for n, w in zip(numbers, number_widths, strict=True)))
            line.rstrip()
            if number == 0:
                line.stylize("bold")
            yield from line.render(console)  # already padded and cut to width: no wrap pass
            yield Segment.line()


def _role_lines(roles: list[RoleLine], max_width: int) -> list[Text]:
    """`Trainable  2 tensors · 29,463 params (115.09 KB)  updated by the optimizer`, aligned;
    a note that does not fit beside its numbers goes on the next line, under them."""
    label_width = max(len(line.role) for line in roles)
    text_width = max(len(line.text) for line in roles)
    indent = label_width + 2
    lines = []
    for line in roles:
        label = (line.role.capitalize().ljust(label_width), f"bold {ROLE_STYLE.get(line.role, '')}".strip())
        if indent + text_width + 2 + len(line.note) <= max_width:
            lines.append(Text.assemble(label, "  ", line.text.ljust(text_width), "  ", (line.note, "dim")))
        else:
            lines += [Text.assemble(label, "  ", line.text), Text.assemble(" " * indent, (line.note, "dim"))]
    return lines


class ReadingBlock:
    """The reading under the table: roles in both units, the framework's lines, the sums."""

    def __init__(self, report: Report) -> None:
        self.read = reading(report)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        read = self.read
        lines = [Text(""), *_role_lines(read.roles, options.max_width), Text("")]
        lines.append(Text(read.framework_title + ":", style="bold"))
        lines += [Text(line) for line in read.framework_lines]
        lines += [Text(line, style="dim") for line in read.connections]
        lines += [Text(line) for line in read.extras]
        lines += [Text(f"warning: {line}", style="yellow") for line in read.warnings]
        yield Lines(lines)


def renderable(report: Report, depth: int | None = DEFAULT_DEPTH, show_tensors: bool = False) -> Group:
    """The whole summary as one rich renderable (the CLI prints it with colour on a terminal)."""
    return Group(
        *malicious_panel(report),
        source_line(report),
        *verdict_line(report),
        Text(""),
        LayerTable(report, depth, show_tensors),
        ReadingBlock(report),
        *metadata_block(report),
    )
