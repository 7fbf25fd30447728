"""HTML pieces every command's page and notebook fragment share: escaped text, the role
totals, the framework's own lines, the layer table, collapsible sections.

Names and values may come from a file's author: every one goes through :func:`escape`
(printable, then HTML-escaped), so a layer named ``<script>`` is shown, never run.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator, Mapping

from paramscope.core.printable import visible
from paramscope.core.report import ROLES, Node, Report, Verdict
from paramscope.core.units import keras_size
from paramscope.render.reading import (
    ROLE_NOTES,
    Reading,
    framework_name,
    shown_backend,
    type_suffix,
    verdict_note,
)
from paramscope.render.tree_rows import tensor_counts

SHOWN_ROLES = ("trainable", "frozen", "state", "unknown")


def escape(text: object) -> str:
    """Any text, shown as itself: non-printable characters made visible, markup escaped."""
    return html.escape(visible(str(text)), quote=True)


def swatch(role: str) -> str:
    """A small square in the role's colour, beside the role's name (colour is never alone)."""
    return f'<span class="swatch role-{role}" aria-hidden="true"></span>{escape(role)}'


def details(summary: str, body: str) -> str:
    """A collapsible section (``<details>``), closed: the long part of a view, one click away."""
    return f"<details><summary>{summary}</summary>\n{body}\n</details>"


def table(head: Iterable[str], body_rows: Iterable[str], css_class: str = "", table_id: str = "") -> str:
    """A table from header cells (``num:`` prefix: right-aligned) and prepared ``<tr>`` rows."""
    cells = "".join(
        f'<th class="num">{cell[4:]}</th>' if cell.startswith("num:") else f"<th>{cell}</th>" for cell in head
    )
    attributes = (f' class="{css_class}"' if css_class else "") + (f' id="{table_id}"' if table_id else "")
    return (
        f"<table{attributes}>\n<thead><tr>{cells}</tr></thead>\n<tbody>\n"
        + "\n".join(body_rows)
        + "\n</tbody></table>"
    )


def layers_holding(report: Report) -> dict[str, int]:
    """Layers that own at least one tensor of each role (and of any role, under ``all``),
    each tensor counted at its owner: the third number people confuse with the other two."""
    held = dict.fromkeys((*(role.value for role in ROLES), "all"), 0)
    for node in report.nodes():
        roles = {tensor.role.value for tensor in node.tensors if tensor.counted}
        for role in roles:
            held[role] += 1
        held["all"] += bool(roles)
    return held


def role_table(report: Report) -> str:
    """Layers, tensors and parameters per role: the three numbers side by side."""
    layers = layers_holding(report)
    shown = [r for r in SHOWN_ROLES if r != "unknown" or report.totals[r].tensors]
    body = []
    for role in (*shown, "all"):
        totals = report.totals[role]
        name = swatch(role) if role != "all" else "<b>all</b>"
        note = ROLE_NOTES.get(role, "each tensor counted once")
        body.append(
            f'<tr class="role-{role}"><td>{name}</td><td class="num">{layers[role]:,}</td>'
            f'<td class="num">{totals.tensors:,}</td><td class="num">{totals.params:,}</td>'
            f'<td class="num">{keras_size(totals.bytes)}</td><td class="note">{escape(note)}</td></tr>'
        )
    head = ["Role", "num:Layers with weights", "num:Tensors", "num:Parameters", "num:Size", "Meaning"]
    return table(head, body, "roles")


def framework_block(read: Reading) -> str:
    """The framework's own lines, verbatim, and the sums that connect them to ours."""
    lines = "\n".join(escape(line) for line in read.framework_lines)
    notes = "".join(f"<li>{escape(line)}</li>" for line in read.connections + read.extras)
    warnings = "".join(f'<li class="bad">{escape(line)}</li>' for line in read.warnings)
    return (
        f'<div class="framework"><h2>{escape(read.framework_title)}:</h2>\n<pre>{lines}</pre>\n'
        f"<ul>{notes}{warnings}</ul></div>"
    )


def tree(report: Report, depth: int | None) -> Iterator[tuple[Node, int]]:
    """Every node down to ``depth`` (root = 0, None = all) with its level, in model order."""
    stack = [(report.root, 0)]
    while stack:
        node, level = stack.pop()
        yield node, level
        if depth is None or level < depth:
            stack.extend((child, level + 1) for child in reversed(node.children))


def _layer_row(report: Report, node: Node, level: int, formula: str | None) -> str:
    summary = report.summaries[id(node)]
    totals = summary.totals()
    counts = {role: totals[role].tensors for role in SHOWN_ROLES}
    label = f"{escape(node.name or '(root)')}{escape(type_suffix(node.type))}"
    formula_cell = "" if formula is None else f"<td><code>{escape(formula)}</code></td>"
    return (
        f'<tr data-path="{escape(node.path)}"><td style="padding-left:{0.4 + 1.2 * level:.1f}em">{label}</td>'
        f'<td>{escape(summary.status)}</td><td class="num">{tensor_counts(counts)}</td>'
        f'<td class="num">{totals["all"].params:,}</td><td class="num">{totals["trainable"].params:,}</td>'
        f"{formula_cell}</tr>"
    )


def layer_table(
    report: Report, depth: int | None, formulas: Mapping[str, str] | None = None, table_id: str = ""
) -> str:
    """Every node down to ``depth`` with its subtree's counts; ``formulas`` (node path ->
    explain's formula) adds a column."""
    body = [
        _layer_row(report, node, level, None if formulas is None else formulas.get(node.path, ""))
        for node, level in tree(report, depth)
    ]
    counts = "num:Tensors T/F/S/U" if report.totals["unknown"].tensors else "num:Tensors T/F/S"
    head = ["Layer (type)", "Trains", counts, "num:Params", "num:Trainable"]
    return table([*head, "Formula"] if formulas is not None else head, body, "layer-table", table_id)


SHOWN_TRAINING = 12  # layers listed by name in the compact view


def training_layers(report: Report) -> str:
    """The layers that own trainable tensors, by path, with their trainable parameters."""
    owners = [
        (node, sum(t.params for t in node.tensors if t.counted and t.role.value == "trainable"))
        for node in report.nodes()
        if any(t.counted and t.role.value == "trainable" for t in node.tensors)
    ]
    if not owners:
        return '<p class="train">No layer trains.</p>'
    items = [
        f"<li><code>{escape(node.path or node.name or '(root)')}</code>{escape(type_suffix(node.type))}: "
        f"{params:,} params</li>"
        for node, params in owners[:SHOWN_TRAINING]
    ]
    if len(owners) > SHOWN_TRAINING:
        items.append(f"<li>… and {len(owners) - SHOWN_TRAINING:,} more layers</li>")
    return f'<div class="train"><h2>Layers that train</h2><ul>{"".join(items)}</ul></div>'


def heading(report: Report, title: str | None = None) -> str:
    """The model's name and type, then where it came from (framework, backend, file), then
    the pickle's verdict when the source is one (a malicious one loudly)."""
    source = report.source
    framework = framework_name(source)
    parts = [f"{framework} {source.framework_version}" if source.framework_version else framework]
    if backend := shown_backend(source):
        parts.append(f"{backend} backend")
    if source.path:
        parts.append(source.path)
    name = title or f"{report.root.name or '(root)'}{type_suffix(report.root.type)}"
    lines = [f"<h1>{escape(name)}</h1>", f'<p class="source">{escape(" · ".join(parts))}</p>']
    note = verdict_note(report, lambda text: text)
    if note is not None:
        css = ' class="bad"' if note.verdict is Verdict.MALICIOUS else ""
        names = "".join(f"<li><code>{escape(n)}</code>: {escape(does)}</li>" for n, does in note.names)
        lines.append(f"<p{css}>{escape(note.headline)}</p>" + (f"<ul>{names}</ul>" if names else ""))
        if note.consequence:
            lines.append(f"<p{css}>{escape(note.consequence)}</p>")
    return "\n".join(lines)


def findings_list(findings) -> str:
    """One item per finding: its rule, severity, message and fix."""
    if not findings:
        return '<p class="findings">No pitfall found.</p>'
    items = "".join(
        f'<li class="{escape(f.severity)}"><b>{escape(f.rule)}</b> ({escape(f.severity)}): {escape(f.message)}'
        f" — fix: {escape(f.fix)}</li>"
        for f in findings
    )
    return f'<ul class="findings">{items}</ul>'
