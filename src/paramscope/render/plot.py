"""`plot`: parameters per top-level node as horizontal bars, stacked by role, dtype or layer type.

matplotlib is an optional extra (``pip install 'paramscope[plot]'``), imported only here and
only when a chart is drawn, with the Agg backend (no display needed). Every bar segment
carries its group and value in its SVG id (``segment-<params>-<node>-<group>``), so a chart
can be checked against the model's totals without reading pixels.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from paramscope.core.report import Node, Report, Tensor
from paramscope.errors import InputError
from paramscope.render.html_parts.palette import ROLE_COLOURS, colour_of

GROUPINGS = ("role", "dtype", "layer-type")
FORMATS = ("png", "svg")


@dataclass(frozen=True)
class Bars:
    """The chart as numbers: a label per bar and, per group, each bar's parameters."""

    labels: list[str]
    groups: dict[str, list[int]]


def _group_of(by: str, node: Node, tensor: Tensor) -> str:
    return {"role": tensor.role.value, "dtype": tensor.dtype, "layer-type": node.type or "(untyped)"}[by]


def _sum_by(by: str, owned: Iterable[tuple[Node, Tensor]]) -> dict[str, int]:
    """Parameters per group, each tensor counted at its owner (aliases skipped)."""
    found: dict[str, int] = {}
    for node, tensor in owned:
        if tensor.counted:
            group = _group_of(by, node, tensor)
            found[group] = found.get(group, 0) + tensor.params
    return found


def _owned(top: Node) -> Iterator[tuple[Node, Tensor]]:
    return ((node, tensor) for node in top.walk() for tensor in node.tensors)


def bars(report: Report, by: str = "role") -> Bars:
    """One bar per top-level node (the root's own tensors as one more); roles first, in their order."""
    if by not in GROUPINGS:
        raise InputError(f"--by {by}: expected one of {', '.join(GROUPINGS)}")
    root = report.root
    tops = [(child.name or child.path, _sum_by(by, _owned(child))) for child in root.children]
    if own := _sum_by(by, ((root, tensor) for tensor in root.tensors)):
        tops.append(("(root's own)", own))
    found = {group for _, sums in tops for group in sums}
    order = [g for g in ROLE_COLOURS if g in found] + sorted(found - set(ROLE_COLOURS))
    return Bars([label for label, _ in tops], {g: [sums.get(g, 0) for _, sums in tops] for g in order})


def figure(report: Report, by: str = "role"):
    """The matplotlib Figure (not pyplot: nothing global is touched)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    chart = bars(report, by)
    fig = Figure(figsize=(9, 1.2 + 0.35 * max(len(chart.labels), 1)), layout="constrained")
    axes = fig.add_subplot()
    left = [0] * len(chart.labels)
    for index, (group, values) in enumerate(chart.groups.items()):
        drawn = axes.barh(chart.labels, values, left=left, color=colour_of(group, index), label=group)
        for bar, label, value in zip(drawn, chart.labels, values, strict=True):
            bar.set_gid(f"segment-{value}-{_id(label)}-{_id(group)}")
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.invert_yaxis()
    axes.set_xlabel("parameters")
    axes.set_title(f"{report.root.name or '(root)'}: parameters per top-level node, by {by}")
    axes.legend(loc="lower right", fontsize="small")
    return fig


def _id(text: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in text)


def image(report: Report, by: str, fmt: str) -> bytes:
    """The chart as PNG or SVG bytes (an SVG with no date, so the same model gives the same file)."""
    if fmt not in FORMATS:
        raise InputError(f"{fmt!r}: the plot is written as .png or .svg")
    buffer = io.BytesIO()
    figure(report, by).savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()
