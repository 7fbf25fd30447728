"""`paramscope demo`, the story README opens with: the seed's numbers, exactly."""

import io

from rich.console import Console

from paramscope.core.report import Role
from paramscope.demo import run_demo


def test_demo_tells_the_seed_story() -> None:
    console = Console(file=io.StringIO(), width=400, color_system=None)
    before, after = run_demo(console)
    assert (before.totals["trainable"].tensors, before.totals["trainable"].params) == (158, 2_253_335)
    assert (after.totals["trainable"].tensors, after.totals["trainable"].params) == (2, 29_463)
    assert (after.totals["frozen"].tensors, after.totals["frozen"].params) == (156, 2_223_872)
    assert (after.totals["state"].tensors, after.totals["state"].params) == (104, 34_112)
    assert [t.path for t in after.tensors() if t.role is Role.TRAINABLE] == ["dense/kernel", "dense/bias"]
    text = console.file.getvalue()
    assert "len(model.trainable_weights): 158 → 2" in text
    assert '"Trainable params": 2,253,335 → 29,463' in text
    assert "1280 × 23 + 23 = 29,463" in text
    assert " Trainable params: 29,463 (115.09 KB)" in text
    assert "52 BatchNormalization × 2" in text
    reading = text.split("What the numbers mean")[1].splitlines()
    assert reading[1].startswith("1. Tensors") and any(line.startswith("2. Parameters") for line in reading)
