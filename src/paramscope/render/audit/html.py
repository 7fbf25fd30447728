"""`audit` as HTML: what the training steps did to each role, the findings, the restore proof."""

from __future__ import annotations

from paramscope.ops.audit import Audit
from paramscope.render.audit import role_rows, setup_line
from paramscope.render.html_parts.blocks import details, escape, findings_list, heading, swatch, table
from paramscope.render.html_parts.page import fragment, page


def _verdict_table(audit: Audit) -> str:
    rows = [
        f"<tr><td>{swatch(v.role.value)}</td><td><code>{escape(v.path)}</code></td>"
        f"<td>{'changed' if v.changed else 'unchanged'}</td><td>{escape(v.expected)}</td>"
        f'<td class="num">{v.max_abs_delta:.3g}</td><td>{"yes" if v.ok else "<b class=bad>no</b>"}</td></tr>'
        for v in audit.verdicts
    ]
    return table(
        ["Role", "Tensor", "After the steps", "Expected", "num:max |Δ|", "As expected"], rows, "verdicts"
    )


def audit_block(audit: Audit) -> str:
    """The verdict per role, the findings and whether the model was restored."""
    rows = [
        f"<tr><td>{swatch(role)}</td><td>{escape(text)}</td><td>{'yes' if ok else '<b class=bad>no</b>'}</td></tr>"
        for role, text, ok in role_rows(audit)
    ]
    restored = "yes" if audit.restored else '<b class="bad">no</b>'
    return (
        f'<p class="answer">Audit {"failed" if audit.failed else "passed"}.</p>\n'
        f'<p class="note">{escape(setup_line(audit, " · "))}</p>\n'
        f"{table(['Role', 'What the steps did', 'As expected'], rows, 'audit')}\n"
        f"{findings_list(audit.findings)}\n<p>Restored bit-exactly: {restored}.</p>"
    )


def html(audit: Audit) -> str:
    body = [
        heading(audit.report, f"Audit: {audit.report.root.name}"),
        audit_block(audit),
        _verdict_table(audit),
    ]
    return page(f"paramscope audit: {audit.report.root.name}", "\n".join(body))


def notebook(audit: Audit) -> str:
    body = [heading(audit.report, f"Audit: {audit.report.root.name}"), audit_block(audit)]
    return fragment("\n".join([*body, details("Every tensor", _verdict_table(audit))]))
