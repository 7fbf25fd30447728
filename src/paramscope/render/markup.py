"""What every command's Markdown shares: escaping, the source line, the pickle's verdict and
metadata, findings. Plain strings: Markdown never imports rich.

A malicious pickle's warning comes first, as a quote block, before the heading; the verdict
on other pickles is a line under the source, and the file's metadata a small table at the end.
"""

from __future__ import annotations

from paramscope.core.printable import visible
from paramscope.core.report import Report, Source, Verdict
from paramscope.render.reading import metadata_rows, shown_backend, verdict_note

MARKUP = str.maketrans({char: f"\\{char}" for char in "\\`*_{}[]<>()#+-!|~"})


def cell(text: str) -> str:
    """Text inside a table cell: its pipes escaped."""
    return text.replace("|", "\\|")


def quoted(text: str) -> str:
    """Text written by a file's author, shown as itself: escaped and with no Markdown markup."""
    return visible(text).translate(MARKUP)


def code(text: str) -> str:
    """A name from a file as a code span (escaped; quoted as text if it holds a backtick)."""
    shown = visible(text)
    return quoted(shown) if "`" in shown else f"`{shown}`"


def source_markdown(source: Source) -> str:
    """`Source: keras 3.15.1, torch backend`."""
    version = f" {source.framework_version}" if source.framework_version else ""
    backend = shown_backend(source)
    return f"Source: {source.kind.value}{version}" + (f", {backend} backend" if backend else "")


def malicious_markdown(report: Report) -> list[str]:
    """The quote block that opens the Markdown of a malicious pickle, or nothing."""
    note = verdict_note(report, code)
    if note is None or note.verdict is not Verdict.MALICIOUS:
        return []
    lines = [f"> **Malicious pickle.** {note.headline}:", ">"]
    lines += [f"> - {name}: {does}" for name, does in note.names]
    if note.more:
        lines.append(f"> - … and {note.more:,} more")
    return [*lines, ">", f"> {note.consequence}", ""]


def verdict_markdown(report: Report) -> list[str]:
    """The verdict line of a pickle that is not malicious."""
    note = verdict_note(report, code)
    if note is None or note.verdict is Verdict.MALICIOUS:
        return []
    return [note.headline, ""]


def metadata_markdown(report: Report) -> list[str]:
    """The file's metadata as a two-column table (at most 12 keys and how many more)."""
    found = metadata_rows(report)
    if not found.rows:
        return []
    lines = ["", "| File metadata | Value |", "|---|---|"]
    lines += [f"| {quoted(key)} | {cell(code(value))} |" for key, value in found.rows]
    if found.more:
        lines.append(f"| … and {found.more:,} more keys | |")
    return lines


def findings_markdown(findings) -> list[str]:
    """One list item per finding: its rule, message and fix."""
    return [f"- **{finding.rule}**: {finding.message} — fix: {finding.fix}" for finding in findings]
