"""freeze on torch modules: requires_grad semantics, tied weights, simulation == applying."""

from __future__ import annotations

import pytest
import torch

import paramscope
from tests.test_torch import ResNetLike, TiedLanguageModel
from tests.truth import assert_matches_torch


@pytest.mark.parametrize(
    "rules",
    [
        [("freeze", "stem"), ("freeze", "layer1")],
        [("freeze", "all"), ("unfreeze", "fc")],
        [("freeze", "type:BatchNorm2d")],
        [("freeze", "until:layer1/1/bn2"), ("unfreeze", "re:layer1/1/conv")],
        [("freeze", "last:3")],
    ],
)
def test_simulation_equals_applying(rules) -> None:
    model = ResNetLike()
    simulated = paramscope.freeze(model, rules=rules).roles_after
    assert all(p.requires_grad for p in model.parameters())  # untouched
    applied = paramscope.freeze(model, rules=rules, apply=True)
    assert applied.roles_after == simulated
    assert_matches_torch(paramscope.inspect(model), model)


def test_freezing_one_side_of_a_tie_freezes_both() -> None:
    model = TiedLanguageModel()
    plan = paramscope.freeze(model, freeze=["embedding"])
    assert plan.roles_after["decoder/weight"].value == "frozen"  # the same tensor
    assert plan.roles_after["decoder/bias"].value == "trainable"
    paramscope.freeze(model, freeze=["embedding"], apply=True)
    assert not model.decoder.weight.requires_grad


def test_snippet_and_batchnorm_note() -> None:
    plan = paramscope.freeze(ResNetLike(), freeze=["stem"])
    assert "model.get_submodule('stem').requires_grad_(False)" in plan.snippet
    assert "module.eval()" in plan.snippet  # requires_grad does not stop BatchNorm statistics
    assert "p.requires_grad" in plan.snippet


def test_buffers_stay_state() -> None:
    plan = paramscope.freeze(ResNetLike(), freeze=["all"])
    assert plan.after["state"].tensors == plan.report.totals["state"].tensors
    assert plan.after["trainable"].tensors == 0


def test_files_cannot_be_frozen(tmp_path) -> None:
    path = tmp_path / "w.pt"
    torch.save(ResNetLike().state_dict(), path)
    with pytest.raises(paramscope.InputError, match="stores no trainability"):
        paramscope.freeze(path, freeze=["stem"])


def test_torch_plan_round_trip(tmp_path) -> None:
    from paramscope.sources.freeze_out import write_plan

    model = ResNetLike()
    plan = paramscope.freeze(model, rules=[("freeze", "all"), ("unfreeze", "fc")])
    path = write_plan(plan, tmp_path / "plan.json")
    fresh = ResNetLike().train()
    after = paramscope.freeze(fresh, plan=path)
    assert after.applied and after.roles_after == plan.roles_after
    assert {t.path: t.role for t in after.report_after.tensors()} == plan.roles_after
    assert not fresh.stem[1].training  # frozen BatchNorm kept in eval()
    assert fresh.fc.weight.requires_grad and not fresh.stem[0].weight.requires_grad


def test_printed_code_pastes_at_80_columns() -> None:
    """Code is never wrapped or cut at the terminal's width: what freeze prints compiles."""
    from paramscope.render import render

    nn = torch.nn
    model = nn.Sequential()
    model.add_module("a_rather_long_encoder_name_that_people_really_use", nn.Sequential(nn.Linear(4, 4)))
    model.add_module("classification_head_with_an_equally_descriptive_name", nn.Linear(4, 2))
    plan = paramscope.freeze(model, freeze=["a_rather_long_encoder_name_that_people_really_use"])
    text = render("freeze", plan, "text", width=80)
    code = text.split("Code:\n", 1)[1]
    assert max(len(line) for line in code.splitlines()) > 80  # the case that used to break
    compile(code, "<freeze snippet>", "exec")
    assert code.strip() == plan.snippet.strip()
