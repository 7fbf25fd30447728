"""`diff`: what changed from A to B, the one-line summary first.

What text and Markdown both say is computed here, as plain data: each side named, the nodes
down to a depth, the structural changes (added, removed, reshaped, dtype, role) as lines, and
the changed tensors' statistics as short numbers. JSON gives every tensor and every node with
full-precision numbers instead (render/diff/json.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from paramscope.core.printable import visible
from paramscope.core.report import Source
from paramscope.core.units import plural
from paramscope.ops.diff import Diff, NodeDiff, ValueDiff
from paramscope.render.reading import framework_name

NODE_DEPTH = 2  # node rows shown below the root, as summary shows layers
MAX_LISTED = 12  # tensors listed per section; JSON holds them all
NONE = "—"


def side(source: Source) -> str:
    """`before.pt · torch checkpoint`, or `PyTorch 2.13.0` for a live model."""
    version = f" {source.framework_version}" if source.framework_version else ""
    if source.path:
        return f"{visible(source.path)} · {framework_name(source)}{version}"
    return f"live {framework_name(source)}{version} model"


def number(value: float | None) -> str:
    """Three significant digits; inf where A was all zeros; a dash where only bytes were compared."""
    if value is None:
        return NONE
    return "inf" if math.isinf(value) else f"{value:.3g}"


def percent(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:.0%}" if value in (0.0, 1.0) else f"{value:.2%}"


def node_rows(diff: Diff) -> list[NodeDiff]:
    """The nodes down to NODE_DEPTH (the root's path is empty)."""
    return [node for node in diff.nodes if node.path.count("/") < NODE_DEPTH]


def node_name(node: NodeDiff) -> str:
    return visible(node.path) if node.path else f"{visible(node.name)} (root)"


def change_cells(change: ValueDiff) -> tuple[str, str, str, str]:
    """(path, max |Δ|, ‖Δ‖/‖A‖, fraction changed)."""
    return (
        visible(change.path),
        number(change.max_abs_delta),
        number(change.relative_change),
        percent(change.changed_fraction),
    )


@dataclass(frozen=True)
class Section:
    title: str
    lines: list[str]


def structure(diff: Diff) -> list[Section]:
    """The structural changes, each a titled list of one line per tensor (empty ones left out)."""
    sections = [
        Section("Added in B", [f"{visible(t.path)} {_shape(t.shape)} {t.dtype}" for t in diff.added]),
        Section("Removed from A", [f"{visible(t.path)} {_shape(t.shape)} {t.dtype}" for t in diff.removed]),
        Section(
            "Reshaped",
            [f"{visible(p.a.path)} {_shape(p.a.shape)} → {_shape(p.b.shape)}" for p in diff.reshaped],
        ),
        Section(
            "Dtype changed", [f"{visible(p.a.path)} {p.a.dtype} → {p.b.dtype}" for p in diff.dtype_changed]
        ),
        Section(
            "Role changed",
            [f"{visible(p.a.path)} {p.a.role.value} → {p.b.role.value}" for p in diff.role_changed],
        ),
        Section("Not compared", [f"{visible(n.path)}: {visible(n.reason)}" for n in diff.not_compared]),
    ]
    return [section for section in sections if section.lines]


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def verdict(diff: Diff) -> str | None:
    """The `--expect-frozen` outcome, when selectors were given."""
    if not diff.expect_frozen:
        return None
    selectors = ", ".join(f"'{visible(s)}'" for s in diff.expect_frozen)  # `1` is a layer, not a count
    if diff.failed:
        return f"Expected frozen: {selectors}; yet {plural(len(diff.frozen_broken), 'tensor')} under them changed"
    return f"Expected frozen: {selectors}; nothing under them changed"
