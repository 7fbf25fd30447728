"""bitsandbytes 4-bit weights: real parameters counted, parameters()' undercount said and linted."""

from __future__ import annotations

import pytest
import torch

import paramscope

bnb = pytest.importorskip("bitsandbytes")  # in the dev extra; skipped only where it cannot import


def quantized_model() -> torch.nn.Module:
    model = torch.nn.Sequential(
        bnb.nn.Linear4bit(64, 32, quant_type="nf4"), torch.nn.ReLU(), torch.nn.Linear(32, 2)
    )
    return model.to("cpu")  # quantizes the 4-bit layer's weight


def test_real_parameters_counted() -> None:
    model = quantized_model()
    packed = model[0].weight
    assert type(packed).__name__ == "Params4bit" and packed.numel() == 64 * 32 // 2
    report = paramscope.inspect(model)
    weight = next(t for t in report.tensors() if t.path == "0/weight")
    assert (weight.shape, weight.dtype, weight.params, weight.bytes) == ((32, 64), "nf4", 2048, 1024)
    # the framework's own line stays what parameters() really returns
    from paramscope.core.conventions import torch_counts

    assert torch_counts(report)["total_params"] == sum(p.numel() for p in model.parameters())
    assert report.totals["all"].params == sum(p.numel() for p in model.parameters()) + 1024
    assert any("4-bit quantized weights" in w for w in report.warnings)


def test_quantized_count_lint() -> None:
    (finding,) = [f for f in paramscope.lint(quantized_model())[1] if f.rule == "quantized-count"]
    assert "misses 1,024 parameters" in finding.message and "0/weight" in finding.tensors
    plain = torch.nn.Sequential(torch.nn.Linear(64, 32))
    assert not [f for f in paramscope.lint(plain)[1] if f.rule == "quantized-count"]
