"""`memory` as HTML: each part of the training memory as a bar split by role, the table of
the same figures, what freezing saved, and the assumptions one click away."""

from __future__ import annotations

from paramscope.core.units import keras_size
from paramscope.ops.memory import MemoryEstimate
from paramscope.render.html_parts.blocks import details, escape, heading, table
from paramscope.render.html_parts.charts import legend, stacked_bars
from paramscope.render.html_parts.page import fragment, page
from paramscope.render.memory import ROWS, comparison_line, device_line, roles_shown, rows, setup_line


def _table(estimate: MemoryEstimate) -> str:
    roles = roles_shown(estimate)
    body = [
        f"<tr><td>{escape(row.label)}</td>"
        + "".join(f'<td class="num">{escape(cell)}</td>' for cell in row.cells)
        + f'<td class="num"><b>{escape(row.total)}</b></td></tr>'
        for row in rows(estimate)
    ]
    return table(["Part", *(f"num:{escape(role)}" for role in roles), "num:Total"], body, "memory")


def memory_block(estimate: MemoryEstimate) -> str:
    """The bars (one per part that costs something), their key, and the lines under them."""
    roles = roles_shown(estimate)
    parts = [
        (label, getattr(estimate, name))
        for name, label in ROWS
        if name != "total" and getattr(estimate, name) is not None
    ]
    bars = [
        (label, {role: part.by_role.get(role, 0) for role in roles}) for label, part in parts if part.bytes
    ]
    device = device_line(estimate)
    notes = "".join(f"<li>{escape(line)}</li>" for line in estimate.assumptions)
    return (
        f'<p class="answer">Training holds {keras_size(estimate.total.bytes)}.</p>\n'
        f'<p class="note">{escape(setup_line(estimate, " · "))}</p>\n'
        f"{stacked_bars(bars, keras_size)}\n{legend(roles)}\n"
        f"<p>{escape(comparison_line(estimate))}.</p>\n"
        + (f"<p>{escape(device)}.</p>\n" if device else "")
        + details("Every figure and the assumptions", f'{_table(estimate)}\n<ul class="note">{notes}</ul>')
    )


def html(estimate: MemoryEstimate) -> str:
    body = [heading(estimate.report, f"Memory: {estimate.report.root.name}"), memory_block(estimate)]
    return page(f"paramscope memory: {estimate.report.root.name}", "\n".join(body))


def notebook(estimate: MemoryEstimate) -> str:
    return fragment(
        f"{heading(estimate.report, f'Memory: {estimate.report.root.name}')}\n{memory_block(estimate)}"
    )
