"""Rendering an audit: what the step did per role, the findings, and the restore proof."""

from __future__ import annotations

import json

from rich.console import Group, RenderableType
from rich.text import Text

from paramscope.core.report import Role
from paramscope.core.units import plural
from paramscope.ops.audit import Audit, Verdict
from paramscope.render.freeze import findings_renderables
from paramscope.render.json import SCHEMA_VERSION, source_dict
from paramscope.render.text import ROLE_STYLE, plain_text, source_line

MAX_LISTED = 12


def role_rows(audit: Audit) -> list[tuple[str, str, bool]]:
    """(role, "k of n changed, as expected", all as expected) per role present."""
    rows = []
    for role in (Role.TRAINABLE, Role.FROZEN, Role.STATE, Role.UNKNOWN):
        verdicts = [v for v in audit.verdicts if v.role is role]
        if not verdicts:
            continue
        changed = sum(v.changed for v in verdicts)
        expectation = {
            Role.TRAINABLE: "must change",
            Role.FROZEN: "must stay bit-identical",
            Role.STATE: "may change, except in a frozen part",
            Role.UNKNOWN: "no expectation",
        }[role]
        rows.append(
            (
                role.value,
                f"{changed} of {plural(len(verdicts), 'tensor')} changed ({expectation})",
                all(v.ok for v in verdicts),
            )
        )
    return rows


def _delta(verdict: Verdict) -> str:
    return f"max |Δ| {verdict.max_abs_delta:.3g}" if verdict.changed else "bit-identical"


def audit_renderable(audit: Audit) -> Group:
    parts: list[RenderableType] = [
        source_line(audit.report),
        Text(
            f"{plural(audit.steps, 'train step')} · optimizer: {audit.optimizer} · loss: {audit.loss} · "
            f"inputs: {audit.inputs}",
            style="dim",
        ),
        Text(""),
    ]
    for role, text, ok in role_rows(audit):
        parts.append(
            Text.assemble(
                (role.capitalize().ljust(10), f"bold {ROLE_STYLE[role]}"),
                "  ",
                text,
                "  ",
                ("✓", "green") if ok else ("✗", "bold red"),
            )
        )
    moved = [v for v in audit.verdicts if v.changed and v.role is Role.TRAINABLE]
    if moved:
        parts += [Text(""), Text("Trainable tensors that moved:", style="bold")]
        parts += [Text(f"  {v.path}  {_delta(v)}") for v in moved[:MAX_LISTED]]
        if len(moved) > MAX_LISTED:
            parts.append(Text(f"  … and {len(moved) - MAX_LISTED} more", style="dim"))
    wrong = [v for v in audit.verdicts if not v.ok]
    if wrong:
        parts += [Text(""), Text("Contradicting the roles:", style="bold red")]
        parts += [
            Text(f"  {v.path} ({v.role.value}, expected {v.expected}): {_delta(v)}")
            for v in wrong[:MAX_LISTED]
        ]
        if len(wrong) > MAX_LISTED:
            parts.append(Text(f"  … and {len(wrong) - MAX_LISTED} more", style="dim"))
    parts += findings_renderables(audit.findings)
    parts += [Text(f"note: {note}", style="cyan") for note in audit.notes]
    parts += [
        Text(""),
        Text(
            "Restored: every tensor, gradient, mode, optimizer state and RNG bit-identical to before.",
            style="green",
        )
        if audit.restored
        else Text("NOT restored bit-exactly: reload the model before training.", style="bold red"),
        Text(
            "Audit failed: the step contradicts the roles." if audit.failed else "Audit passed.",
            style="bold red" if audit.failed else "bold green",
        ),
    ]
    return Group(*parts)


def render_audit_text(audit: Audit, width: int = 100) -> str:
    return plain_text(audit_renderable(audit), width)


def audit_dict(audit: Audit) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source_dict(audit.report.source),
        "passed": not audit.failed,
        "steps": audit.steps,
        "optimizer": audit.optimizer,
        "loss": audit.loss,
        "inputs": audit.inputs,
        "findings": [finding.as_dict() for finding in audit.findings],
        "changed": audit.changed,
        "unchanged": audit.unchanged,
        "restored": audit.restored,
        "tensors": [
            {
                "path": v.path,
                "role": v.role.value,
                "expected": v.expected,
                "changed": v.changed,
                "max_abs_delta": v.max_abs_delta,
                "ok": v.ok,
            }
            for v in audit.verdicts
        ],
        "notes": audit.notes,
    }


def render_audit_markdown(audit: Audit) -> str:
    lines = [
        f"## Audit: {audit.report.root.name} — {'failed' if audit.failed else 'passed'}",
        "",
        f"{plural(audit.steps, 'train step')}; optimizer: {audit.optimizer}; loss: {audit.loss}; inputs: {audit.inputs}",
        "",
        "| role | what the step did | as expected |",
        "|---|---|---|",
        *[f"| {role} | {text} | {'yes' if ok else '**no**'} |" for role, text, ok in role_rows(audit)],
        "",
    ]
    for finding in audit.findings:
        lines += [f"- **{finding.rule}**: {finding.message} — fix: {finding.fix}"]
    lines += [
        "",
        f"Restored bit-exactly: {'yes' if audit.restored else '**no**'}.",
        "",
    ]
    return "\n".join(lines)


AUDIT_RENDERERS = {
    "text": render_audit_text,
    "json": lambda audit: json.dumps(audit_dict(audit), indent=2) + "\n",
    "md": render_audit_markdown,
}
