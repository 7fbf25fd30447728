"""Layers pruned with ``torch.nn.utils.prune``, told apart by the names pruning leaves.

Pruning ``fc.weight`` removes the ``weight`` parameter and registers ``weight_orig`` (the
parameter the optimizer keeps training) and the buffer ``weight_mask``, plus a forward
pre-hook that recomputes ``weight = weight_orig * weight_mask`` as a plain attribute before
every call. ``parameters()`` and ``state_dict()`` therefore hold ``weight_orig`` and
``weight_mask``, never ``weight``: the counts stay those of the dense layer, and only the mask
says how many weights survive. A live module's mask is counted (``count_nonzero``); a file's
is not read (paramscope reads headers, not tensor data), so the report says it cannot know.
A pair ``<name>_orig`` + ``<name>_mask`` in one layer is the mark, live or in a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ORIG, MASK = "_orig", "_mask"
SHOWN = 8  # pruned tensors named one per line; the rest are summed up in one more


@dataclass(frozen=True)
class Pruned:
    layer: str  # the layer's dotted name, as torch names modules
    tensor: str  # the pruned tensor's name in the layer ("weight")
    total: int  # elements of the mask
    surviving: int | None  # nonzero elements of the mask, where known


def pruned_names(names: Iterable[str]) -> list[tuple[str, str]]:
    """(layer, tensor) of each ``layer.tensor_orig`` that has its ``layer.tensor_mask``."""
    present = set(names)
    found = []
    for name in present:
        if name.endswith(ORIG) and name[: -len(ORIG)] + MASK in present:
            layer, _, tensor = name[: -len(ORIG)].rpartition(".")
            found.append((layer, tensor))
    return sorted(found)


def mask_name(layer: str, tensor: str) -> str:
    """The dotted name of a pruned tensor's mask in a state dict."""
    return f"{layer}.{tensor}{MASK}" if layer else tensor + MASK


def _line(pruned: Pruned) -> str:
    layer = pruned.layer or "the root module"
    formula = f"{pruned.tensor} = {pruned.tensor}{ORIG} × {pruned.tensor}{MASK}"
    if pruned.surviving is None:
        survive = (
            f"how many of its {pruned.total:,} weights survive cannot be known without reading the "
            "mask (paramscope reads headers only)"
        )
    else:
        survive = f"{pruned.surviving:,} of {pruned.total:,} weights survive"
    return f"layer {layer} is pruned (torch.nn.utils.prune): {formula}; {survive}."


def prune_warnings(pruned: list[Pruned]) -> list[str]:
    """One line per pruned tensor, the first ``SHOWN`` of them; one line for the rest."""
    lines = [_line(p) for p in pruned[:SHOWN]]
    rest = pruned[SHOWN:]
    if rest:
        total = sum(p.total for p in rest)
        known = [p.surviving for p in rest]
        survive = f"{sum(known):,} of {total:,}" if None not in known else f"? of {total:,}"
        lines.append(f"{len(rest)} more pruned tensor(s) ({survive} weights survive).")
    return lines


__all__ = ["Pruned", "mask_name", "prune_warnings", "pruned_names"]
