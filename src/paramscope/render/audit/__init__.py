"""`audit`: what a real training step did to each role, the findings, and the restore proof.

What its text and Markdown both say is computed here, as plain data.
"""

from __future__ import annotations

from paramscope.core.report import Role
from paramscope.core.units import plural
from paramscope.ops.audit import Audit

EXPECTATIONS = {
    Role.TRAINABLE: "must change",
    Role.FROZEN: "must stay bit-identical",
    Role.STATE: "may change, except in a frozen part",
    Role.UNKNOWN: "no expectation",
}


def role_rows(audit: Audit) -> list[tuple[str, str, bool]]:
    """(role, "k of n tensors changed (expectation)", all as expected) per role present."""
    rows = []
    for role, expectation in EXPECTATIONS.items():
        verdicts = [v for v in audit.verdicts if v.role is role]
        if verdicts:
            changed = sum(v.changed for v in verdicts)
            text = f"{changed} of {plural(len(verdicts), 'tensor')} changed ({expectation})"
            rows.append((role.value, text, all(v.ok for v in verdicts)))
    return rows


def setup_line(audit: Audit, separator: str) -> str:
    """`2 train steps · optimizer: SGD(lr=0.1) · loss: … · inputs: …`."""
    return separator.join(
        [
            plural(audit.steps, "train step"),
            f"optimizer: {audit.optimizer}",
            f"loss: {audit.loss}",
            f"inputs: {audit.inputs}",
        ]
    )
