"""`audit` as text: per role what the step did (✓/✗), the tensors that moved or contradict
their role, the findings, and whether everything was restored."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from paramscope.core.report import Role
from paramscope.ops.audit import Audit, Verdict
from paramscope.render.audit import role_rows, setup_line
from paramscope.render.console import ROLE_STYLE, findings_renderables, source_line

MAX_LISTED = 12


def _delta(verdict: Verdict) -> str:
    return f"max |Δ| {verdict.max_abs_delta:.3g}" if verdict.changed else "bit-identical"


def _listed(title: Text, lines: list[str]) -> list[RenderableType]:
    """A titled list of at most MAX_LISTED lines, then how many more; nothing when empty."""
    if not lines:
        return []
    parts: list[RenderableType] = [Text(""), title, *[Text(f"  {line}") for line in lines[:MAX_LISTED]]]
    if len(lines) > MAX_LISTED:
        parts.append(Text(f"  … and {len(lines) - MAX_LISTED} more", style="dim"))
    return parts


def _role_lines(audit: Audit) -> list[RenderableType]:
    return [
        Text.assemble(
            (role.capitalize().ljust(10), f"bold {ROLE_STYLE[role]}"),
            "  ",
            text,
            "  ",
            ("✓", "green") if ok else ("✗", "bold red"),
        )
        for role, text, ok in role_rows(audit)
    ]


def _outcome(audit: Audit) -> list[RenderableType]:
    restored = (
        Text(
            "Restored: every tensor, gradient, mode, optimizer state and RNG bit-identical to before.",
            style="green",
        )
        if audit.restored
        else Text("NOT restored bit-exactly: reload the model before training.", style="bold red")
    )
    verdict = (
        Text("Audit failed: the step contradicts the roles.", style="bold red")
        if audit.failed
        else Text("Audit passed.", style="bold green")
    )
    return [Text(""), restored, verdict]


def renderable(audit: Audit) -> Group:
    moved = [v for v in audit.verdicts if v.changed and v.role is Role.TRAINABLE]
    wrong = [v for v in audit.verdicts if not v.ok]
    parts: list[RenderableType] = [
        source_line(audit.report),
        Text(setup_line(audit, " · "), style="dim"),
        Text(""),
        *_role_lines(audit),
        *_listed(
            Text("Trainable tensors that moved:", style="bold"), [f"{v.path}  {_delta(v)}" for v in moved]
        ),
        *_listed(
            Text("Contradicting the roles:", style="bold red"),
            [f"{v.path} ({v.role.value}, expected {v.expected}): {_delta(v)}" for v in wrong],
        ),
        *findings_renderables(audit.findings),
        *[Text(f"note: {note}", style="cyan") for note in audit.notes],
        *_outcome(audit),
    ]
    return Group(*parts)
