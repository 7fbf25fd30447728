"""`diff` as HTML: the one-line summary, the nodes down to a depth, the structural changes
and the changed tensors' statistics, the `--expect-frozen` verdict loudly when it fails."""

from __future__ import annotations

from paramscope.ops.diff import Diff
from paramscope.render.diff import MAX_LISTED, change_cells, node_name, node_rows, side, structure, verdict
from paramscope.render.html_parts.blocks import details, escape, table
from paramscope.render.html_parts.page import fragment, page


def _nodes(diff: Diff) -> str:
    body = [
        f"<tr><td><code>{escape(node_name(node))}</code></td><td>{escape(node.type)}</td>"
        f'<td>{escape(node.status)}</td><td class="num">{node.tensors:,}</td><td class="num">{node.changed:,}</td></tr>'
        for node in node_rows(diff)
    ]
    return table(["Node", "Type", "Status", "num:Tensors", "num:Changed"], body, "nodes")


def _changed(diff: Diff) -> str:
    if not diff.changed:
        return ""
    body = [
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in change_cells(change)) + "</tr>"
        for change in diff.changed[:MAX_LISTED]
    ]
    more = f"<p>… and {len(diff.changed) - MAX_LISTED:,} more</p>" if len(diff.changed) > MAX_LISTED else ""
    return table(["Changed tensor", "max |Δ|", "‖Δ‖/‖A‖", "Elements changed"], body, "changed") + more


def _sections(diff: Diff) -> str:
    return "\n".join(
        details(
            f"{escape(section.title)} ({len(section.lines):,})",
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in section.lines[:MAX_LISTED]) + "</ul>",
        )
        for section in structure(diff)
    )


def _body(diff: Diff) -> str:
    said = verdict(diff)
    css = ' class="bad"' if diff.failed else ""
    return "\n".join(
        [
            f"<h1>Diff: {'failed' if diff.failed else 'changed' if diff.changed or diff.reshaped else 'unchanged'}</h1>",
            f'<p class="source">A: {escape(side(diff.source_a))}<br>B: {escape(side(diff.source_b))}</p>',
            f'<p class="answer">{escape(diff.summary)}</p>',
            f"<p{css}>{escape(said)}.</p>" if said else "",
            _nodes(diff),
            _changed(diff),
            _sections(diff),
            *[f'<p class="note">Note: {escape(note)}</p>' for note in diff.notes],
        ]
    )


def html(diff: Diff) -> str:
    return page("paramscope diff", _body(diff))


def notebook(diff: Diff) -> str:
    return fragment(_body(diff))
