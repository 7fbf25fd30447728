"""The facts the pitfall rules read off a live model's objects (see ``core/live_facts.py``).

Only here do lint's questions touch framework internals: a torch module's ``_parameters``
(the parameter object behind a tensor path), a Keras layer's ``_inbound_nodes`` (how the
functional graph calls it), the compiled flag each Keras generation spells its own way.
"""

from __future__ import annotations

from paramscope.core.kinds import Family, Freezing
from paramscope.core.live_facts import LiveFacts, ParameterFacts
from paramscope.core.report import Node, Report, Role

LEARNABLE = (Role.TRAINABLE, Role.FROZEN)


def live_facts(report: Report, optimizer: object | None) -> LiveFacts:
    """The facts of a live model and the optimizer its factory (or caller) gave; empty for a file."""
    kind = report.source.kind
    if not kind.live:
        return LiveFacts()
    if kind.freezing is Freezing.PER_PARAMETER:
        return LiveFacts(parameters=None if optimizer is None else optimizer_facts(report, optimizer))
    keras3 = kind.family is Family.KERAS
    return LiveFacts(
        compiled=_compiled(report.root.origin),
        called_in_training_mode=frozenset(_called_in_training_mode(report.root)) if keras3 else frozenset(),
    )


def optimizer_facts(report: Report, optimizer: object) -> dict[str, ParameterFacts]:
    """Each counted learnable tensor's parameter as ``optimizer`` holds it, by tensor path."""
    groups = getattr(optimizer, "param_groups", None) or []
    group_of = {id(param): group for group in groups for param in group.get("params", [])}
    state = getattr(optimizer, "state", {})
    facts = {}
    for node in report.nodes():
        if node.origin is None:
            continue
        for tensor in node.tensors:
            if not tensor.counted or tensor.role not in LEARNABLE:
                continue
            param = node.origin._parameters.get(tensor.name)
            if param is None:
                continue
            group = group_of.get(id(param))
            facts[tensor.path] = ParameterFacts(
                in_optimizer=group is not None,
                has_gradient=param.grad is not None,
                has_state=bool(state.get(param)),
                weight_decay=group.get("weight_decay", 0) if group is not None else 0,
            )
    return facts


def _compiled(model) -> bool:
    """Keras 3 says `compiled`; tf.keras says `_is_compiled`."""
    return bool(getattr(model, "compiled", False) or getattr(model, "_is_compiled", False))


def _called_in_training_mode(root: Node) -> list[str]:
    """The model's top-level sublayers (those holding layers) that its graph calls without
    ``training=False``: they run their BatchNormalization layers as the model's mode says."""
    return [
        node.path
        for node in root.children
        if node.children and node.origin is not None and _called_without_training_false(node.origin)
    ]


def _called_without_training_false(layer) -> bool:
    calls = getattr(layer, "_inbound_nodes", None) or []
    return bool(calls) and not any(
        getattr(getattr(call, "arguments", None), "kwargs", {}).get("training") is False for call in calls
    )
