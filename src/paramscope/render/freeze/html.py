"""`freeze` as HTML: the rules, the before/after per role as numbers and bars, the code."""

from __future__ import annotations

from paramscope.core.report import RoleTotals
from paramscope.core.units import plural
from paramscope.ops.freeze import FreezePlan
from paramscope.render.html_parts.blocks import SHOWN_ROLES, escape, findings_list, heading, swatch, table
from paramscope.render.html_parts.charts import legend, stacked_bars
from paramscope.render.html_parts.page import fragment, page


def _cell(totals: RoleTotals) -> str:
    return f'<td class="num">{totals.tensors:,}</td><td class="num">{totals.params:,}</td>'


def plan_block(plan: FreezePlan) -> str:
    """What the plan does: its rules, the totals per role before and after, as a table and bars."""
    before, after = plan.report.totals, plan.after
    roles = [r for r in SHOWN_ROLES if before[r].tensors or after[r].tensors]
    rules = "".join(
        f"<li>{escape(rule.action)} <code>{escape(rule.selector)}</code>: {plural(len(nodes), 'layer')}</li>"
        for rule, nodes in plan.selected
    )
    rows = [f"<tr><td>{swatch(role)}</td>{_cell(before[role])}{_cell(after[role])}</tr>" for role in roles]
    head = ["Role", "num:Tensors before", "num:Params before", "num:Tensors after", "num:Params after"]
    bars = [
        (label, {role: totals[role].params for role in roles})
        for label, totals in (("before", before), ("after", after))
    ]
    return (
        f'<p class="note">{escape(plan.semantics)}</p>\n<ul class="rules">{rules}</ul>\n'
        f"{table(head, rows, 'freeze')}\n{stacked_bars(bars)}\n{legend(roles)}\n{_changes(plan)}\n"
        f"{findings_list(plan.findings)}"
    )


def _changes(plan: FreezePlan) -> str:
    """Every layer whose flag the plan changes, tied partners included: what the rules reach
    beyond the layers they name."""
    if not plan.changed:
        return '<p class="note">Nothing changes: the rules match the current flags.</p>'
    items = "".join(
        f"<li><code>{escape(change['path'])}</code> ({escape(change['type'])}): "
        f"{escape(change['before'])} → {escape(change['after'])}</li>"
        for change in plan.changed
    )
    return (
        f"<details><summary>Changed: {plural(len(plan.changed), 'layer')}</summary><ul>{items}</ul></details>"
    )


def _code(plan: FreezePlan) -> str:
    return f"<pre><code>{escape(plan.snippet.rstrip())}</code></pre>" if plan.snippet else ""


def html(plan: FreezePlan) -> str:
    body = [heading(plan.report, f"Freeze plan: {plan.report.root.name}"), plan_block(plan), _code(plan)]
    return page(f"paramscope freeze: {plan.report.root.name}", "\n".join(body))


def notebook(plan: FreezePlan) -> str:
    body = [heading(plan.report, f"Freeze plan: {plan.report.root.name}"), plan_block(plan), _code(plan)]
    return fragment("\n".join(body))
