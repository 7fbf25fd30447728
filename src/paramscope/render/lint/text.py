"""`lint` as text: the source line, then the findings (or that there is none)."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from paramscope.core.report import Report
from paramscope.pitfalls import Finding
from paramscope.render.console import findings_renderables, malicious_panel, source_line


def renderable(linted: tuple[Report, list[Finding]]) -> Group:
    report, findings = linted
    found = findings_renderables(findings) or [Text("No pitfall found.", style="green")]
    return Group(*malicious_panel(report), source_line(report), *found)
