"""audit: prove a freeze by doing what training does, then diffing every tensor.

A driver per framework (``audit_torch``, ``audit_keras``, behind the ``AuditDriver`` protocol of
``audit_driver``) snapshots everything a training step can touch (weights, state, gradients,
optimizer state, RNG, modes), runs the model's real train step ``steps`` times, reports what changed, restores the snapshot and proves the
restore bit-exact. This module holds what is framework-neutral: the verdict per tensor and
the findings (pitfall catalogue ids) with a root-cause guess the driver supports with facts.

Expected behaviour by role: a trainable tensor must change, a frozen one must not; state
(BatchNorm statistics, buffers) may change, except inside a part of the model that is frozen
entirely, where it means the part still runs in training mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from paramscope.core.kinds import Family, Kind
from paramscope.core.report import Node, Report, Role
from paramscope.errors import InputError
from paramscope.ops.audit_driver import AuditDriver, Observation, StepFacts, TrainingSetup
from paramscope.pitfalls.context import Finding

LOSS_SCALE_RETRIES = 5  # extra steps while a loss-scaled optimizer skips its updates
# How Keras 3 prints a variable: `<Variable path=base/conv1/kernel, shape=…, value=[[…]]>`.
KERAS_VARIABLE = re.compile(r"<(?:Keras)?Variable path=(?P<path>[^,>\s]+)[^>]*>")


@dataclass
class Verdict:
    path: str
    role: Role
    dtype: str
    changed: bool
    max_abs_delta: float
    frozen_part: bool  # state inside a part of the model with no trainable tensor
    zero_gradient: bool = False  # trainable, and its gradient was all zero in a step

    @property
    def ok(self) -> bool:
        return self.expected == "either" or self.changed == (self.expected == "changed")

    @property
    def expected(self) -> str:
        """`changed`, `unchanged` or `either` (state outside frozen parts, unknown roles, and a
        trainable tensor whose gradient was all zero: LoRA's A while B is still zero)."""
        if self.role is Role.TRAINABLE:
            return "either" if self.zero_gradient else "changed"
        if self.role is Role.FROZEN or (self.role is Role.STATE and self.frozen_part):
            return "unchanged"
        return "either"


@dataclass
class Audit:
    report: Report  # the model as audited (flags as the user set them)
    verdicts: list[Verdict]
    findings: list[Finding]
    restored: bool
    steps: int
    optimizer: str
    loss: str
    inputs: str
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def changed(self) -> list[str]:
        return [v.path for v in self.verdicts if v.changed]

    @property
    def unchanged(self) -> list[str]:
        return [v.path for v in self.verdicts if not v.changed]

    def _repr_html_(self) -> str:  # Jupyter, VS Code, Colab
        """A display hook: the verdicts as HTML, rendered lazily (ARCHITECTURE.md)."""
        from paramscope.render import notebook_html

        return notebook_html("audit", self)


def frozen_parts(report: Report) -> set[str]:
    """Paths of the nodes whose own tensors sit in a part with nothing trainable: the node, or
    for a node without learnable tensors (a BatchNorm without affine), its parent."""
    frozen: set[str] = set()

    def visit(node: Node, parent_status: str) -> None:
        status = report.summaries[id(node)].status
        effective = parent_status if status == "—" else status
        if effective == "N":
            frozen.add(node.path)
        for child in node.children:
            visit(child, effective)

    visit(report.root, report.summaries[id(report.root)].status)
    return frozen


def verdicts_of(
    report: Report, observed: dict[str, Observation], zero_gradient: set[str] = frozenset()
) -> list[Verdict]:
    frozen = frozen_parts(report)
    verdicts = []
    for node in report.root.walk():
        for tensor in node.tensors:
            if tensor.shared_with is not None or tensor.path not in observed:
                continue
            seen = observed[tensor.path]
            verdicts.append(
                Verdict(
                    tensor.path,
                    tensor.role,
                    tensor.dtype,
                    seen.changed,
                    seen.max_abs_delta,
                    tensor.role is Role.STATE and node.path in frozen,
                    tensor.path in zero_gradient,
                )
            )
    return verdicts


def _finding(rule: str, tensors: list[str], message: str, fix: str | None = None) -> Finding:
    """An error the step proved; why, fix and references come from the pitfall catalogue."""
    return Finding(rule, "error", message, tuple(tensors), fix)


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:3])
    return f"{shown}{f' and {len(paths) - 3} more' if len(paths) > 3 else ''}"


def _stale_compile_failure(facts: StepFacts) -> Finding:
    """The compiled step failed because flags changed after compile(): say which and what to do."""
    return _finding(
        "stale-compile",
        [],
        f"the compiled train step raised {facts.step_error} — the trainable flags of "
        f"{_listing(facts.stale_compile)} changed after compile(), and the optimizer built for the "
        "variables that trained then is given others",
        "call model.compile(...) again after changing trainable flags; to audit the flags as they are "
        "now, step a fresh optimizer instead of the compiled one: --optimizer adam (Python: "
        "optimizer_name='adam')",
    )


def short_error(error: Exception) -> str:
    """The exception's first sentence. Keras names a variable by its repr, which prints its
    whole value as an array: the variable's path says which one."""
    text = KERAS_VARIABLE.sub(lambda match: match["path"], str(error))
    first_sentence = re.split(r"(?<=\.)\s", text.strip())[0] if text.strip() else ""
    return f"{type(error).__name__}: {first_sentence[:200].rstrip('.')}"


def findings_of(verdicts: list[Verdict], facts: StepFacts, kind: Kind) -> list[Finding]:
    """Contradictions between the roles and what the step did, grouped by their likely cause."""
    if facts.step_error is not None:
        if facts.stale_compile:
            return [_stale_compile_failure(facts)]
        return [_finding("train-step-failed", [], f"the train step raised: {facts.step_error}")]
    found: list[Finding] = []
    frozen_moved = [v.path for v in verdicts if v.role is Role.FROZEN and v.changed]
    stuck = [v.path for v in verdicts if v.role is Role.TRAINABLE and not v.changed]
    drifting = [v.path for v in verdicts if v.role is Role.STATE and v.changed and v.frozen_part]
    dtypes = {v.path: v.dtype for v in verdicts}
    if facts.stale_compile and (frozen_moved or stuck):
        found.append(
            _finding(
                "stale-compile",
                frozen_moved + stuck,
                f"trainable flags changed since compile() ({_listing(facts.stale_compile)}); the compiled "
                f"train step {'updated frozen tensors' if frozen_moved else 'left trainable tensors alone'}: "
                f"{_listing(frozen_moved + stuck)}",
            )
        )
        frozen_moved, stuck = [], []
    if frozen_moved:
        found += _frozen_causes(frozen_moved, facts)
    if stuck:
        found += _stuck_causes(stuck, facts, dtypes)
    if drifting:
        found.append(
            _finding(
                "frozen-bn-train-mode",
                drifting,
                f"state inside a frozen part changed: {_listing(drifting)} — the layer still runs "
                "in training mode and updates its statistics",
                None if kind.family is Family.TORCH else "call the frozen base with training=False",
            )
        )
    return found


def _frozen_causes(paths: list[str], facts: StepFacts) -> list[Finding]:
    explained = [p for p in paths if p in facts.weight_decay | facts.stale_gradient | facts.optimizer_state]
    found = []
    if explained:
        reasons = []
        if facts.weight_decay & set(explained):
            reasons.append("weight decay applies to them")
        if facts.stale_gradient & set(explained):
            reasons.append("they hold zero (not None) gradients, so the optimizer steps them")
        if facts.optimizer_state & set(explained):
            reasons.append("momentum or moments from before the freeze keep moving them")
        found.append(
            _finding(
                "frozen-in-optimizer",
                explained,
                f"frozen parameters changed though requires_grad=False: {_listing(explained)}; they are "
                f"in the optimizer and {'; '.join(reasons)}",
            )
        )
    other = [p for p in paths if p not in explained]
    if other:
        found.append(
            _finding(
                "frozen-changed",
                other,
                f"frozen tensors changed in the train step: {_listing(other)}",
            )
        )
    return found


def _stuck_causes(paths: list[str], facts: StepFacts, dtypes: dict[str, str]) -> list[Finding]:
    causes = [
        (
            "trainable-not-in-optimizer",
            facts.not_in_optimizer,
            "trainable but in no optimizer param group (unfrozen after the optimizer was built?)",
        ),
        (
            "no-grad-path",
            facts.no_gradient,
            "trainable but no gradient reached them (no_grad, detach, or unused by the loss)",
        ),
        (
            "zero-learning-rate",
            facts.zero_learning_rate,
            "trainable but their optimizer group's learning rate is 0",
        ),
    ]
    found, left = [], list(paths)
    for rule, evidence, why in causes:
        hit = [p for p in left if p in evidence]
        if hit:
            found.append(_finding(rule, hit, f"{_listing(hit)}: {why}; they did not change"))
            left = [p for p in left if p not in evidence]
    if zero := [p for p in left if p in facts.zero_gradient]:  # not a fault: nothing moved them yet
        found.append(
            Finding(
                "zero-gradient",
                "info",
                f"{_listing(zero)}: trainable, and their gradient was all zero in a step (LoRA's A "
                "while B is still zero, or a unit that never fired); they did not change",
                tuple(zero),
            )
        )
        left = [p for p in left if p not in zero]
    rounded = [p for p in left if dtypes.get(p) in ("bfloat16", "float16")]
    if rounded:
        found.append(
            _finding(
                "bf16-rounding",
                rounded,
                f"16-bit trainable tensors did not change: {_listing(rounded)}; updates below half "
                "an ulp round away",
            )
        )
        left = [p for p in left if p not in rounded]
    if left:
        found.append(
            _finding(
                "trainable-unchanged",
                left,
                f"trainable tensors did not change in the train step: {_listing(left)}",
            )
        )
    return found


def driver_for(report: Report, setup: TrainingSetup) -> AuditDriver:
    """The driver of the framework that runs the live model the report was read from."""
    model = report.root.origin
    if report.source.kind.family is Family.TORCH:
        from paramscope.ops.audit_torch import TorchAudit

        return TorchAudit(model, report.origins, setup)
    from paramscope.ops.audit_keras import KerasAudit

    return KerasAudit(model, report.origins, report.source.kind, setup)


def run_audit(report: Report, driver: AuditDriver, steps: int) -> Audit:
    """Snapshot, ``steps`` real train steps, diff, restore, prove the restore; then judge."""
    if steps < 1:
        raise InputError("--steps must be at least 1")
    driver.snapshot()
    try:
        observed, notes, error = _train(report, driver, steps)
    finally:
        driver.restore()
    restored = driver.restored_exactly()
    facts = _step_facts(report, driver, error)
    verdicts = verdicts_of(report, observed, facts.zero_gradient) if error is None else []
    findings = findings_of(verdicts, facts, report.source.kind)
    if facts.stale_compile and not any(f.rule == "stale-compile" for f in findings):
        notes.append(
            "trainable flags changed since compile(); on this backend the compiled step followed "
            "the current flags (other backends fail or train the old set: recompile)"
        )
    if not restored:
        findings.append(
            _finding("restore-failed", [], "the model could not be restored bit-exactly after the audit")
        )
    return Audit(
        report=report,
        verdicts=verdicts,
        findings=findings,
        restored=restored,
        steps=steps,
        optimizer=driver.optimizer_label,
        loss=driver.loss_label,
        inputs=driver.inputs_label,
        notes=notes,
    )


def _train(
    report: Report, driver: AuditDriver, steps: int
) -> tuple[dict[str, Observation], list[str], Exception | None]:
    """What ``steps`` train steps changed, notes on them, and the exception a step raised.

    A loss-scaled optimizer that skipped its updates gets up to ``LOSS_SCALE_RETRIES`` more
    steps. An exception from the user's model or optimizer is returned, not raised: the model
    is restored first, and whether it is a finding depends on the facts (``_step_facts``).
    """
    try:
        for _ in range(steps):
            driver.step()
        observed = driver.observe()
        retries = 0
        while driver.loss_scaled and retries < LOSS_SCALE_RETRIES and _stuck(report, observed):
            driver.step()
            observed, retries = driver.observe(), retries + 1
    except InputError:
        raise
    except Exception as exc:  # the user's model or optimizer failed inside the step
        return {}, [], exc
    notes = (
        [f"the loss-scaled optimizer skipped steps; retried {retries} more before judging"] if retries else []
    )
    return observed, notes, None


def _step_facts(report: Report, driver: AuditDriver, error: Exception | None) -> StepFacts:
    """The driver's evidence, and what a failed step means: a finding when the flags changed
    since compile (Keras then fails on variables its optimizer never saw), otherwise a bad
    input (the synthesized inputs or loss did not fit the model)."""
    facts = driver.gather_facts()
    facts.stale_compile = report.changed_since_compile or None
    if error is None:
        return facts
    if not facts.stale_compile:
        raise InputError(
            f"the train step failed ({short_error(error)}); check the inputs and "
            "the loss (CLI: --input-shape; Python and factories: inputs=, loss=)"
        ) from error
    facts.step_error = short_error(error)
    return facts


def _stuck(report: Report, observed: dict[str, Observation]) -> bool:
    return any(
        t.role is Role.TRAINABLE and t.path in observed and not observed[t.path].changed
        for t in report.tensors()
    )
