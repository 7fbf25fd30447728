"""What every command's text output shares, in rich: styles, the source line, the pickle's
verdict and metadata, findings, and printing without colour.

Only the text renderers import this module (and with it rich); JSON and Markdown never do.
"""

from __future__ import annotations

import io

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.text import Text

from paramscope.core.report import Report, Verdict
from paramscope.render.reading import framework_name, metadata_rows, shown_backend, verdict_note

ROLE_STYLE = {"trainable": "green", "frozen": "cyan", "state": "magenta", "unknown": "yellow"}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
VERDICT_STYLE = {Verdict.NEEDS_CODE: "yellow", Verdict.DATA_ONLY: "dim"}


def plain_text(renderable: RenderableType, width: int) -> str:
    """Any renderable as plain text without colour: for files, --output and golden tests."""
    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False
    )
    console.print(renderable, crop=False)  # code blocks run past the width rather than break
    return console.file.getvalue()


def source_line(report: Report) -> Text:
    """`name (Type)  Framework version · backend · path`, the first line of every text output."""
    source = report.source
    framework = framework_name(source)
    parts = [f"{framework} {source.framework_version}" if source.framework_version else framework]
    backend = shown_backend(source)
    if backend:
        parts.append(f"{backend} backend")
    if source.path:
        parts.append(source.path)
    shown_type = f" ({report.root.type})" if report.root.type else ""  # files may store no layer types
    return Text.assemble((report.root.name, "bold"), f"{shown_type}  ", (" · ".join(parts), "dim"))


class Lines:
    """Text lines, each wrapped by rich only when it does not fit.

    rich's wrap pass costs more than everything else in a short summary; most of our lines
    are shorter than the terminal and are rendered as they are.
    """

    def __init__(self, lines: list[Text]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            if line.cell_len <= options.max_width:
                yield from line.render(console)
                yield Segment.line()
            else:
                yield line


class Truncated:
    """Text lines cut to the terminal's width with an ellipsis, never wrapped: a block that
    promises a number of lines keeps it on a narrow terminal."""

    def __init__(self, lines: list[Text]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            line = line.copy()
            line.truncate(options.max_width, overflow="ellipsis")
            yield from line.render(console)
            yield Segment.line()


class Unwrapped:
    """Text lines printed whole, never wrapped or cut at the terminal's width: records that
    tools split and grep (a scan line per file) and code to paste stay one line each. Printed
    with ``crop=False``, they run as long as they are."""

    def __init__(self, lines: list[Text]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            yield from line.render(console)
            yield Segment.line()


def malicious_panel(report: Report) -> list[RenderableType]:
    """The red panel of a malicious pickle (and a blank line), or nothing: what every text
    output about such a file shows first."""
    note = verdict_note(report)
    if note is None or note.verdict is not Verdict.MALICIOUS:
        return []
    body = Text(note.headline + ":\n")
    width = max((len(name) for name, _ in note.names), default=0)
    for name, does in note.names:
        body.append_text(Text.assemble("  ", (name.ljust(width), "bold"), "  ", does, "\n"))
    if note.more:
        body.append(f"  … and {note.more:,} more\n", style="dim")
    body.append(note.consequence)
    title = Text("MALICIOUS PICKLE", style="bold red")
    return [Panel(body, title=title, title_align="left", border_style="bold red"), Text("")]


def verdict_line(report: Report) -> list[Text]:
    """The one line of a pickle that is not malicious (the panel says the rest)."""
    note = verdict_note(report)
    if note is None or note.verdict is Verdict.MALICIOUS:
        return []
    return [Text(note.headline, style=VERDICT_STYLE[note.verdict])]


def metadata_block(report: Report) -> list[RenderableType]:
    """`File metadata:` and its top-level keys, one short line each (at most 14 lines)."""
    found = metadata_rows(report)
    if not found.rows:
        return []
    width = max(len(key) for key, _ in found.rows)
    lines = [Text(""), Text("File metadata:", style="bold")]
    lines += [Text.assemble("  ", (key.ljust(width), "bold"), "  ", value) for key, value in found.rows]
    if found.more:
        lines.append(Text(f"  … and {found.more:,} more keys (--format json lists them all)", style="dim"))
    return [Truncated(lines)]


def findings_renderables(findings) -> list[RenderableType]:
    """`Findings:`, then per finding its severity, rule and message, and the fix with references."""
    if not findings:
        return []
    parts: list[RenderableType] = [Text(""), Text("Findings:", style="bold")]
    for finding in findings:
        parts.append(
            Text.assemble(
                (f"{finding.severity} ", SEVERITY_STYLE[finding.severity]),
                (f"[{finding.rule}] ", "bold"),
                finding.message,
            )
        )
        reference = f"  ({finding.reference})" if finding.reference else ""
        parts.append(Text(f"  fix: {finding.fix}{reference}", style="dim"))
    return parts
