"""Where tensor counts come from: layers with weights, grouped by layer type.

This is the arithmetic behind "len(model.trainable_weights) is the number of layers with
weights times two": for each layer type, how many layers hold tensors of a role and how
many tensors that makes.
"""

from __future__ import annotations

from dataclasses import dataclass

from paramscope.core.report import Node, Report, Role


@dataclass(frozen=True)
class TypeCount:
    type: str
    layers: int
    tensors: int
    params: int

    @property
    def per_layer(self) -> int | None:
        """Tensors per layer when every layer of the type holds the same number, else None."""
        return self.tensors // self.layers if self.tensors % self.layers == 0 else None


def by_layer_type(report: Report, role: Role) -> list[TypeCount]:
    """Per layer type: layers owning tensors of ``role``, their tensors and params; largest first."""
    groups: dict[str, list[int]] = {}
    for node in report.nodes():
        owned = [t for t in node.tensors if t.counted and t.role is role]
        if owned:
            entry = groups.setdefault(node.type, [0, 0, 0])
            entry[0] += 1
            entry[1] += len(owned)
            entry[2] += sum(t.params for t in owned)
    counts = [TypeCount(kind, *numbers) for kind, numbers in groups.items()]
    return sorted(counts, key=lambda c: (-c.tensors, c.type))


@dataclass(frozen=True)
class LayersBelow:
    layers: int  # every layer below the node, at any depth
    weighted: int  # those of them that own tensors


def layers_below(node: Node) -> LayersBelow:
    """What a nested model holds: MobileNetV2 used as one layer of a transfer model holds 154
    layers, 104 of them with weights, and freezing it is still one flag."""
    below = [descendant for descendant in node.walk() if descendant is not node]
    return LayersBelow(len(below), sum(1 for layer in below if layer.tensors))
