"""`scan` as Markdown: a table, one row per file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paramscope.core.printable import visible
from paramscope.core.units import keras_size
from paramscope.ops.scan import ScanLine
from paramscope.render.html_parts.collapsible import collapsible
from paramscope.render.markup import cell, code, quoted
from paramscope.render.scan import verdict_text

if TYPE_CHECKING:
    from paramscope.ops.scan import FolderScan


def _row(line: ScanLine) -> str:
    path = cell(code(line.shown_path))
    if line.error or line.skipped:
        why = f"error: {line.error}" if line.error else f"skipped: {line.skipped}"
        return f"| {path} | | | | | | {cell(quoted(why))} |"
    pickle = cell(verdict_text(line.pickle, code)) if line.pickle is not None else ""
    trainable = f"{line.trainable:,}" if line.trainable else ""
    return (
        f"| {path} | {line.kind} | {line.tensors:,} | {line.params:,} | {keras_size(line.bytes)} | "
        f"{trainable} | {pickle} |"
    )


def markdown(scanned: FolderScan) -> str:
    lines = [f"## Scan: {quoted(visible(scanned.folder))}", ""]
    if not scanned.lines:
        return "\n".join([*lines, "No checkpoints."]) + "\n"
    table = [
        "| File | Format | Tensors | Params | Size | Trainable | Pickle or error |",
        "|---|---|---:|---:|---:|---:|---|",
        *[_row(line) for line in scanned.lines],
    ]
    lines += collapsible(f"{len(scanned.lines):,} files", table, len(scanned.lines))
    return "\n".join(lines) + "\n"
