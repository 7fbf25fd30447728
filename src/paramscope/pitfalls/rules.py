"""The static rules, one small function each, registered with :func:`rule` in the order they
run. A rule decides that a pitfall applies and names what it found; the words about why and
how to fix it are the catalogue's (catalogue.py). Rules never touch a framework object: what
they need of a live model beyond its Report is in ``ctx.facts``, read by sources/live_facts.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from paramscope.core.kinds import Family, Freezing
from paramscope.core.live_facts import ParameterFacts
from paramscope.core.report import Role, Tensor
from paramscope.pitfalls.catalogue import pitfall
from paramscope.pitfalls.context import Finding, LintContext, names

Rule = Callable[[LintContext], Iterator[Finding]]
RULES: list[Rule] = []


def rule(pitfall_id: str) -> Callable[[Rule], Rule]:
    """Register a rule for a catalogue pitfall (an unknown id fails at import, not in a user's run)."""
    pitfall(pitfall_id)

    def register(check: Rule) -> Rule:
        RULES.append(check)
        return check

    return register


@rule("stale-compile")
def stale_compile(ctx: LintContext) -> Iterator[Finding]:
    changed = ctx.report.changed_since_compile
    if changed:
        yield Finding(
            "stale-compile",
            "error",
            f"the trainable flag of {names(changed)} changed after compile(): fit() will not train what the "
            "flags now say (tf.keras restores the compiled flags; Keras 3 warns its optimizer may track the wrong "
            "variables)",
        )
    if ctx.plan is not None and ctx.kind.keras_like and ctx.facts.compiled:
        yield Finding(
            "stale-compile",
            "warning",
            "the model is already compiled: after this freeze, compile() again or fit() keeps the old trainable set",
            specific_fix="call model.compile(...) after applying the plan",
        )


@rule("nothing-to-train")
def nothing_to_train(ctx: LintContext) -> Iterator[Finding]:
    learnable = [
        t for t in ctx.report.tensors() if t.counted and ctx.role(t) in (Role.TRAINABLE, Role.FROZEN)
    ]
    if learnable and not any(ctx.role(t) is Role.TRAINABLE for t in learnable):
        yield Finding(
            "nothing-to-train",
            "error",
            "no parameter is trainable: training would run and learn nothing",
        )


def _parameters(ctx: LintContext) -> Iterator[tuple[Tensor, ParameterFacts]]:
    """Each tensor whose parameter the optimizer facts know, in model order."""
    known = ctx.facts.parameters or {}
    for tensor in ctx.report.tensors():
        if tensor.path in known:
            yield tensor, known[tensor.path]


@rule("frozen-in-optimizer")
def frozen_in_optimizer(ctx: LintContext) -> Iterator[Finding]:
    """An error only where the next step will move them: torch skips a parameter whose .grad is
    None, whatever its state or weight decay. Where they hold no gradient yet, a warning that
    says which loop would move them."""
    if ctx.kind.freezing is not Freezing.PER_PARAMETER or ctx.facts.parameters is None:
        return
    moving, idle = [], []
    for tensor, param in _parameters(ctx):
        if param.in_optimizer and ctx.role(tensor) is Role.FROZEN:
            (moving if param.has_gradient else idle).append((tensor.path, param))
    if moving:
        yield Finding(
            "frozen-in-optimizer",
            "error",
            f"{len(moving)} frozen parameter(s) sit in the optimizer holding a gradient "
            f"({names(p for p, _ in moving)}): the next optimizer.step() moves them",
            tuple(p for p, _ in moving),
        )
    if idle:
        yield Finding(
            "frozen-in-optimizer",
            "warning",
            f"{len(idle)} frozen parameter(s) sit in the optimizer ({names(p for p, _ in idle)}); they hold "
            f"no gradient, so torch skips them — they would move {_idle_movers([p for _, p in idle])}",
            tuple(p for p, _ in idle),
        )


def _idle_movers(idle: list[ParameterFacts]) -> str:
    """Under which loop frozen parameters without a gradient would still be stepped."""
    causes = ["in a loop calling zero_grad(set_to_none=False) (zero, not None, gradients)"]
    if any(param.weight_decay > 0 for param in idle):
        causes[0] += ", where weight decay shrinks them"
    if any(param.has_state for param in idle):
        causes.append("by the momentum or moments they kept from before the freeze")
    return " and ".join(causes)


@rule("trainable-not-in-optimizer")
def trainable_not_in_optimizer(ctx: LintContext) -> Iterator[Finding]:
    if ctx.kind.freezing is not Freezing.PER_PARAMETER or ctx.facts.parameters is None:
        return
    missing = [t.path for t, p in _parameters(ctx) if ctx.role(t) is Role.TRAINABLE and not p.in_optimizer]
    if missing:
        yield Finding(
            "trainable-not-in-optimizer",
            "error",
            f"{len(missing)} trainable parameter(s) are in no optimizer param group ({names(missing)}): they will "
            "never learn",
            tuple(missing),
        )


@rule("frozen-bn-train-mode")
def frozen_bn_train_mode(ctx: LintContext) -> Iterator[Finding]:
    if ctx.kind.freezing is not Freezing.PER_PARAMETER:  # Keras runs frozen BatchNorm in inference mode
        return
    drifting = [
        n.path
        for n in ctx.report.nodes()
        if n.type.startswith(("BatchNorm", "SyncBatchNorm"))
        and n.mode == "train"
        and ctx.all_frozen(n)
        and any(t.name.startswith("running_") for t in n.tensors)
    ]
    if drifting:
        yield Finding(
            "frozen-bn-train-mode",
            "warning",
            f"{len(drifting)} frozen BatchNorm module(s) in train() mode ({names(drifting)}): requires_grad=False "
            "does not stop running_mean/running_var from drifting",
            tuple(f"{p}/running_mean" for p in drifting),
        )


@rule("bn-inference-when-frozen")
def bn_inference_when_frozen(ctx: LintContext) -> Iterator[Finding]:
    if not (ctx.kind.live and ctx.kind.family is Family.KERAS):
        return
    for node in ctx.report.root.children:
        if node.path not in ctx.facts.called_in_training_mode:
            continue
        frozen_bn = [n.path for n in node.walk() if n.type == "BatchNormalization" and ctx.all_frozen(n)]
        if frozen_bn:
            yield Finding(
                "bn-inference-when-frozen",
                "warning",
                f"{node.path} holds {len(frozen_bn)} frozen BatchNormalization layer(s) but is not called with "
                "training=False: it runs them in inference mode while frozen, and unfreezing it later for "
                "fine-tuning will update their statistics and wreck what it learned",
                specific_fix=f"build the model with x = {node.name}(inputs, training=False)",
            )


TF_KERAS_OVERRIDE_FIX = (
    "set flags from the outside in; in tf.keras unfreeze the parent and freeze its other sublayers"
)


@rule("frozen-parent-override")
def frozen_parent_override(ctx: LintContext) -> Iterator[Finding]:
    if not ctx.kind.keras_like:
        return

    def visit(node, frozen_ancestor: str | None):
        if node.trainable and frozen_ancestor and node.tensors:
            yield node.path, frozen_ancestor
        below = frozen_ancestor or (node.path if node.trainable is False and node.path else None)
        for child in node.children:
            yield from visit(child, below)

    overrides = list(visit(ctx.report.root, None))
    if overrides:
        per_variable = ctx.kind.freezing is Freezing.PER_VARIABLE
        outcome = (
            "Keras 3 trains them (decided per variable)"
            if per_variable
            else "tf.keras keeps them frozen (decided per parent)"
        )
        yield Finding(
            "frozen-parent-override",
            "info" if per_variable else "warning",
            f"{len(overrides)} layer(s) set trainable under a frozen parent ({names(p for p, _ in overrides)}): "
            f"{outcome}",
            specific_fix=None if per_variable else TF_KERAS_OVERRIDE_FIX,
        )


@rule("frozen-root-hides-all")
def frozen_root_hides_all(ctx: LintContext) -> Iterator[Finding]:
    if ctx.kind.freezing is not Freezing.PER_VARIABLE:
        return
    flags = (ctx.plan.layer_flags if ctx.plan is not None else None) or {
        node.path: node.trainable is not False for node in ctx.report.nodes()
    }
    if flags.get("", True):
        return
    hidden = [n.path for n in ctx.report.nodes() if n.path and n.tensors and flags.get(n.path)]
    if hidden:
        yield Finding(
            "frozen-root-hides-all",
            "warning",
            f"the model itself is frozen (model.trainable = False), so the {len(hidden)} layer(s) whose own flag "
            f"is trainable ({names(hidden)}) train nothing: in Keras 3 a variable trains only while the root's "
            "flag is set too",
        )


@rule("tied-freeze-conflict")
def tied_freeze_conflict(ctx: LintContext) -> Iterator[Finding]:
    if ctx.plan is None:
        return
    conflicts = []
    for node in ctx.report.nodes():
        for tensor in node.tensors:
            if tensor.shared_with and (node.path in ctx.frozen_nodes) != (
                tensor.shared_with.rsplit("/", 1)[0] in ctx.frozen_nodes
            ):
                conflicts.append(f"{tensor.path} = {tensor.shared_with}")
    if conflicts:
        yield Finding(
            "tied-freeze-conflict",
            "warning",
            f"the plan freezes one side of a tied weight ({names(conflicts)}): both sides share one tensor, so "
            "both are frozen",
        )


@rule("index-freeze-on-weightless")
def index_freeze_on_weightless(ctx: LintContext) -> Iterator[Finding]:
    """Layers named by their position (torch's Sequential children `0`, `1`, …) selected
    together with their weighted neighbours, some owning nothing: the `layers[:N]` mistake. A
    glob over real names (`block_16_*` taking `block_16_relu` along) is what was meant."""
    if ctx.plan is None:
        return
    for rule, nodes in ctx.plan.selected:
        empty = [n.path for n in nodes if n.name.isdigit() and not any(True for _ in n.all_tensors())]
        if empty and len(empty) < len(nodes):
            yield Finding(
                "index-freeze-on-weightless",
                "info",
                f"{rule.action} {rule.selector}: {len(empty)} of the {len(nodes)} layers it selects own no weights "
                f"({names(empty)}): selecting them changes nothing",
            )


@rule("quantized-count")
def quantized_count(ctx: LintContext) -> Iterator[Finding]:
    missed = sum(ctx.report.framework_undercount.values())
    if missed:
        packed = [t.path for t in ctx.report.tensors() if t.dtype in ("nf4", "fp4", "4bit")]
        yield Finding(
            "quantized-count",
            "warning",
            f"{len(packed)} 4-bit tensor(s) pack two parameters per stored element ({names(packed)}): "
            f"sum(p.numel() for p in model.parameters()) misses {missed:,} parameters",
            tuple(packed),
        )


def run_rules(ctx: LintContext) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(ctx)]
