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


# ------------------------------------------------------------- what a file carries beside its tensors

NARROW = 60


def torch_file_report(tmp_path: Path) -> Report:
    """The report of a state dict written by torch (a pickle: it has a verdict)."""
    import torch

    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    return paramscope.inspect(path)


def deep_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_METADATA = {
    "epoch": 3,
    "hyper_parameters": {"lr": 0.001, "layers": [64, 64], "name": "res\x1b[2Jnet\nINJECTED"},
    "deep": deep_list(5000),  # json.dumps would recurse past the interpreter's limit
    "huge": list(range(1_000_000)),
    "long\nINJECTED key": "x" * 10_000,
    "pipe": "a | b",
    **{f"key{i}": i for i in range(30)},
}


def block_after(text: str, title: str) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    return lines[lines.index(title) :]


def test_metadata_block_is_short_bounded_and_escaped(tmp_path: Path) -> None:
    report = torch_file_report(tmp_path)
    report.metadata = HOSTILE_METADATA
    text = render_text(report, width=NARROW)
    block = block_after(text, "File metadata:")
    assert len(block) == 1 + 12 + 1  # the title, twelve keys, how many more
    assert block[-1].strip() == f"… and {len(HOSTILE_METADATA) - 12} more keys (--format json lists them all)"
    assert all(len(line) <= NARROW for line in text.splitlines())
    assert "\x1b" not in text and not any(line.startswith("INJECTED") for line in text.splitlines())
    rows = {line.split()[0]: line for line in block[1:-1]}
    assert rows["epoch"].endswith("  3")
    assert '"lr": 0.001, "layers": [64, 64]' in rows["hyper_parameters"]
    assert rows["deep"].split()[-1].startswith("[[[[") and rows["deep"].endswith("…")
    assert rows["long\\nINJECTED"].endswith("xxx…")


def test_metadata_in_markdown_is_a_small_escaped_table(tmp_path: Path) -> None:
    report = torch_file_report(tmp_path)
    report.metadata = HOSTILE_METADATA
    table = block_after(render_markdown(report), "| File metadata | Value |")
    assert len(table) == 2 + 12 + 1
    assert "\x1b" not in "".join(table) and not any(line.startswith("INJECTED") for line in table)
    assert "| pipe | `a \\| b` |" in table
    assert table[-1] == f"| … and {len(HOSTILE_METADATA) - 12} more keys | |"


def test_metadata_in_json_is_given_as_it_is(tmp_path: Path) -> None:
    import json

    from paramscope.render.json import render_json

    report = torch_file_report(tmp_path)
    report.metadata = {"epoch": 3, "hyper_parameters": {"lr": 0.001, "name": "res\x1b[2Jnet"}}
    data = json.loads(render_json(report))
    assert data["metadata"] == report.metadata
    assert data["pickle"] == {"verdict": "data-only", "needs_code": [], "malicious": []}


def test_malicious_panel_lists_ten_names_then_how_many_more(tmp_path: Path) -> None:
    from paramscope.sources.pickle_verdict import verdict_of
    from paramscope.sources.pickle_walker import Global

    report = torch_file_report(tmp_path)
    names = [Global("os", f"f{i:02}\x1b[2J") for i in range(12)] + [Global("argparse", "Namespace")]
    report.pickle = verdict_of(names)
    text = render_text(report, width=NARROW)
    lines = text.splitlines()
    assert lines[0].startswith("╭─ MALICIOUS PICKLE") and all(len(line) <= NARROW for line in lines)
    assert "\x1b" not in text and "os.f00\\x1b[2J" in text and "os.f09\\x1b[2J" in text
    assert "os.f10" not in text and "… and 2 more" in text
    assert text.index("Layer (type)") > text.index("╰")
