"""Each torch lint rule: a set-up that triggers it and a fixed one that does not."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner
from torch import nn

import paramscope
from paramscope.cli import cli
from tests.test_torch import ResNetLike, TiedLanguageModel

ROOT = Path(__file__).resolve().parent.parent


def rules(findings) -> set[str]:
    return {f.rule for f in findings}


def frozen_backbone() -> ResNetLike:
    model = ResNetLike()
    for name in ("stem", "layer1", "layer2"):
        model.get_submodule(name).requires_grad_(False)
    return model


def test_frozen_bn_train_mode() -> None:
    model = frozen_backbone().train()
    findings = paramscope.lint(model)[1]
    (finding,) = [f for f in findings if f.rule == "frozen-bn-train-mode"]
    assert "stem/1/running_mean" in finding.tensors
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    assert "frozen-bn-train-mode" not in rules(paramscope.lint(model)[1])


def test_frozen_in_optimizer_with_weight_decay() -> None:
    """Without gradients torch skips frozen parameters (audit sees none move): a warning naming
    the loop that would move them; once they hold a gradient, an error — and audit agrees."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    model[0].requires_grad_(False)
    bad = torch.optim.AdamW(model.parameters(), weight_decay=0.01)
    findings = paramscope.lint({"model": model, "optimizer": bad})[1]
    (finding,) = [f for f in findings if f.rule == "frozen-in-optimizer"]
    assert finding.severity == "warning" and "0/weight" in finding.tensors
    assert "zero_grad(set_to_none=False)" in finding.message and "weight decay" in finding.message
    audit = paramscope.audit(model, optimizer=bad, inputs=torch.randn(8, 4))
    assert not [v.path for v in audit.verdicts if v.role.value == "frozen" and v.changed]
    for parameter in model[0].parameters():
        parameter.grad = torch.zeros_like(parameter)  # zero, not None: AdamW's decay moves them
    findings = paramscope.lint({"model": model, "optimizer": bad})[1]
    (finding,) = [f for f in findings if f.rule == "frozen-in-optimizer"]
    assert finding.severity == "error" and "the next optimizer.step() moves them" in finding.message
    audit = paramscope.audit(model, optimizer=bad, inputs=torch.randn(8, 4))
    assert {v.path for v in audit.verdicts if v.role.value == "frozen" and v.changed} == {
        "0/weight",
        "0/bias",
    }
    good = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], weight_decay=0.01)
    assert "frozen-in-optimizer" not in rules(paramscope.lint({"model": model, "optimizer": good})[1])


def test_trainable_not_in_optimizer() -> None:
    model = ResNetLike()
    head_only = torch.optim.SGD(model.fc.parameters(), lr=0.1)
    findings = paramscope.lint({"model": model, "optimizer": head_only})[1]
    (finding,) = [f for f in findings if f.rule == "trainable-not-in-optimizer"]
    assert "layer1/0/conv1/weight" in finding.tensors
    everything = torch.optim.SGD(model.parameters(), lr=0.1)
    assert "trainable-not-in-optimizer" not in rules(
        paramscope.lint({"model": model, "optimizer": everything})[1]
    )


def test_nothing_to_train() -> None:
    model = ResNetLike().requires_grad_(False)
    assert "nothing-to-train" in rules(paramscope.lint(model)[1])
    assert "nothing-to-train" not in rules(paramscope.lint(ResNetLike())[1])
    plan = paramscope.freeze(ResNetLike(), freeze=["all"])
    assert "nothing-to-train" in rules(plan.findings)


def test_tied_freeze_conflict() -> None:
    plan = paramscope.freeze(TiedLanguageModel(), freeze=["embedding"])
    (finding,) = [f for f in plan.findings if f.rule == "tied-freeze-conflict"]
    assert "decoder/weight = embedding/weight" in finding.message
    both = paramscope.freeze(TiedLanguageModel(), freeze=["embedding", "decoder"])
    assert "tied-freeze-conflict" not in rules(both.findings)


def test_index_freeze_on_weightless() -> None:
    plan = paramscope.freeze(ResNetLike(), freeze=["stem/*"])  # Conv2d, BatchNorm2d and a ReLU
    (finding,) = [f for f in plan.findings if f.rule == "index-freeze-on-weightless"]
    assert "stem/2" in finding.message
    assert "index-freeze-on-weightless" not in rules(
        paramscope.freeze(ResNetLike(), freeze=["stem"]).findings
    )


def test_a_glob_over_real_names_taking_an_activation_along_is_no_finding() -> None:
    """`block.*` takes `block.relu` with the weighted layers, as `block_16_*` does in Keras:
    what was meant, not a selection by position."""
    block = nn.Module()
    block.conv, block.relu, block.norm = nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)
    model = nn.Sequential()
    model.add_module("block", block)
    plan = paramscope.freeze(model, freeze=["block.*"])
    assert [len(nodes) for _, nodes in plan.selected] == [3]
    assert "index-freeze-on-weightless" not in rules(plan.findings)


def test_lint_cli_exit_codes(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    clean = CliRunner().invoke(cli, ["lint", "tests/fixtures/models.py:tiny"])
    assert clean.exit_code == 0 and "No pitfall found." in clean.stdout
    bad = CliRunner().invoke(cli, ["lint", "tests/fixtures/models.py:frozen_all", "--format", "json"])
    assert bad.exit_code == 1, bad.stderr
    assert '"rule": "nothing-to-train"' in bad.stdout
