"""`summary` as JSON: the report whole — every node and tensor, the totals, both frameworks'
conventions — whatever the depth the text shows."""

from __future__ import annotations

from paramscope.core.conventions import conventions
from paramscope.core.report import Report
from paramscope.render.envelope import (
    envelope,
    file_facts,
    group_dict,
    node_dict,
    source_dict,
    totals_dict,
)


def document(report: Report) -> dict:
    return envelope(
        "summary",
        source_dict(report.source),
        **file_facts(report),
        totals=totals_dict(report.totals),
        conventions=conventions(report),
        root=node_dict(report.root),
        optimizer=group_dict(report.optimizer),
        metrics=group_dict(report.metrics),
        constants=group_dict(report.constants),
        compiled_trainable=report.compiled_trainable,
        warnings=list(report.warnings),
    )
