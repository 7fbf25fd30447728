"""`lint` as Markdown: a heading, the source, one list item per finding."""

from __future__ import annotations

from paramscope.core.report import Report
from paramscope.core.units import plural
from paramscope.pitfalls import Finding
from paramscope.render.markup import findings_markdown, malicious_markdown, source_markdown
from paramscope.render.reading import type_suffix


def markdown(linted: tuple[Report, list[Finding]]) -> str:
    report, findings = linted
    found = plural(len(findings), "finding") if findings else "no pitfall found"
    lines = [
        *malicious_markdown(report),
        f"## Lint: {report.root.name or '(root)'}{type_suffix(report.root.type)} — {found}",
        "",
        source_markdown(report.source),
        "",
        *findings_markdown(findings),
    ]
    return "\n".join(lines).rstrip() + "\n"
