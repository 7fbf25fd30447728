"""`audit` as JSON: the verdict, the setup, every tensor's change, findings and notes."""

from __future__ import annotations

from paramscope.ops.audit import Audit, Verdict
from paramscope.render.envelope import envelope, findings_list, source_dict


def _tensor_verdict(verdict: Verdict) -> dict:
    return {
        "path": verdict.path,
        "role": verdict.role.value,
        "expected": verdict.expected,
        "changed": verdict.changed,
        "max_abs_delta": verdict.max_abs_delta,
        "ok": verdict.ok,
    }


def document(audit: Audit) -> dict:
    return envelope(
        "audit",
        source_dict(audit.report.source),
        passed=not audit.failed,
        steps=audit.steps,
        optimizer=audit.optimizer,
        loss=audit.loss,
        inputs=audit.inputs,
        findings=findings_list(audit.findings),
        changed=audit.changed,
        unchanged=audit.unchanged,
        restored=audit.restored,
        tensors=[_tensor_verdict(verdict) for verdict in audit.verdicts],
        notes=audit.notes,
    )
