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
from paramscope.core.report import Report, Role
from paramscope.core.units import count, plural

KERAS_KINDS = ("keras", "tf_keras", "keras_file", "h5")


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
    """Paragraphs, plain text, for this model."""
    totals = report.totals
    keras = report.source.kind in KERAS_KINDS
    weighted = [n for n in report.nodes() if any(t.counted for t in n.tensors)]
    trainable, frozen, state = totals["trainable"], totals["frozen"], totals["state"]
    learnable = trainable.tensors + frozen.tensors
    lines = [
        f"Layers: {plural(len(weighted), 'layer')} own weights ({plural(sum(1 for _ in report.nodes()) - 1, 'layer')} "
        "in all, counting nested ones). A layer is not a number of parameters: it owns tensors.",
    ]
    tensor_word = (
        "len(model.trainable_weights)" if keras else "len([p for p in model.parameters() if p.requires_grad])"
    )
    lines.append(
        f"Tensors: {tensor_word} = {trainable.tensors:,}. Each is one weight array"
        + (f": {_types(by_layer_type(report, Role.TRAINABLE))}." if trainable.tensors else ".")
    )
    lines.append(
        f'Parameters: "Trainable params" = {count(trainable.params)}, the scalars inside those '
        f"{plural(trainable.tensors, 'tensor')}; the model holds {count(totals['all'].params)} in all."
    )
    if frozen.tensors:
        lines.append(
            f"Frozen: {plural(frozen.tensors, 'tensor')} ({count(frozen.params)} params) could learn but are "
            f"switched off: {_types(by_layer_type(report, Role.FROZEN))}. They still run in the forward pass; "
            "the optimizer does not update them."
        )
    elif learnable and not trainable.tensors:
        lines.append("Nothing is trainable: training would run and learn nothing.")
    if state.tensors:
        if keras:
            text = (
                f"State: {plural(state.tensors, 'tensor')} ({count(state.params)} params) are never trained by "
                f"gradients ({_types(by_layer_type(report, Role.STATE))}). Keras counts them under "
                "Non-trainable params whether or not anything is frozen."
            )
        else:
            text = (
                f"Buffers: {plural(state.tensors, 'tensor')} ({count(state.params)} values: "
                f"{_types(by_layer_type(report, Role.STATE))}) are not parameters, so parameters() "
                "leaves them out; Keras would count them as Non-trainable params. BatchNorm running "
                "statistics still change in train() mode, even when its weights are frozen."
            )
        lines.append(text)
    if keras:
        counts = keras_counts(report)
        if counts.optimizer is not None:
            lines.append(
                f"Optimizer: model.summary()'s Total params {count(counts.total.params)} includes "
                f"{count(counts.optimizer.params)} optimizer params (slots built by the first training step); "
                f"the model itself holds {count(totals['all'].params)}."
            )
    if report.changed_since_compile:
        changed = ", ".join(report.changed_since_compile[:5])
        more = (
            f" and {len(report.changed_since_compile) - 5} more"
            if len(report.changed_since_compile) > 5
            else ""
        )
        if report.source.kind == "tf_keras":
            consequence = "tf.keras's fit() restores the flags captured at compile(), so it will still train what was trainable then"
        else:
            consequence = (
                "Keras 3 warns that the compiled optimizer and loss may not track the right variables"
            )
        lines.append(
            f"Stale compile: the trainable flag of {changed}{more} changed since compile(). {consequence}: "
            "call compile() again."
        )
    return lines
