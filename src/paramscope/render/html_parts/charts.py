"""SVG charts, drawn as markup (no script, no library): an icicle of parameters by node and
horizontal stacked bars.

The icicle puts the root on top and each level of the tree below, every node as wide as its
share of the parameters and split into its roles' colours: a frozen base is an orange block
and a trainable head a blue one, at a glance. Hovering a node shows its path and its counts
per role: the SVG ``<title>`` (the browser's tooltip) and a caption under the chart, shown by
CSS alone so that it works where scripts do not (notebooks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from paramscope.core.report import ROLES, Node, Report
from paramscope.render.html_parts.blocks import escape
from paramscope.render.html_parts.palette import colour_of

WIDTH = 1000  # the SVG's own units; it scales to the page
ROW = 30  # height of one level of the icicle
CAPTION = 26  # the strip under the icicle where a hovered node's counts appear
MIN_WIDTH = 0.5  # nodes narrower than this are not drawn
ICICLE_DEPTH = 3  # levels below the root


@dataclass(frozen=True)
class Box:
    node: Node
    depth: int
    x: float
    width: float
    params: dict[str, int]  # params per role in this subtree


def _params(report: Report, node: Node) -> dict[str, int]:
    totals = report.summaries[id(node)].totals()
    return {role.value: totals[role.value].params for role in ROLES}


def boxes(report: Report, max_depth: int = ICICLE_DEPTH) -> Iterator[Box]:
    """Every drawn node of the icicle, parents before children, children left to right."""
    total = report.totals["all"].params or 1

    def visit(node: Node, depth: int, x: float) -> Iterator[Box]:
        params = _params(report, node)
        width = WIDTH * sum(params.values()) / total
        if width < MIN_WIDTH:
            return
        yield Box(node, depth, x, width, params)
        if depth < max_depth:
            for child in node.children:
                yield from visit(child, depth + 1, x)
                x += WIDTH * report.summaries[id(child)].totals()["all"].params / total

    yield from visit(report.root, 0, 0.0)


def box_caption(box: Box) -> str:
    """`base/bn (BatchNormalization) · frozen 10 · state 10 params`: a node's tooltip line."""
    parts = [f"{role} {params:,}" for role, params in box.params.items() if params]
    kind = f" ({box.node.type})" if box.node.type else ""
    return f"{box.node.path or box.node.name or '(root)'}{kind} · " + " · ".join(parts) + " params"


def _box_svg(box: Box, caption_y: float) -> str:
    y, shown = box.depth * ROW, sum(box.params.values())
    segments, x = [], box.x
    for index, (role, params) in enumerate(box.params.items()):
        if params:
            width = box.width * params / shown
            segments.append(
                f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{ROW - 2}" '
                f'fill="{colour_of(role, index)}" class="role-{role}"/>'
            )
            x += width
    caption = escape(box_caption(box))
    label = escape(box.node.name or "(root)")
    text = (
        f'<text x="{box.x + 4:.2f}" y="{y + ROW / 2 + 4}">{label}</text>'
        if box.width > 8 * len(label)
        else ""
    )
    return (
        f'<g class="node depth-{box.depth}" data-path="{escape(box.node.path)}"><title>{caption}</title>'
        + "".join(segments)
        + text
        + f'<g class="tip"><text x="4" y="{caption_y}">{caption}</text></g></g>'
    )


def icicle(report: Report, max_depth: int = ICICLE_DEPTH) -> str:
    """The icicle as an ``<svg>`` element: one ``g.node`` per drawn node, its class naming its depth."""
    drawn = list(boxes(report, max_depth))
    levels = 1 + max((box.depth for box in drawn), default=0)
    height = levels * ROW + CAPTION
    inner = "\n".join(_box_svg(box, levels * ROW + CAPTION - 8) for box in drawn)
    return (
        f'<svg class="icicle" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="parameters by node, coloured by role">\n{inner}\n</svg>'
    )


BAR = 24  # height of one stacked bar
LABEL = 170  # room for the bars' labels on the left
VALUE = 130  # room for the totals on the right


def _bar_svg(
    index: int, label: str, parts: Mapping[str, int], scale: float, unit: Callable[[int], str]
) -> str:
    y, x = index * (BAR + 6), float(LABEL)
    segments = []
    for position, (group, value) in enumerate(parts.items()):
        if value:
            width = value * scale
            segments.append(
                f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{BAR}" fill="{colour_of(group, position)}" '
                f'class="segment" data-group="{escape(group)}" data-value="{value}">'
                f"<title>{escape(label)} · {escape(group)}: {escape(unit(value))}</title></rect>"
            )
            x += width
    total = sum(parts.values())
    return (
        f'<g class="bar" data-label="{escape(label)}" data-total="{total}">'
        f'<text x="0" y="{y + BAR / 2 + 4}" style="fill: currentColor; stroke: none">{escape(label)}</text>'
        + "".join(segments)
        + f'<text x="{x + 6:.2f}" y="{y + BAR / 2 + 4}" style="fill: currentColor; stroke: none">'
        f"{escape(unit(total))}</text></g>"
    )


def stacked_bars(
    bars: Sequence[tuple[str, Mapping[str, int]]], unit: Callable[[int], str] = "{:,}".format
) -> str:
    """Horizontal bars on one scale, each split into its groups (roles take their colours)."""
    largest = max((sum(parts.values()) for _, parts in bars), default=0) or 1
    scale = (WIDTH - LABEL - VALUE) / largest
    inner = "\n".join(_bar_svg(i, label, parts, scale, unit) for i, (label, parts) in enumerate(bars))
    height = len(bars) * (BAR + 6)
    return (
        f'<svg class="bars" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img">\n'
        f"{inner}\n</svg>"
    )


def legend(groups: Sequence[str]) -> str:
    """The colour key under a chart: a swatch and the name of each group."""
    items = "".join(
        f'<span style="margin-right:1.2em"><span class="swatch" style="background:{colour_of(g, i)}"></span>'
        f"{escape(g)}</span>"
        for i, g in enumerate(groups)
    )
    return f'<p class="legend">{items}</p>'
