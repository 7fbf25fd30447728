"""Cells of the layer tables that several renderers share (summary's rows are chosen in
render/summary/view.py): tensor counts by role, shapes as Python writes them."""

from __future__ import annotations

from paramscope.core.report import Tensor


def tensor_counts(counts: dict[str, int]) -> str:
    """`2/156/104` (trainable/frozen/state), then `/3?` when some roles are unknown."""
    text = f"{counts['trainable']:,}/{counts['frozen']:,}/{counts['state']:,}"
    return text + (f"/{counts['unknown']:,}?" if counts["unknown"] else "")


def tensor_counts_title(counts: list[dict[str, int]]) -> str:
    """The heading over ``tensor_counts`` cells: a fourth letter once any cell has a fourth count."""
    return "Tensors T/F/S/U" if any(cell["unknown"] for cell in counts) else "Tensors T/F/S"


def dims_text(dims: tuple) -> str:
    """`(None, 7, 7, 1280)`, `(23,)`, `()`: a shape as Python prints the tuple."""
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def shape_text(tensor: Tensor) -> str:
    return dims_text(tensor.shape)


def output_shape_text(shape: tuple | None) -> str:
    """A layer's output shape, or nothing where the source knows none."""
    return dims_text(shape) if shape is not None else ""
