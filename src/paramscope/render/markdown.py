"""Markdown: a GitHub-flavoured table of layers and the reading as a list and code block.

A malicious pickle's warning comes first, as a quote block, before the heading; the verdict on
other pickles is a line under the source, and the file's metadata a small table at the end.
"""

from __future__ import annotations

from paramscope.core.printable import visible
from paramscope.core.report import Report, Verdict
from paramscope.render import DEFAULT_DEPTH
from paramscope.render.reading import metadata_rows, reading, type_suffix, verdict_note
from paramscope.render.tree_rows import NodeRow, rows, shape_text, tensor_counts

MARKUP = str.maketrans({char: f"\\{char}" for char in "\\`*_{}[]<>()#+-!|~"})


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _quoted(text: str) -> str:
    """Text written by a file's author, shown as itself: escaped and with no Markdown markup."""
    return visible(text).translate(MARKUP)


def _code(text: str) -> str:
    """A name from a file as a code span (escaped; quoted as text if it holds a backtick)."""
    shown = visible(text)
    return _quoted(shown) if "`" in shown else f"`{shown}`"


def malicious_markdown(report: Report) -> list[str]:
    """The quote block that opens the Markdown of a malicious pickle, or nothing."""
    note = verdict_note(report, _code)
    if note is None or note.verdict is not Verdict.MALICIOUS:
        return []
    lines = [f"> **Malicious pickle.** {note.headline}:", ">"]
    lines += [f"> - {name}: {does}" for name, does in note.names]
    if note.more:
        lines.append(f"> - … and {note.more:,} more")
    return [*lines, ">", f"> {note.consequence}", ""]


def verdict_markdown(report: Report) -> list[str]:
    """The verdict line of a pickle that is not malicious."""
    note = verdict_note(report, _code)
    if note is None or note.verdict is Verdict.MALICIOUS:
        return []
    return [note.headline, ""]


def metadata_markdown(report: Report) -> list[str]:
    found = metadata_rows(report)
    if not found.rows:
        return []
    lines = ["", "| File metadata | Value |", "|---|---|"]
    lines += [f"| {_quoted(key)} | {_cell(_code(value))} |" for key, value in found.rows]
    if found.more:
        lines.append(f"| … and {found.more:,} more keys | |")
    return lines


def render_markdown(report: Report, depth: int | None = DEFAULT_DEPTH, show_tensors: bool = False) -> str:
    source = report.source
    lines = [
        *malicious_markdown(report),
        f"## {report.root.name or '(root)'} ({report.root.type})",
        "",
        f"Source: {source.kind}"
        + (f" {source.framework_version}" if source.framework_version else "")
        + (f", {source.backend} backend" if source.backend and source.kind == "keras" else ""),
        "",
        *verdict_markdown(report),
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
    lines += metadata_markdown(report)
    return "\n".join(lines).rstrip() + "\n"
