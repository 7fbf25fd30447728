"""The model's own name and `all` as selectors (issue #13, items 1 and 6): the README's
MobileNetV2 example works as written, and what it prints does what the user asked — in Keras 3
a frozen root hides every variable below it, so `all` freezes the top-level layers, not the
root."""

from __future__ import annotations

import keras
import pytest

import paramscope
from paramscope.core.report import Role

BASE = "mobilenetv2_1.00_224"


@pytest.fixture(scope="module")
def mobilenet():
    return keras.applications.MobileNetV2(weights=None)


def _block_16_trainable(model) -> int:
    block = [layer for layer in model.layers if layer.name.startswith("block_16_")]
    return sum(len(layer.trainable_weights) for layer in block)


def test_root_name_selects_the_model_and_its_paths(mobilenet) -> None:
    """`--freeze mobilenetv2_1.00_224 --unfreeze 'mobilenetv2_1.00_224/block_16_*'` as in the README."""
    plan = paramscope.freeze(mobilenet, freeze=[BASE], unfreeze=[f"{BASE}/block_16_*"])
    expected = _block_16_trainable(mobilenet)
    assert expected == 9
    assert plan.after["trainable"].tensors == expected
    applied = paramscope.freeze(mobilenet, freeze=[BASE], unfreeze=[f"{BASE}/block_16_*"], apply=True)
    assert len(mobilenet.trainable_weights) == expected == applied.after["trainable"].tensors
    assert mobilenet.trainable  # the root itself was never frozen
    for layer in mobilenet.layers:
        layer.trainable = True


def test_all_then_unfreeze_trains_what_was_asked(mobilenet) -> None:
    """`--freeze all --unfreeze 'block_16_*'` used to leave 0 trainable tensors (a frozen root)
    while its code set eight sublayers trainable to no effect."""
    plan = paramscope.freeze(mobilenet, freeze=["all"], unfreeze=["block_16_*"])
    assert plan.after["trainable"].tensors == 9
    assert "model.trainable = False" not in plan.snippet
    assert not [f for f in plan.findings if f.rule == "nothing-to-train"]


def test_frozen_root_is_explained(mobilenet) -> None:
    mobilenet.trainable = False
    try:
        for layer in mobilenet.layers:
            if layer.name.startswith("block_16_"):
                layer.trainable = True
        report, findings = paramscope.lint(mobilenet)
        assert report.totals[Role.TRAINABLE.value].tensors == len(mobilenet.trainable_weights) == 0
        (finding,) = [f for f in findings if f.rule == "frozen-root-hides-all"]
        assert "block_16_expand" in finding.message and "root" in finding.message
        assert finding.fix == "freeze the layers you mean, not the root"
    finally:
        mobilenet.trainable = True
