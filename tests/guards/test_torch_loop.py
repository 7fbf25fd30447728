"""paramscope.guard in a plain PyTorch loop: real steps, real optimizers, no mocks."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

import paramscope
from paramscope.errors import FreezeViolation, FreezeWarning


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        OrderedDict(backbone=torch.nn.Linear(4, 8), act=torch.nn.ReLU(), head=torch.nn.Linear(8, 2))
    )


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=False)
    model(torch.ones(3, 4)).square().mean().backward()
    optimizer.step()


def _paths(module: torch.nn.Module, prefix: str) -> set[str]:
    """paramscope's tensor paths of the module's parameters, from torch's own names."""
    return {f"{prefix}/{name}".replace(".", "/") for name, _ in module.named_parameters()}


def _frozen_after_warm_up() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """Freeze the backbone after a first step, keeping the AdamW built over every parameter."""
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    _step(model, optimizer)
    model.backbone.requires_grad_(False)
    return model, optimizer


def test_weight_decay_on_zeroed_gradients_moves_frozen_weights() -> None:
    model, optimizer = _frozen_after_warm_up()
    before = model.backbone.weight.detach().clone()
    with pytest.raises(FreezeViolation) as raised, paramscope.guard(model, optimizer, every=10):
        for _ in range(3):
            _step(model, optimizer)
    assert not torch.equal(before, model.backbone.weight)  # torch really moved it: the guard is right
    (finding,) = raised.value.findings
    assert finding.rule == "frozen-in-optimizer"
    assert set(finding.tensors) == _paths(model.backbone, "backbone")
    message = str(raised.value)
    assert "backbone/weight" in message and "weight decay" in message
    assert "fix: build the optimizer from [p for p in model.parameters() if p.requires_grad]" in message
    assert not optimizer._optimizer_step_post_hooks  # the guard removed its hooks when it raised


def test_a_correct_loop_passes_and_counts_its_steps() -> None:
    model = _model()
    model.backbone.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], weight_decay=0.01)
    with paramscope.guard(model, optimizer, every=2) as guard:
        for _ in range(3):
            _step(model, optimizer)
    assert guard.findings == []
    assert guard.steps == 3 == optimizer.state[model.head.weight]["step"]
    learnable = sum(1 for _ in model.parameters())
    assert len(guard.probe.watched) == learnable
    assert not optimizer._optimizer_step_pre_hooks  # closed on exit


def test_not_strict_warns_and_explicit_checks() -> None:
    model, optimizer = _frozen_after_warm_up()
    guard = paramscope.guard(model, optimizer, strict=False)
    with pytest.warns(FreezeWarning, match=r"\[frozen-in-optimizer\].*backbone/bias"):
        _step(model, optimizer)
    for param in model.backbone.parameters():
        param.grad = None  # the catalogue's fix: torch now skips them
    _step(model, optimizer)
    assert guard.check() == []
    guard.close()


def test_a_trainable_layer_without_gradient_is_named() -> None:
    """A head computed under no_grad never learns: the optimizer's pre-step hook sees it."""
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def detached_step() -> None:
        optimizer.zero_grad()
        features = model.act(model.backbone(torch.ones(3, 4)))
        with torch.no_grad():
            out = model.head(features)
        (features.square().mean() + out.sum() * 0).backward()
        optimizer.step()

    with pytest.raises(FreezeViolation) as raised, paramscope.guard(model, optimizer):
        detached_step()
    (finding,) = raised.value.findings
    assert finding.rule == "no-grad-path"
    assert set(finding.tensors) == _paths(model.head, "head")


def _unfreeze_at_step_2(**options: object) -> list:
    """Train the head, then unfreeze the backbone before step 2 (progressive unfreezing)."""
    model = _model()
    model.backbone.requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with paramscope.guard(model, optimizer, every=1, **options) as guard:
        for step in (1, 2, 3):
            if step == 2:
                model.backbone.requires_grad_(True)
            optimizer.zero_grad()
            model(torch.ones(3, 4)).square().mean().backward()
            optimizer.step()
    return guard.findings


def test_unfreezing_declared_in_steps_passes() -> None:
    assert _unfreeze_at_step_2(unfreeze_schedule={2: "backbone"}) == []


def test_undeclared_unfreezing_names_the_plain_loops_schedule() -> None:
    with pytest.raises(FreezeViolation, match=r"unfreeze_schedule=\{step: 'layer path'\}") as raised:
        _unfreeze_at_step_2()
    assert "backbone/weight" in str(raised.value)
