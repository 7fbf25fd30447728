"""`diff` as JSON: every structural change, every compared tensor, every node. A statistic
that is not a finite number (the relative change of a tensor that was all zeros in A) is
written as null: JSON has no infinity."""

from __future__ import annotations

import math

from paramscope.core.report import Tensor
from paramscope.ops.diff import Diff, NodeDiff, Pair, ValueDiff
from paramscope.render.envelope import envelope, source_dict


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _tensor(tensor: Tensor) -> dict:
    return {
        "path": tensor.path,
        "key": tensor.key,
        "shape": list(tensor.shape),
        "dtype": tensor.dtype,
        "role": tensor.role.value,
    }


def _pair(pair: Pair) -> dict:
    return {"path": pair.a.path, "a": _tensor(pair.a), "b": _tensor(pair.b)}


def _value(change: ValueDiff) -> dict:
    return {
        "path": change.path,
        "path_b": change.path_b,
        "identical": change.identical,
        "max_abs_delta": finite(change.max_abs_delta),
        "relative_change": finite(change.relative_change),
        "changed_fraction": finite(change.changed_fraction),
    }


def _node(node: NodeDiff) -> dict:
    return {
        "path": node.path,
        "name": node.name,
        "type": node.type,
        "status": node.status,
        "tensors": node.tensors,
        "identical": node.identical,
        "unchanged": node.unchanged,
        "changed": node.changed,
        "not_compared": node.not_compared,
    }


def document(diff: Diff) -> dict:
    return envelope(
        "diff",
        source_dict(diff.source_a),
        source_b=source_dict(diff.source_b),
        summary=diff.summary,
        passed=not diff.failed,
        match=diff.match,
        tolerance=diff.tolerance,
        added=[_tensor(t) for t in diff.added],
        removed=[_tensor(t) for t in diff.removed],
        reshaped=[_pair(p) for p in diff.reshaped],
        dtype_changed=[_pair(p) for p in diff.dtype_changed],
        role_changed=[_pair(p) for p in diff.role_changed],
        changed=[_value(c) for c in diff.changed],
        unchanged=[_value(u) for u in diff.unchanged],
        not_compared=[{"path": n.path, "reason": n.reason} for n in diff.not_compared],
        nodes=[_node(n) for n in diff.nodes],
        expect_frozen=list(diff.expect_frozen),
        frozen_broken=list(diff.frozen_broken),
        notes=list(diff.notes),
    )
