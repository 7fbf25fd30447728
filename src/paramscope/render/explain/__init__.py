"""`explain`: each weighted layer's formula, checked against its tensors, then the answer.

What its text and Markdown both say of a peft LoRA layer is composed here, as plain text.
"""

from __future__ import annotations

from paramscope.core.report import ROLES, RoleTotals, Tensor
from paramscope.ops.explain import AdapterSplit, LayerExplanation


def _by_role(totals: dict[str, RoleTotals]) -> str:
    """`608 trainable`, `3,168 frozen`, `12 trainable + 4 frozen`: the params of each role held."""
    parts = [f"{totals[role.value].params:,} {role.value}" for role in ROLES if totals[role.value].params]
    return " + ".join(parts) or "0"


def adapter_line(split: AdapterSplit) -> str:
    """`LoRA default r=4: adapters 608 trainable · base 3,168 frozen`."""
    method = "DoRA" if split.dora else "LoRA"
    ranks = ", ".join(f"{name} r={rank}" for name, rank in split.ranks.items())
    return f"{method} {ranks}: adapters {_by_role(split.adapters)} · base {_by_role(split.base)}"


def tensor_label(layer: LayerExplanation, tensor: Tensor) -> str:
    """A tensor's name in its layer's line: its own name, or under a LoRA layer, where the base's
    ``weight`` and each adapter's would read alike, its dotted name inside the layer
    (``base_layer.weight``, ``lora_A.default.weight``)."""
    if layer.adapter is None:
        return tensor.name
    inside = tensor.path.removeprefix(layer.path + "/") if layer.path else tensor.path
    return inside.replace("/", ".")
