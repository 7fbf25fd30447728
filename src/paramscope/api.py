"""The Python API; the CLI calls exactly these functions."""

from __future__ import annotations

import os
from pathlib import Path

from paramscope.core.report import Report
from paramscope.errors import InputError
from paramscope.sources.live import inspect_live
from paramscope.sources.reference import Target, as_target, looks_like_reference, resolve


def load(model: object, **factory_args: object) -> Target:
    """Resolve what the user gave (a live model, a factory's dict, or a reference string)."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if looks_like_reference(text):
            return resolve(text, factory_args)
        raise InputError(f"{text}: no such file, and not a module:factory reference")
    if factory_args:
        raise InputError("factory arguments need a module:factory reference")
    return as_target(model, type(model).__name__)


def _load_report(model: object, factory_args: dict) -> tuple[Report, Target | None]:
    """The report, and the live target (with the factory's optimizer) when there is one."""
    if isinstance(model, (str, os.PathLike)) and os.path.exists(os.fspath(model)):
        if factory_args:
            raise InputError(f"{os.fspath(model)}: --arg applies to factories, not to files")
        from paramscope.sources.detect import read_file

        return read_file(os.fspath(model)), None
    target = load(model, **factory_args)
    return inspect_live(target.model, target.kind), target


def inspect(model: object, **factory_args: object) -> Report:
    """Everything paramscope knows about ``model``: tensors, roles, totals, conventions.

    ``model`` is a live Keras 3, tf.keras or PyTorch model, a factory's dict holding one, a
    ``"package.module:factory"`` / ``"file.py:factory"`` reference (``factory_args`` are passed
    to the factory), or the path of a checkpoint file (read without importing a framework,
    never executing anything it contains). The model is not changed in any way.
    """
    return _load_report(model, factory_args)[0]


def explain(model: object, layer: str | None = None, **factory_args: object):
    """Why each count is what it is: every weighted layer's formula, checked against its tensors,
    and the user's three numbers (tensors, parameters, layers) answered for this model.

    ``layer`` limits the layer formulas to a node path or glob; the answer covers the whole model.
    """
    from paramscope.ops.explain import explain_report

    return explain_report(inspect(model, **factory_args), layer)


def freeze(
    model: object,
    freeze: list[str] | tuple[str, ...] = (),
    unfreeze: list[str] | tuple[str, ...] = (),
    *,
    rules: list[tuple[str, str]] | None = None,
    apply: bool = False,
    plan: str | os.PathLike | dict | None = None,
    **factory_args: object,
):
    """Plan a freeze: before/after totals per role, the layers it changes, the code.

    Selectors name layers by path (see ``paramscope.core.select``); ``rules`` gives an explicit
    order (``[("freeze", "base"), ("unfreeze", "base/block_16_*")]``), later rules winning.
    The model is untouched unless ``apply=True``, which sets the flags and re-inspects it.
    ``plan=`` applies a torch plan written by ``paramscope freeze --out`` and returns the
    model's report afterwards.
    """
    from paramscope.ops.freeze import apply_plan, parse_rules, plan_context, plan_freeze
    from paramscope.pitfalls import run_rules

    if plan is not None:  # a torch plan written by `freeze --out`: apply it
        import json

        from paramscope.ops.freeze_out import apply_torch_plan

        data = plan if isinstance(plan, dict) else json.loads(Path(plan).read_text(encoding="utf-8"))
        target = load(model, **factory_args)
        apply_torch_plan(target.model, data)
        return inspect_live(target.model, target.kind)
    report, target = _load_report(model, factory_args)
    planned = plan_freeze(report, parse_rules(freeze, unfreeze, rules))
    planned.findings = run_rules(plan_context(planned, target.optimizer if target else None))
    if apply:
        after = apply_plan(planned)
        planned.after, planned.applied = after.totals, True
        planned.roles_after = {tensor.path: tensor.role for tensor in after.tensors()}
    return planned


def lint(model: object, **factory_args: object):
    """The freezing pitfalls this model (and its factory's optimizer) falls into, as findings."""
    from paramscope.pitfalls import LintContext, run_rules

    report, target = _load_report(model, factory_args)
    roles = {tensor.path: tensor.role for tensor in report.tensors()}
    return report, run_rules(LintContext(report, roles, optimizer=target.optimizer if target else None))
