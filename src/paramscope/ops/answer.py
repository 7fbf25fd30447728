"""The user's three numbers, answered for the model in hand.

Users confuse weight *tensors* (``len(model.trainable_weights)``), scalar *parameters*
("Trainable params") and *layers*. This says, for their model: how many layers hold weights,
how many tensors that makes and why (Dense 2, LSTM 3, BatchNorm 2 trainable + 2 state…), how
many parameters, which of them training updates, what freezing did, and the traps behind a
number that looks wrong (a freeze after compile(), optimizer variables in Keras's total,
torch buffers that Keras would call non-trainable).
"""

from __future__ import annotations

from paramscope.core.breakdown import TypeCount, by_layer_type
from paramscope.core.conventions import keras_counts
from paramscope.core.kinds import Family
from paramscope.core.report import Report, Role
from paramscope.core.units import count, plural


def _types(counts: list[TypeCount], limit: int = 6) -> str:
    parts = []
    for c in counts[:limit]:
        per = f" × {c.per_layer}" if c.per_layer else f" ({c.tensors} tensors)"
        parts.append(f"{c.layers} {c.type}{per}")
    if len(counts) > limit:
        rest = sum(c.tensors for c in counts[limit:])
        parts.append(f"{rest} in {len(counts) - limit} other layer types")
    return " + ".join(parts)


def answer(report: Report) -> list[str]:
    """Paragraphs, plain text, for this model: layers, tensors, parameters, then what freezing,
    state, the optimizer and a stale compile add to them."""
    keras = report.source.kind.keras_like
    return [
        *_counts(report, keras),
        *_frozen(report),
        *_state(report, keras),
        *(_optimizer(report) if keras else []),
        *_stale_compile(report),
    ]


def _counts(report: Report, keras: bool) -> list[str]:
    """The three numbers: layers, tensors, parameters."""
    totals = report.totals
    trainable = totals["trainable"]
    weighted = [n for n in report.nodes() if any(t.counted for t in n.tensors)]
    tensor_word = (
        "len(model.trainable_weights)" if keras else "len([p for p in model.parameters() if p.requires_grad])"
    )
    return [
        f"Layers: {plural(len(weighted), 'layer')} own weights ({plural(sum(1 for _ in report.nodes()) - 1, 'layer')} "
        "in all, counting nested ones). A layer is not a number of parameters: it owns tensors.",
        f"Tensors: {tensor_word} = {trainable.tensors:,}. Each is one weight array"
        + (f": {_types(by_layer_type(report, Role.TRAINABLE))}." if trainable.tensors else "."),
        f'Parameters: "Trainable params" = {count(trainable.params)}, the scalars inside those '
        f"{plural(trainable.tensors, 'tensor')}; the model holds {count(totals['all'].params)} in all.",
    ]


def _frozen(report: Report) -> list[str]:
    trainable, frozen = report.totals["trainable"], report.totals["frozen"]
    if frozen.tensors:
        return [
            f"Frozen: {plural(frozen.tensors, 'tensor')} ({count(frozen.params)} params) could learn but are "
            f"switched off: {_types(by_layer_type(report, Role.FROZEN))}. They still run in the forward pass; "
            "the optimizer does not update them."
        ]
    if trainable.tensors + frozen.tensors and not trainable.tensors:
        return ["Nothing is trainable: training would run and learn nothing."]
    return []


def _state(report: Report, keras: bool) -> list[str]:
    """Keras calls state non-trainable; torch leaves buffers out of parameters()."""
    state = report.totals["state"]
    if not state.tensors:
        return []
    if keras:
        return [
            f"State: {plural(state.tensors, 'tensor')} ({count(state.params)} params) are never trained by "
            f"gradients ({_types(by_layer_type(report, Role.STATE))}). Keras counts them under "
            "Non-trainable params whether or not anything is frozen."
        ]
    return [
        f"Buffers: {plural(state.tensors, 'tensor')} ({count(state.params)} values: "
        f"{_types(by_layer_type(report, Role.STATE))}) are not parameters, so parameters() "
        "leaves them out; Keras would count them as Non-trainable params. BatchNorm running "
        "statistics still change in train() mode, even when its weights are frozen."
    ]


def _optimizer(report: Report) -> list[str]:
    counts = keras_counts(report)
    if counts.optimizer is None:
        return []
    return [
        f"Optimizer: model.summary()'s Total params {count(counts.total.params)} includes "
        f"{count(counts.optimizer.params)} optimizer params (slots built by the first training step); "
        f"the model itself holds {count(report.totals['all'].params)}."
    ]


def _stale_compile(report: Report) -> list[str]:
    changed = report.changed_since_compile
    if not changed:
        return []
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    if report.source.kind.family is Family.TF_KERAS:
        consequence = "tf.keras's fit() restores the flags captured at compile(), so it will still train what was trainable then"
    else:
        consequence = "Keras 3 warns that the compiled optimizer and loss may not track the right variables"
    return [
        f"Stale compile: the trainable flag of {', '.join(changed[:5])}{more} changed since compile(). "
        f"{consequence}: call compile() again."
    ]
