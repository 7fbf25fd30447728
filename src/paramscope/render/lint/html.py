"""`lint` as HTML: the source and one item per finding."""

from __future__ import annotations

from paramscope.core.report import Report
from paramscope.core.units import plural
from paramscope.pitfalls import Finding
from paramscope.render.html_parts.blocks import findings_list, heading
from paramscope.render.html_parts.page import fragment, page


def _body(linted: tuple[Report, list[Finding]]) -> str:
    report, findings = linted
    found = plural(len(findings), "finding") if findings else "no pitfall found"
    title = f"Lint: {report.root.name or '(root)'} — {found}"
    return f"{heading(report, title)}\n{findings_list(findings)}"


def html(linted: tuple[Report, list[Finding]]) -> str:
    return page(f"paramscope lint: {linted[0].root.name}", _body(linted))


def notebook(linted: tuple[Report, list[Finding]]) -> str:
    return fragment(_body(linted))
