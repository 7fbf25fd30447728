"""`scan` as HTML: one table row per checkpoint, its roles as a small stacked bar."""

from __future__ import annotations

from paramscope.core.units import keras_size
from paramscope.ops.scan import FolderScan, ScanLine
from paramscope.render.html_parts.blocks import SHOWN_ROLES, escape, table
from paramscope.render.html_parts.charts import legend, stacked_bars
from paramscope.render.html_parts.page import fragment, page
from paramscope.render.scan import verdict_text


def _row(line: ScanLine) -> str:
    path = f"<code>{escape(line.shown_path)}</code>"
    if line.error or line.skipped:
        why = f"error: {line.error}" if line.error else f"skipped: {line.skipped}"
        return f'<tr><td>{path}</td><td colspan="4"></td><td class="bad">{escape(why)}</td></tr>'
    pickle = escape(verdict_text(line.pickle)) if line.pickle is not None else ""
    return (
        f"<tr><td>{path}</td><td>{escape(line.kind)}</td><td class='num'>{line.tensors:,}</td>"
        f"<td class='num'>{line.params:,}</td><td class='num'>{keras_size(line.bytes)}</td><td>{pickle}</td></tr>"
    )


def _body(scanned: FolderScan) -> str:
    if not scanned.lines:
        return f"<h1>Scan: {escape(scanned.folder)}</h1><p>No checkpoints.</p>"
    head = ["File", "Format", "num:Tensors", "num:Params", "num:Size", "Pickle or error"]
    read = [line for line in scanned.lines if not (line.error or line.skipped)]
    bars = [(line.shown_path, {role: getattr(line, role) for role in SHOWN_ROLES}) for line in read]
    chart = f"{stacked_bars(bars)}\n{legend(SHOWN_ROLES)}" if bars else ""
    return (
        f"<h1>Scan: {escape(scanned.folder)}</h1>\n{table(head, map(_row, scanned.lines), 'scan')}\n{chart}"
    )


def html(scanned: FolderScan) -> str:
    return page(f"paramscope scan: {scanned.folder}", _body(scanned))


def notebook(scanned: FolderScan) -> str:
    return fragment(_body(scanned))
