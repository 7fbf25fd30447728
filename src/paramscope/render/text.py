"""Terminal output with rich: the layer tree as a table, then the reading of the numbers."""

from __future__ import annotations

import io

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text

from paramscope.core.report import Report
from paramscope.render.reading import reading
from paramscope.render.tree_rows import NodeRow, rows, shape_text, tensor_counts

DEFAULT_DEPTH = 2
ROLE_STYLE = {"trainable": "green", "frozen": "cyan", "state": "magenta", "unknown": "yellow"}
STATUS_STYLE = {"Y": "green", "N": "cyan", "partial": "yellow", "—": "dim"}


def source_line(report: Report) -> Text:
    """`name (Type)  Framework version · backend · path`, the first line of every text output."""
    source = report.source
    framework = {"keras": "Keras", "tf_keras": "tf.keras", "torch": "PyTorch"}.get(source.kind, source.kind)
    parts = [f"{framework} {source.framework_version}" if source.framework_version else framework]
    if source.backend and source.kind == "keras":
        parts.append(f"{source.backend} backend")
    if source.path:
        parts.append(source.path)
    text = Text.assemble((report.root.name, "bold"), f" ({report.root.type})  ", (" · ".join(parts), "dim"))
    return text


def _row_cells(row) -> tuple[Text, Text, str, str, str]:
    if isinstance(row, NodeRow):
        status = row.status
        return (
            Text.assemble(row.prefix, (row.node.name or "(root)", "bold"), f" ({row.node.type})"),
            Text(status, style=STATUS_STYLE[status]),
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
    return label, Text(tensor.role.value, style=ROLE_STYLE[tensor.role.value]), "", params, ""


class LayerTable:
    """The layer table, laid out at render time: numbers keep their full width, names shrink.

    Each row is one pre-padded ``Text`` line rather than a rich ``Table``: rich measures and
    wraps every cell of a table several times, which dominated the run time on models with
    thousands of layers, and would shrink number columns in proportion (cutting digits off
    parameter counts) when the terminal is narrow. Here only the name column ever shrinks.
    """

    HEADERS = ("Layer (type)", "Trains", "Tensors T/F/S", "Params", "Trainable")
    JUSTIFY = ("center", "right", "right", "right")

    def __init__(self, report: Report, depth: int | None, show_tensors: bool) -> None:
        self.cells = [_row_cells(row) for row in rows(report, depth, show_tensors)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = [
            max(len(title), *(len(str(cell[i])) for cell in self.cells))
            for i, title in enumerate(self.HEADERS[1:], start=1)
        ]
        longest_name = max(len(self.HEADERS[0]), *(len(cell[0]) for cell in self.cells))
        name_width = max(6, min(longest_name, options.max_width - sum(widths) - 2 * len(widths)))
        header = [Text(title, style="bold") for title in self.HEADERS]
        for cell in [header, *self.cells]:
            line = Text(no_wrap=True, overflow="ellipsis", end="")
            name = cell[0].copy() if isinstance(cell[0], Text) else Text(cell[0])
            name.truncate(name_width, overflow="ellipsis", pad=True)
            line.append_text(name)
            for value, width, justify in zip(cell[1:], widths, self.JUSTIFY, strict=True):
                text = value.copy() if isinstance(value, Text) else Text(value)
                text.align(justify, width)
                line.append("  ")
                line.append_text(text)
            line.rstrip()
            yield line
            yield Segment.line()


class RoleLines:
    """`Trainable  2 tensors · 29,463 params (115.09 KB)  updated by the optimizer`, aligned.

    Laid out by hand (a rich Table costs more than the whole model walk); a note that does
    not fit beside its numbers goes on the next line, under them.
    """

    def __init__(self, roles) -> None:
        self.roles = roles

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        label_width = max(len(line.role) for line in self.roles)
        text_width = max(len(line.text) for line in self.roles)
        indent = label_width + 2
        for line in self.roles:
            label = (
                line.role.capitalize().ljust(label_width),
                f"bold {ROLE_STYLE.get(line.role, '')}".strip(),
            )
            if indent + text_width + 2 + len(line.note) <= options.max_width:
                yield Text.assemble(label, "  ", line.text.ljust(text_width), "  ", (line.note, "dim"))
            else:
                yield Text.assemble(label, "  ", line.text)
                yield Text.assemble(" " * indent, (line.note, "dim"))


def _reading_block(report: Report) -> RenderableType:
    read = reading(report)
    parts: list[RenderableType] = [Text(""), RoleLines(read.roles)]
    parts += [
        Text(""),
        Text(read.framework_title + ":", style="bold"),
    ]
    parts += [Text(line) for line in read.framework_lines]
    parts += [Text(line, style="dim") for line in read.connections]
    parts += [Text(line) for line in read.extras]
    parts += [Text(f"warning: {line}", style="yellow") for line in read.warnings]
    return Group(*parts)


def summary_renderable(
    report: Report, depth: int | None = DEFAULT_DEPTH, show_tensors: bool = False
) -> Group:
    """The whole summary as one rich renderable (the CLI prints it with colour on a terminal)."""
    return Group(
        source_line(report),
        Text(""),
        LayerTable(report, depth, show_tensors),
        _reading_block(report),
    )


def render_text(
    report: Report, depth: int | None = DEFAULT_DEPTH, show_tensors: bool = False, width: int = 100
) -> str:
    """The summary as plain text (no colour), for files and golden tests."""
    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False
    )
    console.print(summary_renderable(report, depth, show_tensors))
    return console.file.getvalue()


__all__ = ["DEFAULT_DEPTH", "render_text", "summary_renderable"]
