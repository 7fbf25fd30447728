"""Golden outputs of the text and Markdown renderers.

The reports come from real models; only the framework version in the header is pinned so the
golden files do not change with every framework release. Regenerate after an intended change
with `PARAMSCOPE_UPDATE_GOLDEN=1 pytest tests/test_render.py` and review the diff.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path

import keras
import pytest
from rich.console import Console

import paramscope
from paramscope.core.report import Report, Source
from paramscope.render.markdown import render_markdown
from paramscope.render.text import render_text
from tests.test_torch import TiedLanguageModel

GOLDEN = Path(__file__).parent / "golden"


def pinned(report: Report) -> Report:
    source = dataclasses.replace(report.source, framework_version="X.Y.Z")
    return dataclasses.replace(report, source=source)


def tied_lm_report() -> Report:
    model = TiedLanguageModel(vocab=50, width=8)
    model.embedding.requires_grad_(False)
    return pinned(paramscope.inspect(model))


def keras_transfer_report() -> Report:
    base = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, name="hidden"), keras.layers.BatchNormalization(name="bn")],
        name="base",
    )
    inputs = keras.Input((6,), name="pixels")
    outputs = keras.layers.Dense(3, name="head")(base(inputs))
    model = keras.Model(inputs, outputs, name="transfer")
    base.trainable = False
    report = paramscope.inspect(model)
    return pinned(dataclasses.replace(report, source=Source("keras", "X.Y.Z", "torch")))


def explain_text() -> str:
    from paramscope.ops.explain import explain_report
    from paramscope.render.explain import render_explanation_text

    return render_explanation_text(explain_report(tied_lm_report()))


CASES = {
    "torch_tied_lm_explain.txt": explain_text,
    "torch_tied_lm.txt": lambda: render_text(tied_lm_report(), depth=None, show_tensors=True),
    "torch_tied_lm.md": lambda: render_markdown(tied_lm_report(), depth=None, show_tensors=True),
    "keras_transfer.txt": lambda: render_text(keras_transfer_report(), show_tensors=True),
    "keras_transfer_depth1.txt": lambda: render_text(keras_transfer_report(), depth=1, width=60),
    "keras_transfer.md": lambda: render_markdown(keras_transfer_report()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    actual = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("PARAMSCOPE_UPDATE_GOLDEN"):
        path.write_text(actual)
    assert actual == path.read_text()


def test_numbers_never_truncated_on_narrow_terminals() -> None:
    text = render_text(keras_transfer_report(), depth=1, width=50)
    rows = text.splitlines()[2:7]
    assert rows[0].endswith("Trainable")
    assert rows[1].split()[-3:] == ["2/4/2", "73", "18"]  # numbers whole; only names shrink
    assert rows[3].split()[-3:] == ["0/4/2", "55", "0"]
    assert all(len(line) <= 50 for line in text.splitlines())


def test_report_prints_with_rich() -> None:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(tied_lm_report())
    assert console.file.getvalue() == render_text(tied_lm_report())
