"""Rendering a freeze plan: before and after per role, what changed, and the code."""

from __future__ import annotations

import json

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.syntax import Syntax
from rich.text import Text

from paramscope.core.units import plural
from paramscope.ops.freeze import FreezePlan
from paramscope.render.json import SCHEMA_VERSION, file_facts, source_dict
from paramscope.render.text import ROLE_STYLE, malicious_panel, plain_text, source_line

MAX_CHANGED = 20


class CodeBlock:
    """Python to paste: highlighted, never wrapped or cut at the terminal's width (a wrapped line
    is a SyntaxError). Printed with ``crop=False``, its lines run as long as they are."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        highlighted = Syntax(self.code, "python", theme="ansi_dark").highlight(self.code)
        for line in highlighted.split("\n"):
            yield from line.render(console)
            yield Segment.line()


def _cell(totals) -> str:
    return f"{plural(totals.tensors, 'tensor')} · {plural(totals.params, 'param')}"


def freeze_renderable(plan: FreezePlan) -> Group:
    before, after = plan.report.totals, plan.after
    rows = [
        (role, _cell(before[role]), _cell(after[role]))
        for role in ("trainable", "frozen", "state", "unknown")
        if role != "unknown" or before[role].tensors
    ]
    width = max(len(b) for _, b, _ in rows)
    parts: list[RenderableType] = [
        *malicious_panel(plan.report),
        source_line(plan.report),
        Text(plan.semantics, style="dim"),
        Text(""),
    ]
    for rule, nodes in plan.selected:
        parts.append(Text(f"{rule.action} {rule.selector}: {plural(len(nodes), 'layer')}"))
    parts += [
        Text(""),
        Text(f"{'':10}  {'before'.ljust(width)}  {'applied' if plan.applied else 'after'}", style="bold"),
    ]
    for role, b, a in rows:
        parts.append(
            Text.assemble(
                (role.capitalize().ljust(10), f"bold {ROLE_STYLE[role]}"),
                "  ",
                b.ljust(width),
                "  ",
                (a, "bold" if a != b else ""),
            )
        )
    if plan.changed:
        parts += [Text(""), Text(f"Changed: {plural(len(plan.changed), 'layer')}", style="bold")]
        for change in plan.changed[:MAX_CHANGED]:
            parts.append(
                Text(f"  {change['path']} ({change['type']}): {change['before']} → {change['after']}")
            )
        if len(plan.changed) > MAX_CHANGED:
            parts.append(Text(f"  … and {len(plan.changed) - MAX_CHANGED} more", style="dim"))
    else:
        parts += [Text(""), Text("Nothing changes: the rules match the current flags.", style="yellow")]
    parts += findings_renderables(plan.findings)
    parts += [
        Text(""),
        Text("Code:", style="bold"),
        CodeBlock(plan.snippet.rstrip()),
    ]
    return Group(*parts)


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def findings_renderables(findings) -> list[RenderableType]:
    if not findings:
        return []
    parts: list[RenderableType] = [Text(""), Text("Findings:", style="bold")]
    for finding in findings:
        parts.append(
            Text.assemble(
                (f"{finding.severity} ", SEVERITY_STYLE[finding.severity]),
                (f"[{finding.rule}] ", "bold"),
                finding.message,
            )
        )
        reference = f"  ({finding.reference})" if finding.reference else ""
        parts.append(Text(f"  fix: {finding.fix}{reference}", style="dim"))
    return parts


def render_freeze_text(plan: FreezePlan, width: int = 100) -> str:
    return plain_text(freeze_renderable(plan), width)


def freeze_dict(plan: FreezePlan) -> dict:
    source = plan.report.source
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source_dict(source),
        **file_facts(plan.report),
        "rules": [
            {"action": r.action, "selector": r.selector, "layers": [n.path for n in nodes]}
            for r, nodes in plan.selected
        ],
        "semantics": plan.semantics,
        "before": {role: t.as_dict() for role, t in plan.report.totals.items()},
        "after": {role: t.as_dict() for role, t in plan.after.items()},
        "changed": plan.changed,
        "findings": [finding.as_dict() for finding in plan.findings],
        "snippet": plan.snippet,
        "applied": plan.applied,
    }


def render_freeze_markdown(plan: FreezePlan) -> str:
    before, after = plan.report.totals, plan.after
    lines = [
        f"## Freeze plan: {plan.report.root.name}",
        "",
        plan.semantics,
        "",
        *[f"- {r.action} `{r.selector}`: {plural(len(n), 'layer')}" for r, n in plan.selected],
        "",
        "| role | before | after |",
        "|---|---|---|",
    ]
    lines += [
        f"| {role} | {_cell(before[role])} | {_cell(after[role])} |"
        for role in ("trainable", "frozen", "state")
    ]
    lines += ["", "```python", plan.snippet.rstrip(), "```", ""]
    return "\n".join(lines)


FREEZE_RENDERERS = {
    "text": render_freeze_text,
    "json": lambda plan: json.dumps(freeze_dict(plan), indent=2) + "\n",
    "md": render_freeze_markdown,
}
