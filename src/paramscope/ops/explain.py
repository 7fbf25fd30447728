"""explain: every count derived in words and numbers, and the user's own numbers answered.

A layer with a spec is explained as a whole (a Bidirectional with both directions, a
MultiHeadAttention with its four projections); a node without one that owns tensors gets the
generic product of its shapes, marked ``generic``. Every formula is checked twice against the
real tensors — its variable list (names, shapes, trainable or state) and its arithmetic value —
and a disagreement is reported — as a paramscope bug for a live model, as a file whose config
contradicts its weights for a file — never shown as the answer.
"""

from __future__ import annotations

import fnmatch
import math
from collections import Counter
from dataclasses import dataclass

from paramscope.core.kinds import Kind
from paramscope.core.report import Node, Report, Role, Tensor
from paramscope.ops.answer import answer
from paramscope.specs.expr import Expr, Sym, product, total
from paramscope.specs.lookup import spec_for
from paramscope.specs.spec import ANY_NAME, LayerSpec


@dataclass(frozen=True)
class Formula:
    symbolic: str
    expression: str
    value: int
    generic: bool


@dataclass(frozen=True)
class LayerExplanation:
    path: str
    type: str
    params: int
    tensors: tuple[Tensor, ...]
    formula: Formula
    text: str
    problem: str | None = None  # set when our formula disagrees with the real tensors (our bug)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _generic(tensors: list[Tensor]) -> Expr:
    return total([product([Sym(f"{t.name}[{i}]", d) for i, d in enumerate(t.shape)] or [1]) for t in tensors])


def _subtree_tensors(node: Node) -> list[Tensor]:
    return list(node.all_tensors())


def _tied_note(tensors: list[Tensor]) -> str:
    aliases = [t for t in tensors if t.shared_with]
    if not aliases:
        return ""
    shared = sum(t.params for t in aliases)
    owners = ", ".join(sorted({t.shared_with for t in aliases}))
    return f" {shared:,} of these are tied to {owners} and counted there, once."


QUANTIZATION_HELPERS = frozenset({"scale", "zero-point", "group-index", "amax-history", "absmax"})


def _as_specified(tensor: Tensor, spec: LayerSpec) -> tuple[int, ...]:
    """The shape the spec would give a tensor: a packed weight (int4) stands for its unpacked one."""
    if tensor.quantized is None or tensor.params == math.prod(tensor.shape):
        return tensor.shape
    unpacked = next((v.shape for v in spec.variables if v.name == tensor.name), None)
    return unpacked if unpacked is not None and math.prod(unpacked) == tensor.params else tensor.shape


def _check(spec: LayerSpec, tensors: list[Tensor], kind: Kind) -> str | None:
    """Why the formula and the real tensors disagree, or None. In a live model that is our bug;
    a file's config may simply contradict the weights stored beside it. A quantized layer's
    scales, zero points and amax histories are no weights of the formula; its quantized weight
    is counted as the weight it stands for (never trained, yet no state)."""
    tensors = [t for t in tensors if t.quantized not in QUANTIZATION_HELPERS]
    named = all(v.name != ANY_NAME for v in spec.variables)
    expected = Counter((v.name if named else ANY_NAME, v.shape, v.state) for v in spec.variables)
    actual = Counter(
        (t.name if named else ANY_NAME, _as_specified(t, spec), t.role is Role.STATE) for t in tensors
    )
    value = sum(t.params for t in tensors)
    if expected == actual and spec.formula.value == value:
        return None
    listed = ", ".join(f"{v.name} {_shape_text(v.shape)}" for v in spec.variables)
    real = ", ".join(f"{t.name} {_shape_text(t.shape)}" for t in tensors)
    disagreement = (
        f"the formula gives {spec.formula.value:,} ({listed}) but the layer holds {value:,} ({real})"
    )
    if kind.is_file:
        return f"the file's config does not match its weights: {disagreement}."
    return f"paramscope bug: {disagreement}. Please report it."


def _unbuilt_lazy(node: Node) -> bool:
    """A torch Lazy* module before its first forward: placeholders of no shape, no count."""
    return node.type.startswith("Lazy") and not any(t.params for t in node.tensors)


def _explain_node(node: Node, kind: Kind) -> tuple[LayerExplanation | None, bool]:
    """The explanation of one node and whether it covered the node's whole subtree."""
    try:
        spec = spec_for(kind, node.type, *node.layer_config())
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        spec, failure = None, f"{type(exc).__name__}: {exc}"
    else:
        failure = None
    if spec is not None and _unbuilt_lazy(node):
        formula = Formula(spec.formula.symbolic, "not known until its first input", 0, False)
        text = (
            f"Not built yet: a {node.type} creates its weights from the first input it sees, so it holds "
            "0 parameters now. Call the model once on a batch and explain again."
        )
        return LayerExplanation(node.path, node.type, 0, tuple(node.tensors), formula, text), True
    if spec is not None:
        tensors = _subtree_tensors(node)
        formula = Formula(spec.formula.symbolic, spec.formula.expression, spec.formula.value, False)
        return (
            LayerExplanation(
                node.path,
                node.type,
                sum(t.params for t in tensors if t.counted),
                tuple(tensors),
                formula,
                spec.why[0].upper() + spec.why[1:] + _tied_note(tensors),
                _check(spec, tensors, kind),
            ),
            True,
        )
    if not node.tensors:
        return None, False
    tensors = list(node.tensors)
    expr = _generic(tensors)
    text = "No formula for this layer class yet: its count is the product of each tensor's shape."
    if failure and "no input shape recorded" in failure:
        text = (
            "This file records no input shapes for its layers (legacy .h5 does not; .keras does), so the "
            "formula cannot be derived from the configuration: its count is the product of each tensor's shape."
        )
    elif failure:
        text += f" (The formula could not be applied: {failure}.)"
    formula = Formula(expr.symbolic, expr.expression, expr.value, True)
    return (
        LayerExplanation(
            node.path, node.type, sum(t.params for t in tensors if t.counted), tuple(tensors), formula, text
        ),
        False,
    )


def explain_layers(report: Report, layer: str | None = None) -> list[LayerExplanation]:
    """Explanations of every weighted layer in model order, or of those matching ``layer``.

    ``layer`` is a node path or a glob over paths (`mobilenetv2_1.00_224/block_16_*`).
    """
    explanations: list[LayerExplanation] = []

    def visit(node: Node) -> None:
        explanation, covered = _explain_node(node, report.source.kind)
        if explanation is not None and (layer is None or fnmatch.fnmatchcase(node.path, layer)):
            explanations.append(explanation)
        if not covered:
            for child in node.children:
                visit(child)

    visit(report.root)
    return explanations


@dataclass(frozen=True)
class Explanation:
    """Every weighted layer's formula and the plain-language answer, for one report."""

    report: Report
    layers: list[LayerExplanation]
    answer: list[str]

    @property
    def problems(self) -> list[LayerExplanation]:
        """Layers whose formula disagrees with their tensors (our bug, or a self-contradicting file)."""
        return [layer for layer in self.layers if layer.problem]


def explain_report(report: Report, layer: str | None = None) -> Explanation:
    return Explanation(report, explain_layers(report, layer), answer(report))
