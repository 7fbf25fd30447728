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


def audit(
    model: object,
    optimizer: object | None = None,
    inputs: object | None = None,
    loss: object | None = None,
    steps: int = 2,
    *,
    freeze: list[str] | tuple[str, ...] = (),
    unfreeze: list[str] | tuple[str, ...] = (),
    rules: list[tuple[str, str]] | None = None,
    optimizer_name: str | None = None,
    lr: float | None = None,
    input_shape: tuple[int, ...] | None = None,
    **factory_args: object,
):
    """Prove a freeze: run ``steps`` real training steps, diff every tensor, restore all.

    Frozen tensors must stay bit-identical, trainable ones must move; state inside a frozen
    part must not drift. Findings carry PITFALLS.md rule ids and a root-cause guess.
    ``optimizer``/``inputs``/``loss`` default to the factory's (or, for a compiled Keras
    model, its compiled optimizer and loss); otherwise a fresh optimizer (``optimizer_name``,
    ``lr``) over the trainable weights, inputs synthesized from the model (``input_shape``),
    and the mean square of the outputs. ``freeze``/``unfreeze``/``rules`` apply a freeze plan
    first, as the user would. Afterwards the model, its modes, flags and optimizer are
    bit-identical to before (``Audit.restored`` says it was checked).
    """
    from paramscope.ops.audit import TrainingSetup, run_audit
    from paramscope.ops.freeze import apply_plan, parse_rules, plan_freeze

    target = _audit_target(model, factory_args)
    optimizer = optimizer if optimizer is not None else target.optimizer
    inputs = inputs if inputs is not None else target.example_inputs
    loss = loss if loss is not None else target.loss
    flags = _trainable_flags(target)
    report = inspect_live(target.model, target.kind)
    roles_before = {tensor.path: tensor.role for tensor in report.tensors()}
    try:
        if freeze or unfreeze or rules:
            report = apply_plan(plan_freeze(report, parse_rules(freeze, unfreeze, rules)))
        setup = TrainingSetup(optimizer, inputs, loss, optimizer_name, lr, input_shape)
        if target.kind == "torch":
            from paramscope.ops.audit_torch import TorchAudit

            driver = TorchAudit(target.model, report.origins, setup)
        else:
            from paramscope.ops.audit_keras import KerasAudit

            driver = KerasAudit(target.model, report.origins, target.kind, setup)
        result = run_audit(report, driver, steps, "torch" if target.kind == "torch" else "keras")
    finally:
        _restore_flags(flags)
    roles_after = {tensor.path: tensor.role for tensor in inspect_live(target.model, target.kind).tensors()}
    result.restored &= roles_after == roles_before
    return result


def _audit_target(model: object, factory_args: dict) -> Target:
    """A live model to train: an object, a reference, or a .keras/.h5 file loaded by Keras
    itself (safe mode: Lambda layers refused). A weights-only checkpoint has no forward."""
    if isinstance(model, (str, os.PathLike)) and os.path.exists(os.fspath(model)):
        path = os.fspath(model)
        if not path.endswith((".keras", ".h5")):
            raise InputError(f"{path}: audit needs a model it can run; pass a module:factory reference")
        import keras

        try:
            loaded = keras.saving.load_model(path)
        except Exception as exc:
            raise InputError(
                f"{path}: Keras could not load it ({type(exc).__name__}: {str(exc)[:120]})"
            ) from None
        return as_target(loaded, path)
    return load(model, **factory_args)


def _trainable_flags(target: Target) -> list[tuple[object, str, bool]]:
    """Every flag a freeze plan can change, outermost first (Keras sets children from parents)."""
    if target.kind == "torch":
        return [(p, "requires_grad", p.requires_grad) for p in target.model.parameters()]
    return [(layer, "trainable", layer.trainable) for layer in target.model._flatten_layers()]


def _restore_flags(flags: list[tuple[object, str, bool]]) -> None:
    """Only the flags that changed: a lazy module's placeholder refuses requires_grad_()."""
    for obj, attribute, value in flags:
        if getattr(obj, attribute) == value:
            continue
        if attribute == "requires_grad":
            obj.requires_grad_(value)
        else:
            setattr(obj, attribute, value)
