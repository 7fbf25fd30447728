"""`freeze` as JSON: the rules and what each selected, the totals before and after, the code."""

from __future__ import annotations

from paramscope.ops.freeze import FreezePlan
from paramscope.render.envelope import envelope, file_facts, findings_list, source_dict, totals_dict


def document(plan: FreezePlan) -> dict:
    return envelope(
        "freeze",
        source_dict(plan.report.source),
        **file_facts(plan.report),
        rules=[
            {"action": rule.action, "selector": rule.selector, "layers": [node.path for node in nodes]}
            for rule, nodes in plan.selected
        ],
        semantics=plan.semantics,
        before=totals_dict(plan.report.totals),
        after=totals_dict(plan.after),
        changed=plan.changed,
        findings=findings_list(plan.findings),
        snippet=plan.snippet,
        applied=plan.applied,
    )
