"""`memory` as Markdown: the parts by role in one table, then what freezing saved and the
rules applied."""

from __future__ import annotations

from paramscope.core.printable import visible
from paramscope.core.units import keras_size
from paramscope.ops.memory import MemoryEstimate
from paramscope.render.markup import quoted, source_markdown
from paramscope.render.memory import comparison_line, device_line, roles_shown, rows, setup_line


def _table(estimate: MemoryEstimate) -> list[str]:
    roles = roles_shown(estimate)
    lines = [
        "| part | " + " | ".join(roles) + " | total |",
        "|---|" + "---:|" * (len(roles) + 1),
    ]
    for row in rows(estimate):
        cells = [f"**{cell}**" if row.label == "total" and cell else cell for cell in (*row.cells, row.total)]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return lines


def markdown(estimate: MemoryEstimate) -> str:
    total = estimate.total.bytes
    device = device_line(estimate)
    lines = [
        f"## Memory: {quoted(estimate.report.root.name)} — {keras_size(total)}",
        "",
        f"{source_markdown(estimate.report.source)}; {setup_line(estimate, ', ')}",
        "",
        *_table(estimate),
        "",
        f"Training holds {total:,} bytes. {comparison_line(estimate)}.",
        *([f"{device}."] if device else []),
        "",
        "Assumptions:",
        "",
        *[f"- {visible(line)}" for line in estimate.assumptions],
    ]
    return "\n".join(lines) + "\n"
