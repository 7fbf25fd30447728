"""`freeze` as text: the rules, before and after per role, what changes, findings, the code."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text

from paramscope.core.units import plural
from paramscope.ops.freeze import FreezePlan
from paramscope.render.console import (
    ROLE_STYLE,
    Unwrapped,
    findings_renderables,
    malicious_panel,
    source_line,
)
from paramscope.render.reading import role_cell

MAX_CHANGED = 20


def code_block(code: str) -> Unwrapped:
    """Python to paste: highlighted, never wrapped or cut at the terminal's width (a wrapped
    line is a SyntaxError)."""
    return Unwrapped(Syntax(code, "python", theme="ansi_dark").highlight(code).split("\n"))


def _before_after(plan: FreezePlan) -> list[RenderableType]:
    """`Trainable  2 tensors · 18 params  0 tensors · 0 params` per role, the changed cell bold."""
    before, after = plan.report.totals, plan.after
    rows = [
        (role, role_cell(before[role]), role_cell(after[role]))
        for role in ("trainable", "frozen", "state", "unknown")
        if role != "unknown" or before[role].tensors
    ]
    width = max(len(b) for _, b, _ in rows)
    heading = f"{'':10}  {'before'.ljust(width)}  {'applied' if plan.applied else 'after'}"
    lines: list[RenderableType] = [Text(""), Text(heading, style="bold")]
    for role, b, a in rows:
        lines.append(
            Text.assemble(
                (role.capitalize().ljust(10), f"bold {ROLE_STYLE[role]}"),
                "  ",
                b.ljust(width),
                "  ",
                (a, "bold" if a != b else ""),
            )
        )
    return lines


def _changes(plan: FreezePlan) -> list[RenderableType]:
    if not plan.changed:
        return [Text(""), Text("Nothing changes: the rules match the current flags.", style="yellow")]
    lines: list[RenderableType] = [
        Text(""),
        Text(f"Changed: {plural(len(plan.changed), 'layer')}", style="bold"),
    ]
    for change in plan.changed[:MAX_CHANGED]:
        lines.append(Text(f"  {change['path']} ({change['type']}): {change['before']} → {change['after']}"))
    if len(plan.changed) > MAX_CHANGED:
        lines.append(Text(f"  … and {len(plan.changed) - MAX_CHANGED} more", style="dim"))
    return lines


def renderable(plan: FreezePlan) -> Group:
    parts: list[RenderableType] = [
        *malicious_panel(plan.report),
        source_line(plan.report),
        Text(plan.semantics, style="dim"),
        Text(""),
    ]
    parts += [
        Text(f"{rule.action} {rule.selector}: {plural(len(nodes), 'layer')}") for rule, nodes in plan.selected
    ]
    parts += _before_after(plan)
    parts += _changes(plan)
    parts += findings_renderables(plan.findings)
    parts += [Text(""), Text("Code:", style="bold"), code_block(plan.snippet.rstrip())]
    return Group(*parts)
