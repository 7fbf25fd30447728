"""`summary` as HTML: a standalone page (``--format html``) and a notebook fragment.

Both open with the one-line answer and the three numbers per role (layers, tensors,
parameters) beside the framework's own lines. The page then draws the icicle and the whole
layer table; the notebook fragment stays compact — the layers that train, and the rest in
``<details>`` one click away — and carries no script.
"""

from __future__ import annotations

from paramscope.core.report import Report
from paramscope.render import DEFAULT_DEPTH
from paramscope.render.html_parts.blocks import (
    SHOWN_ROLES,
    details,
    escape,
    framework_block,
    heading,
    layer_table,
    role_table,
    training_layers,
)
from paramscope.render.html_parts.charts import icicle, legend
from paramscope.render.html_parts.page import fragment, page
from paramscope.render.reading import reading
from paramscope.render.summary.answer import answer_line


def numbers(report: Report) -> str:
    """The answer, the role totals and the framework's lines: what every view opens with."""
    return (
        f'<p class="answer">{escape(answer_line(report))}</p>\n'
        f'<div class="layers">{role_table(report)}\n{framework_block(reading(report))}</div>'
    )


def chart(report: Report) -> str:
    """The icicle of parameters by node and its colour key."""
    shown = [role for role in SHOWN_ROLES if report.totals[role].params]
    hint = '<p class="note">Each block is a layer, as wide as its parameters; hover one for its counts.</p>'
    return f"{icicle(report)}\n{legend(shown)}\n{hint}"


def html(report: Report, depth: int | None = None, **view: object) -> str:
    """The page ``paramscope summary --format html`` writes: every layer down to ``depth``
    (default: all). The text's other view options (hidden layers, runs, one role, tensors)
    fit a table to a screen; a page scrolls, and its chart shows the whole model."""
    del view
    body = [
        heading(report),
        numbers(report),
        "<h2>Parameters by node</h2>",
        chart(report),
        "<h2>Layers</h2>",
        layer_table(report, depth),
    ]
    return page(f"paramscope summary: {report.root.name}", "\n".join(body))


def notebook(report: Report) -> str:
    """The compact view a notebook shows for a Report."""
    rest = f"{chart(report)}\n{layer_table(report, DEFAULT_DEPTH)}"
    body = [heading(report), numbers(report), training_layers(report), details("Chart and layer table", rest)]
    return fragment("\n".join(body))
