"""Fingerprints: equal bits give equal fingerprints, and the smallest real change is seen."""

from __future__ import annotations

import pytest
import torch

from paramscope.guards.fingerprint import fingerprints

INTEGER_OF = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float64: torch.int64}


def _one_ulp_away(tensor: torch.Tensor, index: int) -> torch.Tensor:
    """The next representable value at ``index``: its bits plus one, the smallest change there is."""
    changed = tensor.clone()
    changed.view(-1).view(INTEGER_OF[tensor.dtype])[index] += 1
    return changed


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("numel", [1, 7, 1000, 70_001])
def test_one_ulp_anywhere_changes_the_fingerprint(dtype: torch.dtype, numel: int) -> None:
    tensor = torch.randn(numel, generator=torch.Generator().manual_seed(0)).to(dtype)
    before = fingerprints([tensor])
    assert fingerprints([tensor.clone()]) == before
    for index in {0, numel // 2, numel - 1}:
        changed = _one_ulp_away(tensor, index)
        assert not torch.equal(changed, tensor)
        assert fingerprints([changed]) != before, (dtype, numel, index)


def test_bits_not_values() -> None:
    """NaN is equal to itself and -0.0 differs from 0.0: what bit-identical means."""
    nan = torch.tensor([float("nan"), 1.0])
    assert fingerprints([nan]) == fingerprints([nan.clone()])
    assert fingerprints([torch.tensor([0.0])]) != fingerprints([torch.tensor([-0.0])])


def test_rows_swapped_and_integers_and_views() -> None:
    """Words swapped between rows change the fingerprint; integer buffers and strided views are read."""
    tensor = torch.arange(600, dtype=torch.float32)
    swapped = tensor.clone()
    swapped[[0, 300]] = swapped[[300, 0]]
    assert fingerprints([swapped]) != fingerprints([tensor])
    counter = torch.tensor(5, dtype=torch.int64)
    assert fingerprints([counter]) != fingerprints([counter + 1])
    matrix = torch.randn(6, 5)
    assert fingerprints([matrix.t()]) == fingerprints([matrix.t().contiguous()])
