"""What a guard concludes from two looks at a model: the audit's judgement, on the user's steps.

A look (:class:`Look`) is what a probe saw at one moment: every watched tensor's role and
fingerprint, and how many optimizer steps had run. Between two looks a frozen tensor must keep
its fingerprint, a trainable one must change once a step ran, and state inside a frozen part
(BatchNorm statistics) must not drift. The findings, their rule ids and fixes are the audit's
(``ops.audit.findings_of``), so a guard and ``paramscope audit`` say the same thing about the
same mistake. Nothing here touches a framework: the probes do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Role
from paramscope.guards.fingerprint import Fingerprint
from paramscope.ops.audit import Verdict, findings_of, frozen_parts
from paramscope.ops.audit_driver import StepFacts
from paramscope.pitfalls.context import Finding, names


@dataclass(frozen=True)
class Look:
    """A probe's view of the model at one moment."""

    roles: dict[str, Role]  # tensor path -> role now
    prints: dict[str, Fingerprint]  # tensor path -> fingerprint now
    steps: int  # optimizer steps (batches, in Keras) run so far


@dataclass(frozen=True)
class Watch:
    """What stays fixed while a guard watches one model."""

    kind: Kind
    dtypes: dict[str, str]  # tensor path -> dtype
    frozen_part: frozenset[str]  # state tensors inside a part of the model with nothing trainable
    must_stay_frozen: frozenset[str] = frozenset()  # e.g. a PEFT model's base, whatever its flags


@dataclass
class Judgement:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # intended role changes, said once


def judge(
    watch: Watch,
    before: Look,
    after: Look,
    facts: StepFacts,
    intended: set[str],
    without_signal: set[str],
    schedule_unit: str = "epoch",
) -> Judgement:
    """Findings of what ran between ``before`` and ``after``; ``intended`` are the tensors whose
    role the user declared may change now (an unfreeze schedule), ``without_signal`` trainable
    tensors whose gradient was all zero (they may rightly stay unchanged)."""
    judgement = Judgement()
    changed_role = sorted(p for p in before.roles if after.roles.get(p, before.roles[p]) != before.roles[p])
    re_enabled = [p for p in changed_role if after.roles[p] is Role.TRAINABLE]
    if undeclared := [p for p in re_enabled if p not in intended]:
        judgement.findings.append(_re_enabled(undeclared, schedule_unit))
    if changed_role:
        judgement.notes.append(
            f"role changed during training: {names(changed_role)}"
            f"{' (declared in the unfreeze schedule)' if set(changed_role) <= intended else ''}"
        )
    if unfrozen := [p for p in sorted(watch.must_stay_frozen) if after.roles.get(p) is Role.TRAINABLE]:
        judgement.findings.append(_base_unfrozen(unfrozen, before, after))
    skip = set(changed_role) | watch.must_stay_frozen
    verdicts = [
        _verdict(watch, p, before, after) for p in before.prints if p not in skip and p in after.prints
    ]
    if after.steps == before.steps:  # no optimizer step ran (a skipped AMP step, accumulation)
        without_signal = set(before.prints)
    verdicts = [v for v in verdicts if not (v.role is Role.TRAINABLE and v.path in without_signal)]
    judgement.findings += _explained(findings_of(verdicts, facts, watch.kind))
    return judgement


def _explained(findings: list[Finding]) -> list[Finding]:
    """A stale compiled step also runs the frozen BatchNorm layers it traced as trainable: their
    drifting statistics have that one cause, not a second one."""
    if any(f.rule == "stale-compile" and f.severity == "error" for f in findings):
        return [f for f in findings if f.rule != "frozen-bn-train-mode"]
    return findings


def _verdict(watch: Watch, path: str, before: Look, after: Look) -> Verdict:
    return Verdict(
        path,
        before.roles[path],
        watch.dtypes.get(path, ""),
        before.prints[path] != after.prints[path],
        0.0,  # a fingerprint says whether, not by how much
        path in watch.frozen_part,
    )


def _re_enabled(paths: list[str], unit: str) -> Finding:
    """``unit``: what the integration's ``unfreeze_schedule`` counts in (epochs; steps in a plain loop)."""
    return Finding(
        "frozen-changed",
        "error",
        f"frozen tensors were made trainable during training (by a callback or a scheduler?): {names(paths)}",
        tuple(paths),
        f"if that is intended, declare it (unfreeze_schedule={{{unit}: 'layer path'}}); otherwise find what sets "
        "requires_grad/trainable back on",
    )


def _base_unfrozen(paths: list[str], before: Look, after: Look) -> Finding:
    moved = [p for p in paths if p in before.prints and before.prints[p] != after.prints.get(p)]
    return Finding(
        "frozen-changed",
        "error",
        f"{len(paths)} tensor(s) of the frozen base are trainable ({names(paths)})"
        f"{f', and training changed {names(moved)}' if moved else ''}: only the adapters may train",
        tuple(paths),
        "keep the base frozen: do not call requires_grad_(True) on it after get_peft_model(); list a module "
        "that must train in LoraConfig(modules_to_save=[...])",
    )


LEARNABLE = (Role.TRAINABLE, Role.FROZEN)


def watched_origins(report: Report) -> dict[str, object]:
    """Tensor path -> the live variable or parameter a guard fingerprints: every learnable
    tensor, and the state (BatchNorm statistics) inside frozen parts, where drift is a bug."""
    frozen = frozen_parts(report)
    return {
        tensor.path: report.origins[tensor.path]
        for node in report.nodes()
        for tensor in node.tensors
        if tensor.counted
        and tensor.path in report.origins
        and (tensor.role in LEARNABLE or (tensor.role is Role.STATE and node.path in frozen))
    }
