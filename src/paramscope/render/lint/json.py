"""`lint` as JSON: the findings, beside what the file is (its pickle verdict, its metadata)."""

from __future__ import annotations

from paramscope.core.report import Report
from paramscope.pitfalls import Finding
from paramscope.render.envelope import envelope, file_facts, findings_list, source_dict


def document(linted: tuple[Report, list[Finding]]) -> dict:
    report, findings = linted
    return envelope(
        "lint", source_dict(report.source), **file_facts(report), findings=findings_list(findings)
    )
