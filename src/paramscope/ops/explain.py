"""explain: every count derived in words and numbers, and the user's own numbers answered.

A layer with a spec is explained as a whole (a Bidirectional with both directions, a
MultiHeadAttention with its four projections); a node without one that owns tensors gets the
generic product of its shapes, marked ``generic``. Every formula is checked twice against the
real tensors — its variable list (names, shapes, trainable or state) and its arithmetic value —
and a disagreement is reported — as a paramscope bug for a live model, as a file whose config
contradicts its weights for a file — never shown as the answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

from paramscope.core.kinds import Family, Kind
from paramscope.core.report import Node, Report, Role, RoleTotals, Tensor, totals_of
from paramscope.core.select import select
from paramscope.ops.answer import answer
from paramscope.specs.expr import Expr, Sym, product, total
from paramscope.specs.lookup import spec_for
from paramscope.specs.spec import ANY_NAME, LayerSpec
from paramscope.specs.torch_modules import LORA_LAYER, lora_layer_config


@dataclass(frozen=True)
class Formula:
    symbolic: str
    expression: str
    value: int
    generic: bool


@dataclass(frozen=True)
class AdapterSplit:
    """A peft LoRA layer's count, split: the adapters fine-tuning adds against the layer they
    wrap, each side's totals per role (adapters train, the base stays frozen, as a rule)."""

    ranks: dict[str, int]  # adapter name -> r
    dora: bool
    adapters: dict[str, RoleTotals]
    base: dict[str, RoleTotals]


@dataclass(frozen=True)
class LayerExplanation:
    path: str
    type: str
    params: int
    tensors: tuple[Tensor, ...]
    formula: Formula
    text: str
    problem: str | None = None  # set when our formula disagrees with the real tensors (our bug)
    adapter: AdapterSplit | None = None  # set on a peft LoRA layer


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


def _lora_config(node: Node, kind: Kind) -> dict | None:
    """A live torch node's peft LoRA config (see specs.torch_modules.lora_layer_config)."""
    return lora_layer_config(node) if kind.live and kind.family is Family.TORCH else None


def _spec(node: Node, kind: Kind) -> LayerSpec | None:
    """The node's spec, found by its class; a peft LoRA layer's by its structure, since peft's
    classes reuse torch's names (Linear, Embedding, Conv2d)."""
    lora = _lora_config(node, kind)
    if lora is not None:
        return spec_for(kind, LORA_LAYER, lora, {})
    spec = spec_for(kind, node.type, *node.layer_config())
    if spec is not None and node.children and any(_lora_config(inner, kind) for inner in node.walk()):
        raise KeyError("peft adapters inside it, each explained with its layer")  # (MultiheadAttention)
    return spec


def adapter_split(node: Node, lora: dict) -> AdapterSplit:
    """A LoRA layer's tensors, those of the wrapped ``base_layer`` against the adapters'."""
    base_path = node.path + "/base_layer/" if node.path else "base_layer/"
    tensors = list(node.all_tensors())
    adapters = lora["adapters"]
    return AdapterSplit(
        ranks={name: adapter["r"] for name, adapter in adapters.items()},
        dora=any(adapter["dora"] for adapter in adapters.values()),
        adapters=totals_of(t for t in tensors if not t.path.startswith(base_path)),
        base=totals_of(t for t in tensors if t.path.startswith(base_path)),
    )


def _explain_node(node: Node, kind: Kind) -> tuple[LayerExplanation | None, bool]:
    """The explanation of one node and whether it covered the node's whole subtree."""
    try:
        spec = _spec(node, kind)
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


def _inside(path: str, selected: list[str]) -> bool:
    """Whether ``path`` is one of the selected nodes or below one (the root's path is "")."""
    return any(not chosen or path == chosen or path.startswith(chosen + "/") for chosen in selected)


def explain_layers(report: Report, layer: str | None = None) -> list[LayerExplanation]:
    """Explanations of every weighted layer in model order, or of those matching ``layer``.

    ``layer`` is a selector, as freeze takes them (a path or glob, `mobilenetv2_1.00_224/block_16_*`,
    `type:LSTM`…): the layers it names and those inside them. One that names no layer is an input
    error suggesting near paths, as in freeze, rather than an empty explanation.
    """
    explanations: list[LayerExplanation] = []
    wanted = None if layer is None else [node.path for node in select(report, layer)]

    def visit(node: Node) -> None:
        explanation, covered = _explain_node(node, report.source.kind)
        if explanation is not None and (wanted is None or _inside(node.path, wanted)):
            lora = _lora_config(node, report.source.kind) if covered else None
            split = adapter_split(node, lora) if lora is not None else None
            explanations.append(dataclasses.replace(explanation, adapter=split))
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

    def _repr_html_(self) -> str:  # Jupyter, VS Code, Colab
        """A display hook: the answer and the formulas as HTML, rendered lazily (ARCHITECTURE.md)."""
        from paramscope.render import notebook_html

        return notebook_html("explain", self)


def _rank_text(ranks: set[int]) -> str:
    return f"r={min(ranks)}" if len(ranks) == 1 else f"r={min(ranks)}–{max(ranks)}"


def lora_answer(report: Report) -> list[str]:
    """For a peft model: its adapters against its frozen base, then the three numbers that
    peft's ``print_trainable_parameters()`` prints, in its own words: parameters only (torch's
    convention), so buffers are in neither."""
    kind = report.source.kind
    splits = [adapter_split(node, lora) for node in report.nodes() if (lora := _lora_config(node, kind))]
    if not splits:
        return []
    method = "DoRA" if any(split.dora for split in splits) else "LoRA"
    ranks = _rank_text({rank for split in splits for rank in split.ranks.values()})
    adapters = {
        role: sum(split.adapters[role].params for split in splits) for role in ("trainable", "frozen")
    }
    trainable, frozen = report.totals["trainable"].params, report.totals["frozen"].params
    line = (
        f"{method} {ranks} on {len(splits):,} modules: {adapters['trainable']:,} adapter params train; "
        f"{frozen - adapters['frozen']:,} base params frozen."
    )
    if adapters["frozen"]:
        line += f" {adapters['frozen']:,} adapter params are frozen (adapters not being trained)."
    if trainable > adapters["trainable"]:
        line += (
            f" {trainable - adapters['trainable']:,} other params train too (modules_to_save, or unfrozen)."
        )
    learnable = trainable + frozen
    share = 100 * trainable / learnable if learnable else 0.0
    counted = f"trainable params: {trainable:,} || all params: {learnable:,} || trainable%: {share:.4f}"
    return [line, f"As peft's print_trainable_parameters() counts them (parameters, not buffers): {counted}"]


def explain_report(report: Report, layer: str | None = None) -> Explanation:
    return Explanation(report, explain_layers(report, layer), lora_answer(report) + answer(report))
