"""Layers pruned with ``torch.nn.utils.prune``: ``weight_orig`` is the parameter, ``weight_mask``
a buffer, ``weight`` a plain attribute recomputed by a hook. Counts match torch's own lists,
live and from files; the report says which layers are pruned and, where it can know without
reading tensor data (a live mask, counted), how many weights survive."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import paramscope
from paramscope.core.report import Report, Role


def pruned_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.25)
    prune.random_unstructured(model[2], "bias", amount=0.5)
    return model


def roles(report: Report) -> dict[str, Role]:
    return {t.path.replace("/", "."): t.role for t in report.tensors()}


def prune_lines(report: Report) -> list[str]:
    return [w for w in report.warnings if "pruned" in w]


def test_live_pruned_module_counts_and_survivors() -> None:
    model = pruned_model()
    report = paramscope.inspect(model)
    parameters, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    assert set(parameters) == {"0.weight_orig", "0.bias", "2.weight", "2.bias_orig"}
    assert set(buffers) == {"0.weight_mask", "2.bias_mask"}
    assert report.totals["trainable"].params == sum(p.numel() for p in parameters.values())
    assert report.totals["state"].params == sum(b.numel() for b in buffers.values())
    assert roles(report) == {
        **dict.fromkeys(parameters, Role.TRAINABLE),
        **dict.fromkeys(buffers, Role.STATE),
    }
    weights_left = int(torch.count_nonzero(model[0].weight))  # the weight the hook computed
    assert weights_left == 36  # 25 % of 48 pruned
    assert prune_lines(report) == [
        "layer 0 is pruned (torch.nn.utils.prune): weight = weight_orig × weight_mask; 36 of 48 weights survive.",
        "layer 2 is pruned (torch.nn.utils.prune): bias = bias_orig × bias_mask; 1 of 2 weights survive.",
    ]


def test_many_pruned_layers_are_summed_up() -> None:
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(10)])
    for layer in model:
        prune.l1_unstructured(layer, "weight", amount=0.5)
    lines = prune_lines(paramscope.inspect(model))
    assert len(lines) == 9
    assert lines[-1] == "2 more pruned tensor(s) (16 of 32 weights survive)."


def test_unpruned_module_has_no_prune_warning() -> None:
    model = pruned_model()
    prune.remove(model[0], "weight")
    prune.remove(model[2], "bias")
    assert prune_lines(paramscope.inspect(model)) == []


@pytest.mark.parametrize("whole", [False, True], ids=["state_dict", "pickled_module"])
def test_pruned_files(tmp_path: Path, whole: bool) -> None:
    """A saved state dict holds ``weight_orig`` and ``weight_mask``; a pickled module holds the
    same registered tensors (its ``weight`` attribute and pruning hook are no parameters)."""
    model = pruned_model()
    path = tmp_path / "pruned.pt"
    torch.save(model if whole else model.state_dict(), path)
    report = paramscope.inspect(path)
    loaded = torch.load(path, weights_only=False)
    state = loaded.state_dict() if whole else loaded
    assert list(roles(report)) == list(state)
    assert report.totals["all"].params == sum(t.numel() for t in state.values())
    assert report.totals["state"].params == sum(b.numel() for b in model.buffers())  # the masks
    assert roles(report)["0.weight_mask"] is Role.STATE
    assert roles(report)["0.weight_orig"] is (Role.TRAINABLE if whole else Role.UNKNOWN)
    assert prune_lines(report)[0] == (
        "layer 0 is pruned (torch.nn.utils.prune): weight = weight_orig × weight_mask; how many of "
        "its 48 weights survive cannot be known without reading the mask (paramscope reads headers only)."
    )
    if whole:
        assert roles(report) == roles(paramscope.inspect(model))
        assert "torch.nn.utils.prune.L1Unstructured" in report.pickle.needs_code
