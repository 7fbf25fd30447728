"""The Python API; the CLI calls exactly these functions."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from paramscope.core.kinds import Kind
from paramscope.core.report import Report
from paramscope.errors import InputError
from paramscope.sources.live import inspect_live
from paramscope.sources.reference import (
    Target,
    as_target,
    looks_like_reference,
    module_without_factory,
    resolve,
)

if TYPE_CHECKING:
    from paramscope.ops.scan import FolderScan


def load(model: object, **factory_args: object) -> Target:
    """Resolve what the user gave (a live model, a factory's dict, or a reference string)."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if looks_like_reference(text):
            return resolve(text, factory_args)
        raise module_without_factory(text) or InputError(
            f"{text}: no such file, and not a module:factory reference"
        )
    if factory_args:
        raise InputError("factory arguments need a module:factory reference")
    return as_target(model, type(model).__name__)


def _load_report(model: object, factory_args: dict) -> tuple[Report, Target | None]:
    """The report, and the live target (with the factory's optimizer) when there is one."""
    if isinstance(model, (str, os.PathLike)) and os.path.exists(os.fspath(model)):
        if (not_a_file := module_without_factory(os.fspath(model))) is not None:
            raise not_a_file
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
    ``plan=`` applies a torch plan written by ``paramscope freeze --out``. Either way the
    result is a ``FreezePlan``; once applied, ``.applied`` is true and ``.report_after`` is the
    model re-inspected.
    """
    from paramscope.ops.freeze import applied_plan, apply_plan, parse_rules, plan_context, plan_freeze
    from paramscope.pitfalls import run_rules
    from paramscope.sources.live_facts import live_facts

    if plan is not None:  # a torch plan written by `freeze --out`: apply it
        import json

        from paramscope.sources.freeze_out import apply_torch_plan

        data = plan if isinstance(plan, dict) else json.loads(Path(plan).read_text(encoding="utf-8"))
        target = load(model, **factory_args)
        before = inspect_live(target.model, target.kind)
        apply_torch_plan(target.model, data)
        return applied_plan(before, inspect_live(target.model, target.kind))
    report, target = _load_report(model, factory_args)
    planned = plan_freeze(report, parse_rules(freeze, unfreeze, rules))
    facts = live_facts(report, target.optimizer if target else None)
    planned.findings = run_rules(plan_context(planned, facts))
    if apply:
        apply_plan(planned)
        after = inspect_live(target.model, target.kind)
        planned.after, planned.applied, planned.report_after = after.totals, True, after
        planned.roles_after = {tensor.path: tensor.role for tensor in after.tensors()}
    return planned


def write_plan(plan, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a freeze plan where its framework takes it: a ``.keras`` file whose config carries
    the planned flags (Keras 3 models and ``.keras`` files), or a JSON plan that
    ``freeze(model, plan=...)`` applies (torch). An existing ``out`` needs ``force``."""
    from paramscope.sources.freeze_out import write_plan as write

    return write(plan, out, force=force)


def lint(model: object, **factory_args: object):
    """The freezing pitfalls this model (and its factory's optimizer) falls into, as findings."""
    from paramscope.pitfalls import LintContext, run_rules
    from paramscope.sources.live_facts import live_facts

    report, target = _load_report(model, factory_args)
    roles = {tensor.path: tensor.role for tensor in report.tensors()}
    facts = live_facts(report, target.optimizer if target else None)
    return report, run_rules(LintContext(report, roles, facts))


def memory(
    model: object,
    optimizer: str = "adam",
    precision: str | None = None,
    devices: int = 1,
    sharding: str = "none",
    batch: int | None = None,
    input_shape: tuple[int, ...] | None = None,
    freeze: list[str] | tuple[str, ...] = (),
    unfreeze: list[str] | tuple[str, ...] = (),
    lora: str | dict | None = None,
    *,
    rules: list[tuple[str, str]] | None = None,
    amsgrad: bool = False,
    **factory_args: object,
):
    """What training costs with this freeze: weights, gradients, optimizer state, master weights
    and (given ``batch`` and ``input_shape``, without the batch dimension) activations, in bytes
    per role, per device under ``sharding``, beside the same model with everything trainable.

    ``optimizer``: sgd, momentum, adam, adamw (``amsgrad=True`` for a third moment), adafactor,
    adam8bit (bitsandbytes) or lion, by the model's framework's own rules. ``precision``: None
    keeps each tensor's stored dtype; fp32, bf16, fp16, amp (autocast) or mixed-master (half
    weights, fp32 master). ``freeze``/``unfreeze``/``rules`` as in :func:`freeze` (they also
    work on files, whose tensors of unknown role otherwise count as trainable); ``lora``:
    ``"r=8,targets=q_proj,v_proj"`` or ``{"r": 8, "targets": [...]}``. Activations are measured
    on a live model (torch: fake tensors; Keras: output shapes); its weights are never touched.
    """
    from paramscope.ops.memory import MemorySettings, estimate_memory
    from paramscope.ops.memory_plan import parse_lora
    from paramscope.ops.memory_rules import PRECISION_DTYPE

    shape = tuple(input_shape) if input_shape is not None else None
    settings = MemorySettings(optimizer, precision, devices, sharding, batch, shape, amsgrad)
    report, target = _load_report(model, factory_args)
    meter = None
    if batch is not None:
        if target is None:
            raise InputError("activations need a model that runs: a module:factory reference, not a file")
        from paramscope.sources.activations import activation_meter

        autocast = "float16" if precision == "amp" else None
        cast = PRECISION_DTYPE.get(precision or "")
        meter = activation_meter(target.model, target.kind, report.origins, batch, shape, cast, autocast)
    if rules is None:
        rules = [("freeze", s) for s in freeze] + [("unfreeze", s) for s in unfreeze]
    return estimate_memory(report, settings, rules=rules, lora=parse_lora(lora), meter=meter)


def diff(
    a: object,
    b: object,
    tolerance: float = 0.0,
    expect_frozen: list[str] | tuple[str, ...] = (),
    match: str = "name",
):
    """What changed from ``a`` to ``b`` — two models or checkpoints, in any mix of live models,
    references and file formats: tensors added, removed, reshaped, dtype- and role-changed,
    then values, tensor by tensor in bounded memory (bit-identical, else max |Δ|, ‖Δ‖/‖A‖ and
    the fraction of elements changed), summarised per node (``Diff.summary``).

    ``tolerance``: values within it count as unchanged. ``expect_frozen``: selectors of layers
    of ``a`` that must not have changed (``Diff.failed`` says whether one did). ``match``:
    ``"name"`` pairs tensors by path; ``"order"`` by order and shape, for models whose names
    differ (a ``.keras`` model and its torch port).
    """
    from paramscope.ops.diff import diff_reports
    from paramscope.sources.values import values_of

    report_a, report_b = inspect(a), inspect(b)
    values_a, values_b = values_of(report_a), values_of(report_b)
    return diff_reports(
        report_a, report_b, values_a, values_b, tolerance=tolerance, expect_frozen=expect_frozen, match=match
    )


def scan(
    folder: str | os.PathLike,
    *,
    timeout: float | None = None,
    max_memory: int | None = None,
    workers: int | None = None,
) -> FolderScan:
    """Every checkpoint under ``folder``, each read in a worker process, nothing executed.

    A file may take ``timeout`` seconds and its worker grow by ``max_memory`` bytes (defaults:
    the read limits); one that hangs, exhausts its memory or crashes its reader gets an error
    line and the scan goes on. A pickled file's line carries its verdict.
    """
    from paramscope.ops.scan import FolderScan
    from paramscope.ops.scan import scan as scan_folder
    from paramscope.sources.detect import LimitedRead

    read = LimitedRead.active(seconds=timeout)  # the limits travel into each worker
    memory = read.limits.child_memory if max_memory is None else max_memory
    lines = scan_folder(folder, read, workers, timeout=read.limits.seconds, max_memory=memory)
    return FolderScan(os.fspath(folder), lines)


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
    from paramscope.ops.audit import TrainingSetup, driver_for, run_audit
    from paramscope.ops.freeze import apply_plan, parse_rules, plan_freeze
    from paramscope.sources.live import restore_flags, trainable_flags

    target = _audit_target(model, factory_args)
    optimizer = optimizer if optimizer is not None else target.optimizer
    inputs = inputs if inputs is not None else target.inputs
    loss = loss if loss is not None else target.loss
    flags = trainable_flags(target.model, target.kind)
    report = inspect_live(target.model, target.kind)
    roles_before = {tensor.path: tensor.role for tensor in report.tensors()}
    try:
        if freeze or unfreeze or rules:
            apply_plan(plan_freeze(report, parse_rules(freeze, unfreeze, rules)))
            report = inspect_live(target.model, target.kind)
        setup = TrainingSetup(optimizer, inputs, loss, optimizer_name, lr, input_shape)
        with _without_tensorflow(target.kind):
            result = run_audit(report, driver_for(report, setup), steps)
    finally:
        restore_flags(flags)
    roles_after = {tensor.path: tensor.role for tensor in inspect_live(target.model, target.kind).tensors()}
    result.restored &= roles_after == roles_before
    return result


def _without_tensorflow(kind: Kind):
    """Keras 3 steps without importing TensorFlow on other backends (``tensorflow_unprobed``)."""
    if kind is not Kind.KERAS:
        return contextlib.nullcontext()
    from paramscope.sources.keras3 import tensorflow_unprobed

    return tensorflow_unprobed()


def _audit_target(model: object, factory_args: dict) -> Target:
    """A live model to train: an object, a reference, or a .keras/.h5 file loaded by Keras."""
    if isinstance(model, (str, os.PathLike)) and os.path.exists(os.fspath(model)):
        from paramscope.sources.live import load_keras_model

        return as_target(load_keras_model(os.fspath(model)), os.fspath(model))
    return load(model, **factory_args)


def report(
    model: object,
    freeze: list[str] | tuple[str, ...] = (),
    unfreeze: list[str] | tuple[str, ...] = (),
    *,
    rules: list[tuple[str, str]] | None = None,
    audit: bool = False,
    optimizer: str = "adam",
    **factory_args: object,
):
    """Everything one HTML page shows about ``model`` (``paramscope report``): explain's answer
    and formulas, the memory to train it with ``optimizer`` and, given selectors, the freeze
    plan's before/after; ``audit=True`` adds a real training step's verdicts. The model is built
    once and left as it was. ``render("report", result, "html")`` is the page; in a notebook
    the result shows itself."""
    from paramscope.ops.explain import explain_report
    from paramscope.render.report import Overview

    inspected, target = _load_report(model, factory_args)
    if rules is None:
        rules = [("freeze", s) for s in freeze] + [("unfreeze", s) for s in unfreeze]
    subject = target.model if target is not None else model  # a model built once; a file by its path
    return Overview(
        explain_report(inspected),
        memory(subject, optimizer, rules=rules),
        _plan(subject, rules) if rules else None,
        _audited(subject, target, rules) if audit else None,
    )


def _plan(subject: object, rules: list[tuple[str, str]]):
    return freeze(subject, rules=rules)


def _audited(subject: object, target: Target | None, rules: list[tuple[str, str]]):
    """The audit of ``subject`` with its factory's optimizer, inputs and loss, when it has them."""
    pieces = {"optimizer": target.optimizer, "inputs": target.inputs, "loss": target.loss} if target else {}
    return audit(subject, rules=rules or None, **pieces)


def show(model: object, **factory_args: object) -> None:
    """Display ``model``'s summary where you are: as HTML in a notebook (Jupyter, VS Code,
    Colab), as text in a terminal."""
    inspected = inspect(model, **factory_args)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(inspected)
        return
    from rich.console import Console

    Console(highlight=False).print(inspected, crop=False)
