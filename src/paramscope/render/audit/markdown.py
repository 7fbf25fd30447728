"""`audit` as Markdown: a table per role, the findings, the restore proof."""

from __future__ import annotations

from paramscope.ops.audit import Audit
from paramscope.render.audit import role_rows, setup_line
from paramscope.render.markup import findings_markdown


def markdown(audit: Audit) -> str:
    lines = [
        f"## Audit: {audit.report.root.name} — {'failed' if audit.failed else 'passed'}",
        "",
        setup_line(audit, "; "),
        "",
        "| role | what the step did | as expected |",
        "|---|---|---|",
        *[f"| {role} | {text} | {'yes' if ok else '**no**'} |" for role, text, ok in role_rows(audit)],
        "",
        *findings_markdown(audit.findings),
        "",
        f"Restored bit-exactly: {'yes' if audit.restored else '**no**'}.",
        "",
    ]
    return "\n".join(lines)
