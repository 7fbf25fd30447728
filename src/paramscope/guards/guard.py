"""The guard: when to look at the model during training, and what to do with what it finds.

A :class:`Guard` takes a first look when training starts, then looks again after the first
optimizer step and at the chosen cadence (each epoch, every ``n`` steps), judging what ran in
between (``checks.judge``). A violation raises :class:`~paramscope.errors.FreezeViolation`
naming the tensors, the rule and its fix (``strict``), or is reported as a
:class:`~paramscope.errors.FreezeWarning`; warnings (a stale compile the step followed
anyway) never raise. A step with no look due costs a counter increment.

What it looks at comes from a probe (``torch_probe.TorchProbe``, ``keras_probe.KerasProbe``):
the framework's side. The integrations (``paramscope.keras``, ``.lightning``, ``.hf`` and
``paramscope.guard`` for plain loops) only tell the guard when steps and epochs end.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Protocol

from paramscope.core.report import Report, Role
from paramscope.core.select import select
from paramscope.errors import FreezeViolation, FreezeWarning, InputError
from paramscope.guards.checks import Look, Watch, judge
from paramscope.ops.audit_driver import StepFacts
from paramscope.pitfalls.context import Finding, names

CHECKS = ("first_batch", "epoch", "every_n")
LOG = logging.getLogger("paramscope.guard")
# epoch -> the layers (selectors, as `paramscope freeze` takes them) that may become trainable then
UnfreezeSchedule = Mapping[int, "str | Sequence[str]"]


class Probe(Protocol):
    """One framework's view of one live model."""

    report: Report
    watch: Watch
    stale_compile: list[str] | None  # Keras: layers whose flag changed since compile()

    def look(self, steps: int) -> Look: ...

    def facts(self) -> StepFacts:
        """Evidence for root causes since the last call (optimizer groups, missing gradients)."""

    def without_signal(self) -> set[str]:
        """Trainable tensors that got an all-zero gradient before the look: not judged unchanged."""

    def close(self) -> None:
        """Remove whatever the probe hooked into the framework."""


class Guard:
    """Looks at one model through its probe: at creation (the baseline), after the first step and
    at the cadence (``check``: ``"first_batch"`` only, each ``"epoch"``, or ``"every_n"`` steps).
    ``findings`` keeps everything found; ``notes`` the intended role changes seen."""

    def __init__(
        self,
        probe: Probe,
        *,
        check: str = "first_batch",
        n: int | None = None,
        strict: bool = True,
        unfreeze_schedule: UnfreezeSchedule | None = None,
        schedule_unit: str = "epoch",
    ) -> None:
        self.validate(check, n)
        self.schedule_unit = schedule_unit  # what unfreeze_schedule's keys count: epochs, or steps
        self.probe, self.cadence, self.n, self.strict = probe, check, n, strict
        self.schedule = _resolve(probe.report, unfreeze_schedule or {})
        self.steps = self.epoch = 0
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.baseline = probe.look(0)
        if probe.stale_compile:
            self._report_stale_compile(probe.stale_compile)
        elif not any(t.role is Role.TRAINABLE for t in probe.report.tensors() if t.counted):
            self._report_nothing_to_train()

    @staticmethod
    def validate(check: str, n: int | None) -> None:
        """Refuse a bad cadence where it is written, not when training starts."""
        if check not in CHECKS:
            raise InputError(f"check={check!r}: expected one of {', '.join(CHECKS)}")
        if (check == "every_n") != (n is not None) or (n is not None and n < 1):
            raise InputError("n= (a positive number of steps) goes with check='every_n', and only with it")

    def after_step(self) -> None:
        """An optimizer step (a batch, in Keras) ended: look if one is due."""
        self.steps += 1
        if self.due(self.steps):
            self.check()

    def due(self, step: int) -> bool:
        """Whether the guard looks after optimizer step number ``step``."""
        return step == 1 or (self.cadence == "every_n" and step % self.n == 0)

    def after_epoch(self) -> None:
        self.epoch += 1
        if self.cadence == "epoch" and self.steps > self.baseline.steps:
            self.check()

    def check(self) -> list[Finding]:
        """Judge what ran since the last look; raise or warn on a violation; the findings."""
        after = self.probe.look(self.steps)
        facts = self.probe.facts()
        facts.stale_compile = self.probe.stale_compile or None
        clock = self.steps if self.schedule_unit == "step" else self.epoch
        intended = set().union(*(paths for at, paths in self.schedule if at <= clock))
        judgement = judge(
            self.probe.watch,
            self.baseline,
            after,
            facts,
            intended,
            self.probe.without_signal(),
            self.schedule_unit,
        )
        self.baseline = after
        for note in judgement.notes:
            LOG.info("paramscope guard: %s", note)
        self.notes += judgement.notes
        self.findings += judgement.findings
        self._report(judgement.findings)
        return judgement.findings

    def _report(self, findings: list[Finding]) -> None:
        errors = [f for f in findings if f.severity == "error"]
        for finding in findings:
            if finding.severity != "error":
                warnings.warn(FreezeWarning(describe([finding])), stacklevel=3)
        if not errors:
            return
        text = f"training broke the freeze (checked after step {self.steps}):\n{describe(errors)}"
        if self.strict:
            self.probe.close()  # training stops here: leave the user's optimizer without our hooks
            raise FreezeViolation(text, errors)
        warnings.warn(FreezeWarning(text), stacklevel=3)

    def _report_stale_compile(self, layers: list[str]) -> None:
        finding = Finding(
            "stale-compile",
            "warning",
            f"the trainable flag of {names(layers)} changed after compile(): depending on the backend fit() "
            "trains the old set, fails, or follows the new flags; the guard checks after the first step",
        )
        self.findings.append(finding)
        self._report([finding])

    def _report_nothing_to_train(self) -> None:
        """Lint's rule, at train begin: a fit that trains nothing passes every freeze check."""
        finding = Finding(
            "nothing-to-train", "error", "no parameter is trainable: training would learn nothing"
        )
        self.findings.append(finding)
        self._report([finding])


def describe(findings: list[Finding]) -> str:
    """Each finding with its rule, the tensors it names, its fix and where the docs explain it."""
    lines = []
    for finding in findings:
        lines.append(f"{finding.severity} [{finding.rule}] {finding.message}")
        if finding.tensors:
            lines.append(f"  tensors: {names(finding.tensors, 8)}")
        lines += [f"  fix: {finding.fix}", f"  see: {finding.pitfall.anchor}"]
    return "\n".join(lines)


def _resolve(report: Report, schedule: UnfreezeSchedule) -> list[tuple[int, frozenset[str]]]:
    """The schedule as (epoch or step, tensor paths); a selector that matches nothing is an InputError."""
    resolved = []
    for epoch, selectors in schedule.items():
        chosen = [selectors] if isinstance(selectors, str) else list(selectors)
        paths = {t.path for s in chosen for node in select(report, s) for t in node.all_tensors()}
        resolved.append((int(epoch), frozenset(paths)))
    return resolved
