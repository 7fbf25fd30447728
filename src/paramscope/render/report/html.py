"""The report page: the three numbers per role beside the framework's own lines, the icicle
of parameters by node, the freeze plan, the audit, the memory breakdown, and the layer table
with explain's formulas and a filter box.

Everything is inline (CSS, SVG, a few lines of script for the filter box), so the file opens
offline, alone, and prints. The notebook fragment is the same content without the script.
"""

from __future__ import annotations

from paramscope.render.audit.html import audit_block
from paramscope.render.explain.html import formulas
from paramscope.render.freeze.html import plan_block
from paramscope.render.html_parts.blocks import heading, layer_table
from paramscope.render.html_parts.page import fragment, page
from paramscope.render.memory.html import memory_block
from paramscope.render.report import Overview
from paramscope.render.summary.html import chart, numbers

# Hides the layer table's rows whose text does not hold what is typed in the filter box.
FILTER_SCRIPT = """
document.querySelectorAll("input.filter").forEach(function (box) {
  var table = document.getElementById(box.getAttribute("data-table"));
  box.addEventListener("input", function () {
    var wanted = box.value.toLowerCase();
    table.querySelectorAll("tbody tr").forEach(function (row) {
      row.hidden = wanted !== "" && row.textContent.toLowerCase().indexOf(wanted) < 0;
    });
  });
});
"""


def _as_planned(overview: Overview) -> list[str]:
    """With a freeze plan, a line up front saying which sections show the model as it is and
    which as the plan leaves it, with the plan's numbers: they differ, and both are right."""
    if overview.plan is None:
        return []
    after = overview.plan.after
    trainable, frozen = after["trainable"], after["frozen"]
    planned = "the memory and audit sections" if overview.audit is not None else "the memory section"
    return [
        '<p class="planned"><strong>Now and as planned.</strong> The numbers, the chart and the layer '
        "table show the model as it is now. With the freeze plan applied, "
        f"{trainable.params:,} parameters in {trainable.tensors:,} tensors train and "
        f"{frozen.params:,} in {frozen.tensors:,} are frozen: the plan's before and after, and "
        f"{planned}, show it that way.</p>"
    ]


def _sections(overview: Overview) -> list[str]:
    report = overview.explanation.report
    sections = [
        heading(report),
        *_as_planned(overview),
        numbers(report),
        "<h2>Where the parameters sit</h2>",
        chart(report),
    ]
    if overview.plan is not None:
        sections += ["<h2>Freeze plan: before and after</h2>", plan_block(overview.plan)]
    if overview.audit is not None:
        sections += ["<h2>Audit: a real training step</h2>", audit_block(overview.audit)]
    return [*sections, "<h2>Memory to train</h2>", memory_block(overview.memory)]


def _layers(overview: Overview, with_filter: bool) -> str:
    report = overview.explanation.report
    table = layer_table(report, None, formulas(overview.explanation), table_id="layers")
    box = (
        '<input class="filter" type="search" placeholder="Filter layers (name, type)…" '
        'aria-label="Filter layers" data-table="layers">\n'
        if with_filter
        else ""
    )
    return f"<h2>Layers and their formulas</h2>\n{box}{table}"


def html(overview: Overview) -> str:
    body = "\n".join([*_sections(overview), _layers(overview, with_filter=True)])
    return page(f"paramscope report: {overview.explanation.report.root.name}", body, FILTER_SCRIPT)


def notebook(overview: Overview) -> str:
    return fragment("\n".join([*_sections(overview), _layers(overview, with_filter=False)]))
