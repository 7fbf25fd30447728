"""What a new user meets in the first ten minutes (issue #13, items 8 and 9): no message misleads,
and the API says the same thing the same way everywhere.

The models are the README's own, in ``examples/models.py``; the commands run in-process.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import paramscope
from examples.models import keras_classifier, torch_classifier
from paramscope.api import write_plan
from paramscope.cli import cli
from paramscope.ops.freeze import FreezePlan
from paramscope.render import render
from tests.json_contract import validated

ROOT = Path(__file__).resolve().parent.parent
TORCH_MODEL = "examples/models.py:torch_classifier"


@pytest.fixture(autouse=True)
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def error_line(result) -> str:
    """The one line a bad input gives, after checking it is one line and exit 2."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paramscope: error: "), result.output
    return lines[0]


def test_outputs_are_written_with_the_users_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        assert run("summary", TORCH_MODEL, "--output", str(tmp_path / "s.txt")).exit_code == 0
        plan = tmp_path / "plan.json"
        assert run("freeze", TORCH_MODEL, "--unfreeze", "backbone", "--out", str(plan)).exit_code == 0
    finally:
        os.umask(previous)
    for written in (tmp_path / "s.txt", plan):
        assert stat.S_IMODE(written.stat().st_mode) == 0o640, written


@pytest.mark.parametrize("where", ["missing/s.txt", "a_file/s.txt"])
def test_an_unwritable_output_is_bad_input_with_the_reason(tmp_path: Path, where: str) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    line = error_line(run("summary", TORCH_MODEL, "--output", str(tmp_path / where)))
    reason = "does not exist" if where.startswith("missing") else "is not a folder"
    assert f"{tmp_path / where}: cannot be written: " in line and reason in line


def test_a_stale_compile_names_the_variable_and_the_way_out() -> None:
    """Keras 3 on torch: a base unfrozen after fit() has variables the compiled optimizer never
    saw; its error prints each variable's whole value, which the finding must not repeat."""
    model = keras_classifier()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((2, 32, 32, 3)), np.zeros((2, 10)), verbose=0)
    model.get_layer("base").trainable = True
    result = paramscope.audit(model)
    (finding,) = [f for f in result.findings if f.rule == "stale-compile"]
    assert "base/conv1/kernel" in finding.message and "changed after compile()" in finding.message
    assert "value=" not in finding.message and "[[" not in finding.message
    assert "model.compile(" in finding.fix and "--optimizer" in finding.fix
    fresh = paramscope.audit(model, optimizer_name="adam")  # the way out the fix names
    assert not fresh.failed and fresh.restored


def test_explain_layer_without_a_match_suggests_and_exits_2() -> None:
    line = error_line(run("explain", TORCH_MODEL, "--layer", "bakbone"))
    assert "'bakbone' matches no layer" in line and "did you mean backbone" in line
    result = run("explain", TORCH_MODEL, "--layer", "backbone.0", "--format", "json")
    assert [layer["path"] for layer in json.loads(result.output)["layers"]] == ["backbone/0"]


def test_a_factory_typo_gets_did_you_mean() -> None:
    line = error_line(run("summary", "examples/models.py:torch_clasifier"))
    assert "has no attribute 'torch_clasifier' (did you mean torch_classifier" in line


@pytest.mark.parametrize("model", ["examples/models.py", "examples.models"])
def test_a_module_without_factory_lists_its_factories(model: str) -> None:
    line = error_line(run("summary", model))
    listed = line.split("it defines ")[1].rstrip(")").split(", ")
    assert {"keras_classifier", "torch_classifier", "finetune", "Classifier"} <= set(listed)
    assert not {"torch", "nn", "annotations", "IMAGE_SIZE"} & set(listed)  # imported or not a factory
    assert f"e.g. {model}:keras_classifier" in line


@pytest.mark.parametrize("shape", ["(2, 32, 32, 3)", "2,32,32,3", "2x32x32x3"])
def test_input_shape_is_accepted_as_python_prints_it(shape: str) -> None:
    result = run("audit", "examples/models.py:keras_classifier", "--input-shape", shape)
    assert result.exit_code == 0, result.output
    assert "(2, 32, 32, 3) float32" in result.output.replace("\n", " ")


def test_a_file_summary_header_has_no_empty_parentheses(tmp_path: Path) -> None:
    torch.save(torch_classifier().state_dict(), tmp_path / "weights.pt")
    result = run("summary", str(tmp_path / "weights.pt"))
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("weights.pt  ") and "()" not in first
    heading = run("lint", str(tmp_path / "weights.pt"), "--format", "md").output.splitlines()[0]
    assert heading == "## Lint: weights.pt — no pitfall found"


def test_explain_and_audit_on_the_torch_backend_never_import_tensorflow() -> None:
    """A fresh interpreter: Keras's get_config() and optimizer serialization would import
    TensorFlow (seconds, and its logs on stderr)."""
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom paramscope.cli import cli\n"
        "for command in ('explain', 'audit'):\n"
        "    result = CliRunner().invoke(cli, [command, 'examples/models.py:keras_classifier'])\n"
        "    assert result.exit_code == 0, result.output\n"
        "print('tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"
    assert "cuda" not in done.stderr and "absl" not in done.stderr, done.stderr


class TwoInputs(torch.nn.Module):
    """A model called with two tensors, or with them as keywords."""

    def __init__(self) -> None:
        super().__init__()
        self.image, self.text = torch.nn.Linear(4, 2), torch.nn.Linear(3, 2)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.image(image) + self.text(text)


@pytest.mark.parametrize("form", ["tuple", "dict"])
def test_audit_inputs_take_a_tuple_or_a_dict(form: str) -> None:
    image, text = torch.randn(2, 4), torch.randn(2, 3)
    inputs = (image, text) if form == "tuple" else {"image": image, "text": text}
    result = paramscope.audit(TwoInputs(), inputs=inputs)
    assert not result.failed and len(result.changed) == 4


def test_audit_inputs_take_one_batch_tensor() -> None:
    """One tensor is one argument, never split along its batch dimension (the README's example)."""
    model = torch_classifier().eval()  # the frozen backbone's BatchNorm statistics stay put
    result = paramscope.audit(model, inputs=torch.randn(4, 3, 32, 32))
    assert not result.failed
    assert sorted(result.changed) == sorted(
        n.replace(".", "/") for n, p in model.named_parameters() if p.requires_grad
    )


def test_the_factory_key_is_the_keyword_and_the_old_one_warns(tmp_path: Path) -> None:
    (tmp_path / "factories.py").write_text(
        "import torch\nfrom examples.models import torch_classifier\n\n"
        "def new():\n    return {'model': torch_classifier(), 'inputs': torch.randn(4, 3, 32, 32)}\n\n"
        "def old():\n    return {'model': torch_classifier(), 'example_inputs': torch.randn(4, 3, 32, 32)}\n"
    )
    new = paramscope.audit(f"{tmp_path / 'factories.py'}:new")
    with pytest.warns(DeprecationWarning, match="'example_inputs' is now 'inputs'"):
        old = paramscope.audit(f"{tmp_path / 'factories.py'}:old")
    assert new.inputs == old.inputs == "(4, 3, 32, 32) float32"


def test_freeze_returns_a_plan_whatever_apply_is(tmp_path: Path) -> None:
    planned = paramscope.freeze(torch_classifier(freeze_backbone=False), freeze=["backbone"])
    model = torch_classifier(freeze_backbone=False)
    applied = paramscope.freeze(model, freeze=["backbone"], apply=True)
    write_plan(planned, tmp_path / "plan.json")
    from_file = paramscope.freeze(torch_classifier(freeze_backbone=False), plan=tmp_path / "plan.json")
    for plan in (planned, applied, from_file):
        assert isinstance(plan, FreezePlan)
        assert plan.after["trainable"].tensors == len([p for p in model.parameters() if p.requires_grad])
        assert "backbone" in render("freeze", plan, "text")
        assert validated(render("freeze", plan, "json"))["applied"] is plan.applied
    assert (planned.applied, applied.applied, from_file.applied) == (False, True, True)
    assert planned.report_after is None and from_file.report_after.totals == applied.report_after.totals
    assert [c["path"] for c in from_file.changed] == [c["path"] for c in planned.changed]


def test_keras_model_audit_takes_one_array() -> None:
    model = keras_classifier()
    result = paramscope.audit(model, optimizer=keras.optimizers.SGD(0.1), inputs=np.ones((4, 32, 32, 3)))
    assert not result.failed and sorted(result.changed) == ["head/bias", "head/kernel"]
    assert len(result.changed) == len(model.trainable_weights)
