"""Live PyTorch modules from a small torch.nn zoo, against torch's own numbers."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import paramscope
from paramscope.core.conventions import conventions
from paramscope.core.report import Role
from tests.truth import assert_matches_torch


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResNetLike(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = nn.Sequential(Block(16), Block(16))
        self.layer2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2), Block(32))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)


class TiedLanguageModel(nn.Module):
    """An LSTM language model whose output projection is tied to its embedding."""

    def __init__(self, vocab: int = 100, width: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.lstm = nn.LSTM(width, width, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(width, vocab)
        self.decoder.weight = self.embedding.weight


def transformer() -> nn.Module:
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


ZOO = {
    "resnet": ResNetLike,
    "resnet-frozen-stem-layer1": lambda: _partly(ResNetLike(), "stem", "layer1"),
    "transformer": transformer,
    "transformer-first-layer-frozen": lambda: _partly(transformer(), "layers.0"),
    "tied-lm": TiedLanguageModel,
    "tied-lm-embedding-frozen": lambda: _partly(TiedLanguageModel(), "embedding"),
}


def _partly(model: nn.Module, *names: str) -> nn.Module:
    for name in names:
        freeze(model.get_submodule(name))
    return model


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_matches_torch(name: str) -> None:
    model = ZOO[name]()
    report = paramscope.inspect(model)
    assert_matches_torch(report, model)
    assert conventions(report)["torch"]["total_params"] == sum(p.numel() for p in model.parameters())


def test_tied_weight_counted_once_and_marked() -> None:
    model = TiedLanguageModel(vocab=100, width=32)
    report = paramscope.inspect(model)
    decoder_weight = next(t for t in report.tensors() if t.path == "decoder/weight")
    assert decoder_weight.shared_with == "embedding/weight"
    assert not decoder_weight.counted
    assert report.totals["all"].tensors == len(list(model.parameters())) + len(list(model.buffers()))
    # The number a naive walk of named_parameters(remove_duplicate=False) would give is larger.
    naive = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert report.totals["all"].params == naive - 100 * 32


def test_buffers_are_state_with_persistence() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model.register_buffer("scratch", torch.zeros(3), persistent=False)
    report = paramscope.inspect(model)
    state = {t.path: t.persistent for t in report.tensors() if t.role is Role.STATE}
    assert state == {
        "scratch": False,
        "1/running_mean": True,
        "1/running_var": True,
        "1/num_batches_tracked": True,
    }
    assert report.totals["state"].bytes == 3 * 4 + 2 * 4 * 4 + 8  # float32s and one int64
    assert set(model.state_dict()) - {t.path.replace("/", ".") for t in report.tensors()} == set()


def test_module_registered_twice_counted_once() -> None:
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    report = paramscope.inspect(model)
    assert report.totals["all"].tensors == 2
    assert {t.shared_with for t in report.tensors() if t.shared_with} == {"0/weight", "0/bias"}
    assert_matches_torch(report, model)


def test_lazy_module_warns() -> None:
    model = nn.Sequential(nn.LazyLinear(4))
    report = paramscope.inspect(model)
    assert report.totals["all"].tensors == 0
    assert any("lazy" in w for w in report.warnings)


def test_modes_recorded_as_set() -> None:
    model = ResNetLike().train()
    model.stem.eval()
    report = paramscope.inspect(model)
    modes = {n.path: n.mode for n in report.nodes()}
    assert modes["stem/1"] == "eval" and modes["layer1/0/bn1"] == "train"


def test_half_precision_bytes() -> None:
    model = nn.Linear(10, 10).to(torch.bfloat16)
    report = paramscope.inspect(model)
    assert report.totals["trainable"].bytes == 110 * 2


def test_inspect_changes_nothing() -> None:
    model = _partly(ResNetLike(), "stem")
    model.train()
    model.layer2.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [(n, p.requires_grad, p.grad) for n, p in model.named_parameters()]
    modes = [m.training for m in model.modules()]
    paramscope.inspect(model)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert [(n, p.requires_grad, p.grad) for n, p in model.named_parameters()] == flags
    assert [m.training for m in model.modules()] == modes


def test_a_half_imported_tf_keras_does_not_break_recognising_torch(monkeypatch) -> None:
    """Another library's tf_keras import that failed midway leaves a module without `layers`."""
    import types

    from paramscope.core.kinds import Kind
    from paramscope.sources.live import live_kind

    monkeypatch.setitem(sys.modules, "tf_keras", types.ModuleType("tf_keras"))
    assert live_kind(torch.nn.Linear(2, 3)) is Kind.TORCH
