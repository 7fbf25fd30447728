"""What the frameworks themselves say, for the truth assertions (DESIGN.md "Truth").

Every number here comes from the framework's own API: ``trainable_weights``,
``non_trainable_weights``, ``model.summary()``, ``parameters()``. Tests compare paramscope's
report with these, never with paramscope's own arithmetic.
"""

from __future__ import annotations

import math
import re

from paramscope.core.conventions import keras_lines
from paramscope.core.report import Report

FOOTER_PREFIXES = ("Total params:", "Trainable params:", "Non-trainable params:", "Optimizer params:")


def keras_footer(model) -> list[str]:
    """The parameter lines of ``model.summary()``, verbatim.

    Keras counts the footer from the whole model's weights whatever ``layer_range`` says, so the
    table is drawn for the first layer only: rich's layout of every row (a quarter of a second
    for MobileNetV2's 154) is work the footer never reads.
    """
    captured: list[str] = []
    first = [re.escape(model.layers[0].name) + r"\Z"] * 2 if model.layers else None
    model.summary(print_fn=lambda text, **_: captured.append(text), layer_range=first)
    lines = "\n".join(captured).splitlines()
    return [line.rstrip() for line in lines if line.strip().startswith(FOOTER_PREFIXES)]


def params(variables) -> int:
    return sum(math.prod(tuple(v.shape)) for v in variables)


def assert_matches_keras(report: Report, model) -> None:
    """Our split reconciles with Keras's lists and Keras's printed summary."""
    totals = report.totals
    trainable, non_trainable = model.trainable_weights, model.non_trainable_weights
    assert totals["trainable"].tensors == len(trainable)
    assert totals["trainable"].params == params(trainable)
    assert totals["frozen"].tensors + totals["state"].tensors == len(non_trainable)
    assert totals["frozen"].params + totals["state"].params == params(non_trainable)
    assert totals["all"].tensors == len(model.weights)
    assert totals["unknown"].tensors == 0
    assert [line.rstrip() for line in keras_lines(report)] == keras_footer(model)


def torch_truth(module) -> dict[str, int]:
    parameters = list(module.parameters())  # de-duplicated by identity, as torch does
    return {
        "trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "frozen": sum(p.numel() for p in parameters if not p.requires_grad),
        "trainable_tensors": sum(1 for p in parameters if p.requires_grad),
        "frozen_tensors": sum(1 for p in parameters if not p.requires_grad),
        "buffers": sum(b.numel() for b in module.buffers()),
        "buffer_tensors": len(list(module.buffers())),
    }


def assert_matches_torch(report: Report, module) -> None:
    truth, totals = torch_truth(module), report.totals
    assert totals["trainable"].params == truth["trainable"]
    assert totals["trainable"].tensors == truth["trainable_tensors"]
    assert totals["frozen"].params == truth["frozen"]
    assert totals["frozen"].tensors == truth["frozen_tensors"]
    assert totals["state"].params == truth["buffers"]
    assert totals["state"].tensors == truth["buffer_tensors"]
