"""`paramscope demo`: the question paramscope was born from, on an embedded default model.

A MobileNetV2 base (weights=None: nothing is downloaded) with a pooling + Dense(23) head, as
in the Keras transfer-learning guide. We summarise it, freeze the base, summarise it again,
and read the three numbers people confuse — tensors, parameters, layers — for this model.
"""

from __future__ import annotations

import importlib.util
import os

from rich.console import Console, Group
from rich.rule import Rule
from rich.text import Text

from paramscope.core.breakdown import by_layer_type, layers_below
from paramscope.core.report import Report, Role
from paramscope.core.units import count
from paramscope.errors import InputError
from paramscope.render import renderable

CLASSES = 23
INPUT_SHAPE = (224, 224, 3)


def build_transfer_model():
    """MobileNetV2 base + GlobalAveragePooling2D + Dense(23), the base nested as one layer."""
    if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("torch") is not None:
        os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError as exc:
        raise InputError("the demo needs Keras 3: pip install 'paramscope[keras,torch]'") from exc
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=INPUT_SHAPE)
    # Named layers, so the story reads the same however many models Keras built before.
    inputs = keras.Input(INPUT_SHAPE, name="image")
    features = base(inputs, training=False)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    outputs = keras.layers.Dense(CLASSES, name="dense")(pooled)
    return keras.Model(inputs, outputs, name="transfer"), base


def _breakdown(report: Report, role: Role) -> str:
    parts = [
        f"{c.layers} {c.type} × {c.per_layer}"
        if c.per_layer
        else f"{c.layers} {c.type} ({c.tensors} tensors)"
        for c in by_layer_type(report, role)
    ]
    return " + ".join(parts)


def reading(before: Report, after: Report, base_path: str) -> list[Text]:
    """The three numbers, before and after, in plain words for this model."""
    tb, ta = before.totals, after.totals
    head = [t for t in after.tensors() if t.role is Role.TRAINABLE and t.counted]
    head_text = ", ".join(f"{t.path} {tuple(t.shape)}" for t in head)
    head_sum = " + ".join(" × ".join(str(d) for d in t.shape) for t in head)
    base = layers_below(next(n for n in after.nodes() if n.path == base_path))
    state = tb["state"]
    return [
        Text.assemble(
            ("1. Tensors", "bold"),
            f" — len(model.trainable_weights): {tb['trainable'].tensors} → {ta['trainable'].tensors}",
        ),
        Text(
            f"   A tensor is one weight array, not a layer and not a number. Before: "
            f"{_breakdown(before, Role.TRAINABLE)} = {tb['trainable'].tensors}. After freezing the "
            f"base, only the head's remain: {head_text}."
        ),
        Text.assemble(
            ("2. Parameters", "bold"),
            f' — "Trainable params": {count(tb["trainable"].params)} → {count(ta["trainable"].params)}',
        ),
        Text(
            f"   A parameter is one scalar inside a tensor: {head_sum} = {count(ta['trainable'].params)}. "
            f"The other {count(ta['frozen'].params)} are frozen: still in the model, still used in the "
            "forward pass, not updated."
        ),
        Text.assemble(("3. Layers", "bold"), f" — model.layers: {len(after.root.children)} top-level layers"),
        Text(
            f"   The base is one layer of the outer model, holding {base.layers} layers, "
            f"{base.weighted} of them with weights. Freezing it is one flag; it switches off "
            f"{ta['frozen'].tensors} tensors."
        ),
        Text.assemble(
            ("Unchanged", "bold"),
            f" — {state.tensors} state tensors, {count(state.params)} params: "
            f"{_breakdown(before, Role.STATE)} (moving mean and variance). They were never "
            "trainable, so Keras lists them under Non-trainable params before and after.",
        ),
        Text.assemble(
            ("Still seeing the old number?", "bold"),
            f" A summary of "
            f"{count(tb['trainable'].params)} trainable params printed after freezing was "
            "computed before it, or the model was compiled before it: fit() trains what was "
            "trainable at compile(). Call compile() again after changing trainable.",
        ),
    ]


def run_demo(console: Console | None = None) -> tuple[Report, Report]:
    from paramscope.api import inspect

    console = console or Console(highlight=False)
    console.print(Text("paramscope demo: transfer learning with a frozen MobileNetV2 base", style="bold"))
    console.print(
        Text(
            "Building MobileNetV2(weights=None, include_top=False) + "
            f"GlobalAveragePooling2D + Dense({CLASSES})…",
            style="dim",
        )
    )
    model, base = build_transfer_model()
    before = inspect(model)
    console.print(Group(Rule("Before: everything trainable"), renderable("summary", before)))
    base.trainable = False
    after = inspect(model)
    console.print(Group(Rule(f"After: {base.name}.trainable = False"), renderable("summary", after)))
    console.print(Group(Rule("What the numbers mean"), *reading(before, after, base.name)))
    return before, after
