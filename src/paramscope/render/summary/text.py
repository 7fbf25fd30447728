"""`summary` as text: the one-line answer, the layer table, then the reading of the numbers.

A file whose pickle is malicious opens with a red panel, before anything else: the user who
looks at its counts is about to load it. The verdict on other pickles is one quiet line under
the source line; the file's metadata is a short block at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.segment import Segment
from rich.text import Text

from paramscope.core.report import Report
from paramscope.render.console import (
    ROLE_STYLE,
    Lines,
    malicious_panel,
    metadata_block,
    source_line,
    verdict_line,
)
from paramscope.render.reading import RoleLine, reading, type_suffix
from paramscope.render.summary.answer import TIED_MARK, answer_line, notes
from paramscope.render.summary.view import LayerRow, TensorRow, View, ViewOptions, build_view
from paramscope.render.tree_rows import output_shape_text, shape_text, tensor_counts, tensor_counts_title

STATUS_STYLE = {"Y": "green", "N": "cyan", "partial": "yellow", "—": "dim"}
MIN_NAME_WIDTH = 16  # below this a name folds onto more lines rather than squeeze further


TENSORS = "Tensors T/F/S"  # the key of the tensor counts column; its heading may add a "/U"
TITLES = ("Output shape", "Trains", TENSORS, "Params", "Trainable")
ALIGN = {"Output shape": "left", "Trains": "center"}  # the others are numbers, right-aligned
DROPPED_FIRST = ("Output shape", TENSORS, "Trainable")  # when names would not fit


@dataclass(frozen=True)
class Column:
    title: str
    cells: list[tuple[str, str]]  # (text, style) per row

    @property
    def width(self) -> int:
        return max(len(self.title), *(len(text) for text, _ in self.cells))

    def padded(self, text: str) -> str:
        align = ALIGN.get(self.title, "right")
        if align == "center":
            return _center(text, self.width)
        return text.ljust(self.width) if align == "left" else text.rjust(self.width)


def _name(row: LayerRow | TensorRow) -> Text:
    """The name cell after the tree guides: label, type, tied mark; a tensor's shape and dtype."""
    if isinstance(row, LayerRow):
        name = Text.assemble((row.label, "dim" if row.rest else "bold"), type_suffix(row.type))
        if row.tied:
            name.append(f" {TIED_MARK} {', '.join(row.tied)}", style="italic")
        return name
    tensor = row.tensor
    label = Text.assemble("· ", row.label, f" {shape_text(tensor)} {tensor.dtype}", style="dim")
    if row.alias_of:
        label.append(f" → {row.alias_of}", style="italic")
    if tensor.persistent is False:
        label.append(" non-persistent", style="italic")
    return label


def _cells(row: LayerRow | TensorRow) -> dict[str, tuple[str, str]]:
    """The row's (text, style) per column title; a tensor row fills only its role and params."""
    if isinstance(row, TensorRow):
        tensor, role = row.tensor, row.tensor.role.value
        params = f"({tensor.params:,})" if tensor.shared_with else f"{tensor.params:,}"
        return {"Trains": (role, ROLE_STYLE[role]), "Params": (params, "")}
    return {
        "Output shape": (output_shape_text(row.output_shape), ""),
        "Trains": (row.status, STATUS_STYLE[row.status]),
        TENSORS: (tensor_counts(_role_counts(row)), ""),
        "Params": (f"{row.totals['all'].params:,}", ""),
        "Trainable": (f"{row.totals['trainable'].params:,}", ""),
    }


def _columns(view: View) -> list[Column]:
    """Every column but the name; the output shape only where some layer knows one."""
    cells = [_cells(row) for row in view.rows]
    has_shape = any(isinstance(row, LayerRow) and row.output_shape for row in view.rows)
    titles = TITLES if has_shape else TITLES[1:]
    heading = {
        TENSORS: tensor_counts_title([_role_counts(row) for row in view.rows if isinstance(row, LayerRow)])
    }
    return [
        Column(heading.get(title, title), [row.get(title, ("", "")) for row in cells]) for title in titles
    ]


def _role_counts(row: LayerRow) -> dict[str, int]:
    return {role: row.totals[role].tensors for role in ("trainable", "frozen", "state", "unknown")}


def _center(text: str, width: int) -> str:
    """Centre as rich does: an odd leftover space goes to the right (str.center varies)."""
    left = (width - len(text)) // 2
    return " " * left + text + " " * (width - len(text) - left)


def _fitted(names: list[Text], columns: list[Column], width: int) -> tuple[int, list[Column]]:
    """The name column's width and the columns kept: names win; decoration goes first."""
    longest = max(len("Layer (type)"), *(name.cell_len for name in names))
    kept = list(columns)
    for title in DROPPED_FIRST:
        if longest + sum(2 + column.width for column in kept) <= width:
            break
        kept = [column for column in kept if not column.title.startswith(title)]
    room = width - sum(2 + column.width for column in kept)
    return max(MIN_NAME_WIDTH, min(longest, room)), kept


def _fold(name: Text, width: int) -> list[Text]:
    """Lines of at most ``width`` cells, each cut after the last `.`, `/` or space that fits, so
    that an identifier stays whole (rich's ``overflow="fold"`` cuts `self_att` / `n.q_proj`);
    a part with no such boundary is cut at the width."""
    plain, cuts, start = name.plain, [], 0
    while len(plain) - start > width:
        window = plain[start : start + width]
        boundary = max(window.rfind("."), window.rfind("/"), window.rfind(" "))
        start += boundary + 1 if boundary > 0 else width
        cuts.append(start)
    return list(name.divide(cuts))


def _continued(prefix: str) -> str:
    """The guides under a row, for its name's folded lines."""
    return prefix.replace("├─ ", "│  ").replace("└─ ", "   ") + "  "


class LayerTable:
    """The layer table, laid out at render time for the terminal's width.

    Each row is pre-padded ``Text`` rather than a rich ``Table``: rich measures and wraps every
    cell several times (slow on thousands of layers) and would cut names and digits alike.
    Here nothing a person needs is cut: at a narrow width decorative columns go first, then a
    long name folds onto the next line, under its guides.
    """

    def __init__(self, view: View) -> None:
        self.view = view
        self.names = [_name(row) for row in view.rows]
        self.columns = _columns(view)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        name_width, columns = _fitted(
            [Text(row.prefix) + name for row, name in zip(self.view.rows, self.names, strict=True)],
            self.columns,
            options.max_width,
        )
        header = Text("Layer (type)".ljust(name_width), style="bold")
        for column in columns:
            header.append("  " + column.padded(column.title), "bold")
        yield from self._line(console, header)
        for index, (row, name) in enumerate(zip(self.view.rows, self.names, strict=True)):
            folded = [name]
            if len(row.prefix) + name.cell_len > name_width:  # fold under the guides, never cut
                folded = _fold(name, max(8, name_width - len(row.prefix) - 2))
            first = Text(row.prefix) + folded[0]
            first.pad_right(name_width - first.cell_len)
            for column in columns:
                text, style = column.cells[index]
                first.append("  ")
                first.append(column.padded(text), style)
            yield from self._line(console, first)
            for more in folded[1:]:
                yield from self._line(console, Text(_continued(row.prefix)) + more)

    @staticmethod
    def _line(console: Console, line: Text) -> RenderResult:
        line.rstrip()
        yield from line.render(console)  # already laid out to width: no wrap pass
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


def renderable(
    report: Report,
    depth: int | None = None,
    show_tensors: bool = False,
    all_layers: bool = False,
    only: str | None = None,
) -> Group:
    """The whole summary as one rich renderable (the CLI prints it with colour on a terminal).
    ``depth`` None adapts the depth to a screen; see render/summary/view.py for the rest."""
    view = build_view(report, ViewOptions(depth, all_layers, only, show_tensors))
    return Group(
        *malicious_panel(report),
        source_line(report),
        *verdict_line(report),
        Text(answer_line(report), style="bold"),
        Text(""),
        LayerTable(view),
        Lines([Text(line, style="dim") for line in notes(report, view)]),
        ReadingBlock(report),
        *metadata_block(report),
    )
