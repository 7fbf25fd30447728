"""diff: what changed between two models or checkpoints, tensor by tensor and node by node.

Structure first. Tensors are matched by path — the same in a torch module, its state dict,
its safetensors file — or, on request, by order and shape (``match="order"``): a ``.keras``
model and its torch port name nothing alike, and the diff says so rather than guess. Matched
pairs are sorted into reshaped, dtype-changed and role-changed; the rest are added or
removed. Then values, one pair at a time, each side read from its source in bounded chunks
(diff_values.py): bit-identical, or changed with its statistics, or unchanged within the
tolerance. Then per node, so that "only the head changed; the base is bit-identical" is one
line (:attr:`Diff.summary`). ``expect_frozen`` names layers (core/select.py selectors) whose
tensors must not have changed; :attr:`Diff.frozen_broken` lists those that did.

The values come from the API, which owns the sources: anything with an ``of(tensor)`` that
answers a tensor's values or why it has none (:class:`ValueSource`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Protocol

from paramscope.core.report import Node, Report, Role, Source, Tensor
from paramscope.core.select import select
from paramscope.errors import InputError
from paramscope.ops.diff_values import Comparison, TensorValues, compare

MATCHES = ("name", "order")
NAMES_DIFFER = (
    "only {matched} of {fewest} tensors have a path found in both: these models name their tensors "
    "differently (a .keras model and its torch port do). match='order' pairs them by order and shape, "
    "which pairs {by_order}."
)
SHOWN_NAMES = 4
IDENTICAL, UNCHANGED, CHANGED, NOT_COMPARED = "bit-identical", "unchanged", "changed", "not compared"
PARTLY = "partly changed"


class ValueSource(Protocol):
    def of(self, tensor: Tensor) -> TensorValues | str: ...


@dataclass(frozen=True)
class Pair:
    """A tensor of A and the tensor of B it was matched with."""

    a: Tensor
    b: Tensor


@dataclass(frozen=True)
class ValueDiff:
    """What one matched pair's values did (the statistics are None where only stored bytes
    could be compared: quantized tensors, float8, 4-bit)."""

    path: str
    path_b: str
    identical: bool  # equal bytes
    max_abs_delta: float | None
    relative_change: float | None  # ‖B - A‖ / ‖A‖
    changed_fraction: float | None  # of the elements, those that moved by more than the tolerance


@dataclass(frozen=True)
class NotCompared:
    path: str
    reason: str


@dataclass(frozen=True)
class NodeDiff:
    """What happened under one node of A (its subtree's tensors; added ones under the node
    of B's that has its path)."""

    path: str
    name: str
    type: str
    identical: int
    unchanged: int  # within the tolerance, not bit-identical
    changed: int  # values changed, reshaped, removed or added
    not_compared: int

    @property
    def tensors(self) -> int:
        return self.identical + self.unchanged + self.changed + self.not_compared

    @property
    def status(self) -> str:
        """bit-identical, unchanged, changed, partly changed or not compared (its compared
        tensors judged; those not compared said apart)."""
        compared = self.identical + self.unchanged + self.changed
        if compared == 0:
            return NOT_COMPARED
        if self.changed == 0:
            return IDENTICAL if self.unchanged == 0 else UNCHANGED
        return CHANGED if self.changed == compared else PARTLY


@dataclass
class Diff:
    """What changed from A to B. Every matched pair of equal shape is in exactly one of
    ``changed``, ``unchanged`` (bit-identical, or within the tolerance) and ``not_compared``;
    ``dtype_changed`` and ``role_changed`` say more about some of them."""

    source_a: Source
    source_b: Source
    match: str
    tolerance: float
    added: list[Tensor]
    removed: list[Tensor]
    reshaped: list[Pair]
    dtype_changed: list[Pair]
    role_changed: list[Pair]
    changed: list[ValueDiff]
    unchanged: list[ValueDiff]
    not_compared: list[NotCompared]
    nodes: list[NodeDiff] = field(default_factory=list)
    expect_frozen: tuple[str, ...] = ()
    frozen_broken: list[str] = field(default_factory=list)  # tensors under expect_frozen that changed
    notes: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def failed(self) -> bool:
        """Something that ``expect_frozen`` says must not change did."""
        return bool(self.frozen_broken)

    def _repr_html_(self) -> str:  # Jupyter, VS Code, Colab
        """A display hook: the summary, nodes and changes as HTML, rendered lazily (ARCHITECTURE.md)."""
        from paramscope.render import notebook_html

        return notebook_html("diff", self)


def _counted(report: Report) -> list[Tensor]:
    return [tensor for tensor in report.tensors() if tensor.counted]


def match_by_name(a: list[Tensor], b: list[Tensor]) -> tuple[list[Pair], list[Tensor], list[Tensor]]:
    """(pairs, removed, added) by path."""
    in_b = {tensor.path: tensor for tensor in b}
    in_a = {tensor.path for tensor in a}
    pairs = [Pair(tensor, in_b[tensor.path]) for tensor in a if tensor.path in in_b]
    return pairs, [t for t in a if t.path not in in_b], [t for t in b if t.path not in in_a]


def match_by_order(a: list[Tensor], b: list[Tensor]) -> tuple[list[Pair], list[Tensor], list[Tensor]]:
    """(pairs, removed, added): the longest runs of equal shapes, in model order."""
    matcher = SequenceMatcher(None, [t.shape for t in a], [t.shape for t in b], autojunk=False)
    pairs = [Pair(a[i + k], b[j + k]) for i, j, n in matcher.get_matching_blocks() for k in range(n)]
    paired_a, paired_b = {id(p.a) for p in pairs}, {id(p.b) for p in pairs}
    return pairs, [t for t in a if id(t) not in paired_a], [t for t in b if id(t) not in paired_b]


def _names_note(a: list[Tensor], b: list[Tensor], pairs: list[Pair]) -> list[str]:
    fewest = min(len(a), len(b))
    if len(pairs) >= fewest / 2:
        return []
    by_order = len(match_by_order(a, b)[0])
    if by_order <= len(pairs):
        return []
    return [NAMES_DIFFER.format(matched=len(pairs), fewest=fewest, by_order=by_order)]


def _role_changed(pair: Pair) -> bool:
    roles = (pair.a.role, pair.b.role)
    return Role.UNKNOWN not in roles and roles[0] != roles[1]


def _value_diff(pair: Pair, comparison: Comparison) -> ValueDiff:
    return ValueDiff(
        pair.a.path,
        pair.b.path,
        comparison.identical,
        comparison.max_abs_delta,
        comparison.relative_change,
        comparison.changed_fraction,
    )


@dataclass
class _Outcome:
    """Each A tensor's fate (identical, unchanged, changed, not compared), by path."""

    by_path: dict[str, str] = field(default_factory=dict)
    added_under: Counter = field(default_factory=Counter)  # A node path -> tensors added below it


def _compare_values(pairs: list[Pair], values_a: ValueSource, values_b: ValueSource, diff: Diff) -> _Outcome:
    outcome = _Outcome()
    for pair in pairs:
        path = pair.a.path
        if pair.a.shape != pair.b.shape:
            diff.reshaped.append(pair)
            outcome.by_path[path] = CHANGED
            continue
        found_a, found_b = values_a.of(pair.a), values_b.of(pair.b)
        if isinstance(found_a, str) or isinstance(found_b, str):
            reason = f"A: {found_a}" if isinstance(found_a, str) else f"B: {found_b}"
            diff.not_compared.append(NotCompared(path, reason))
            outcome.by_path[path] = NOT_COMPARED
            continue
        comparison = compare(pair.a, pair.b, found_a, found_b, diff.tolerance)
        (diff.changed if comparison.changed else diff.unchanged).append(_value_diff(pair, comparison))
        outcome.by_path[path] = (
            CHANGED if comparison.changed else IDENTICAL if comparison.identical else UNCHANGED
        )
    return outcome


def _node_of(path: str, nodes: set[str]) -> str:
    """The deepest node of A whose path leads to ``path`` (a tensor of B)."""
    while path and path not in nodes:
        path = path.rpartition("/")[0]
    return path


def _nodes(report: Report, outcome: _Outcome) -> list[NodeDiff]:
    """Every node of A with tensors below it, its counts taken bottom-up in one pass."""
    counts: dict[int, Counter] = {}
    walked = list(report.nodes())
    for node in reversed(walked):
        here = Counter(outcome.by_path[t.path] for t in node.tensors if t.path in outcome.by_path)
        here[CHANGED] += outcome.added_under[node.path]
        for child in node.children:
            here.update(counts[id(child)])
        counts[id(node)] = here
    return [
        NodeDiff(
            node.path,
            node.name,
            node.type,
            *(counts[id(node)][key] for key in (IDENTICAL, UNCHANGED, CHANGED, NOT_COMPARED)),
        )
        for node in walked
        if counts[id(node)].total()
    ]


def _parts(node: Node, by_path: dict[str, NodeDiff], outcome: _Outcome) -> list[tuple[str, str]]:
    """(path, status) of the fewest nodes and tensors that say what happened below ``node``:
    a node whose tensors all did the same, else its own tensors one by one and its children."""
    diff = by_path.get(node.path)
    if diff is None:
        return []
    if diff.status != PARTLY:
        return [(node.path, diff.status)]
    parts = [(t.path, outcome.by_path[t.path]) for t in node.tensors if t.path in outcome.by_path]
    for child in node.children:
        parts += _parts(child, by_path, outcome)
    return parts


def _named(name: str) -> str:
    """A name as the one-line summary lists it: quoted where it would read as a number
    (torch's Sequential children are `0`, `1`: "0 bit-identical" would say none was)."""
    return f"'{name}'" if name.replace(".", "").replace("/", "").isdigit() else name


def _listing(names: list[str]) -> str:
    shown = ", ".join(_named(name) for name in names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _tensors(count: int) -> str:
    return f"{count:,} tensor" + ("" if count == 1 else "s")


def _whole(status: str, tally: Counter, total: int, tolerance: float) -> str:
    """What the whole model did, when all its compared tensors did the same."""
    compared = tally[IDENTICAL] + tally[UNCHANGED]
    tensors = f"all {_tensors(total)}" if compared == total else f"{compared:,} of {_tensors(total)}"
    if status == IDENTICAL:
        return f"{tensors} bit-identical"
    return f"{tensors} {_unchanged(tolerance)} ({tally[IDENTICAL]:,} bit-identical)"


def _unchanged(tolerance: float) -> str:
    """What "unchanged, not bit-identical" means: within the tolerance, or with none given, the
    same values stored differently (a cast that lost nothing)."""
    return f"unchanged within {tolerance:g}" if tolerance else "equal in value, stored differently"


def _summary(diff: Diff, report: Report, outcome: _Outcome, total: int) -> str:
    """One line: what changed, where, and what did not."""
    parts = _parts(report.root, {node.path: node for node in diff.nodes}, outcome)
    lines = []
    changed = len(diff.changed) + len(diff.reshaped)
    if changed == total:
        lines.append(f"all {_tensors(total)} changed")
    elif changed:
        removed = {t.path for t in diff.removed}  # said apart, below
        moved = [path or report.root.name for path, done in parts if done == CHANGED and path not in removed]
        lines.append(f"{changed:,} of {_tensors(total)} changed: {_listing(moved)}")
    if len(parts) == 1 and parts[0][0] == "" and parts[0][1] in (IDENTICAL, UNCHANGED):
        lines.append(_whole(parts[0][1], Counter(outcome.by_path.values()), total, diff.tolerance))
    else:
        for status, words in (
            (IDENTICAL, "bit-identical"),
            (UNCHANGED, _unchanged(diff.tolerance)),
        ):
            names = [path for path, done in parts if done == status]
            if names:
                lines.append(f"{_listing(names)} {words}")
    counts = (
        ("dtype changed", diff.dtype_changed),
        ("added", diff.added),
        ("removed", diff.removed),
        ("not compared", diff.not_compared),
    )
    lines += [f"{len(items):,} {word}" for word, items in counts if items]
    if diff.frozen_broken:
        lines.append(f"expected frozen, yet changed: {_listing(diff.frozen_broken)}")
    return "; ".join(lines) or "nothing to compare"


def _frozen_broken(report: Report, selectors: Iterable[str], outcome: _Outcome) -> list[str]:
    """The tensors under the selected layers of A that changed, were reshaped or removed."""
    selected: set[str] = set()
    for selector in selectors:
        for node in select(report, selector):
            selected.update(t.path for t in node.all_tensors() if t.counted)
    return [t.path for t in report.tensors() if t.path in selected and outcome.by_path.get(t.path) == CHANGED]


def diff_reports(
    a: Report,
    b: Report,
    values_a: ValueSource,
    values_b: ValueSource,
    *,
    tolerance: float = 0.0,
    expect_frozen: Iterable[str] = (),
    match: str = "name",
) -> Diff:
    """What changed from A to B (see the module docstring)."""
    if match not in MATCHES:
        raise InputError(f"match must be one of {', '.join(MATCHES)}, not {match!r:.40}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"tolerance must be a finite number >= 0, not {tolerance!r}")
    tensors_a, tensors_b = _counted(a), _counted(b)
    pairs, removed, added = (match_by_name if match == "name" else match_by_order)(tensors_a, tensors_b)
    diff = Diff(
        a.source,
        b.source,
        match,
        tolerance,
        added=added,
        removed=removed,
        reshaped=[],
        dtype_changed=[p for p in pairs if p.a.dtype != p.b.dtype],
        role_changed=[p for p in pairs if _role_changed(p)],
        changed=[],
        unchanged=[],
        not_compared=[],
        expect_frozen=tuple(expect_frozen),
        notes=_names_note(tensors_a, tensors_b, pairs) if match == "name" else [],
    )
    outcome = _compare_values(pairs, values_a, values_b, diff)
    outcome.by_path.update((t.path, CHANGED) for t in removed)
    node_paths = {node.path for node in a.nodes()}
    outcome.added_under.update(_node_of(t.path.rpartition("/")[0], node_paths) for t in added)
    diff.nodes = _nodes(a, outcome)
    diff.frozen_broken = _frozen_broken(a, diff.expect_frozen, outcome)
    diff.summary = _summary(diff, a, outcome, len(tensors_a))
    return diff
