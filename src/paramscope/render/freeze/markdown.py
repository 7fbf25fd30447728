"""`freeze` as Markdown: the rules, a before/after table per role, the code block."""

from __future__ import annotations

from paramscope.core.units import plural
from paramscope.ops.freeze import FreezePlan
from paramscope.render.reading import role_cell


def markdown(plan: FreezePlan) -> str:
    before, after = plan.report.totals, plan.after
    lines = [
        f"## Freeze plan: {plan.report.root.name}",
        "",
        plan.semantics,
        "",
        *[
            f"- {rule.action} `{rule.selector}`: {plural(len(nodes), 'layer')}"
            for rule, nodes in plan.selected
        ],
        "",
        "| role | before | after |",
        "|---|---|---|",
    ]
    lines += [
        f"| {role} | {role_cell(before[role])} | {role_cell(after[role])} |"
        for role in ("trainable", "frozen", "state")
    ]
    lines += ["", "```python", plan.snippet.rstrip(), "```", ""]
    return "\n".join(lines)
