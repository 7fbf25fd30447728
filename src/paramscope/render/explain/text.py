"""`explain` as text: a block per layer (formula, arithmetic, tensors, words), then the answer."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from paramscope.ops.explain import Explanation, LayerExplanation
from paramscope.render.console import ROLE_STYLE, malicious_panel, source_line
from paramscope.render.explain import adapter_line, tensor_label
from paramscope.render.tree_rows import shape_text


def _tensors_line(layer: LayerExplanation) -> Text:
    """`  kernel (501, 160) trainable, bias (160,) trainable`, each role in its colour."""
    line = Text("  ")
    for i, tensor in enumerate(layer.tensors):
        if i:
            line.append(", ")
        line.append(f"{tensor_label(layer, tensor)} {shape_text(tensor)} ")
        line.append(tensor.role.value, style=ROLE_STYLE[tensor.role.value])
        if tensor.shared_with:
            line.append(f" → {tensor.shared_with}", style="italic")
    return line


def _layer_block(layer: LayerExplanation) -> RenderableType:
    title = Text.assemble((layer.path or "(root)", "bold"), f" ({layer.type}) · {layer.params:,} params")
    if layer.problem:
        return Group(title, Text("  " + layer.problem, style="bold red"), Text(""))
    formula = layer.formula
    lines = [title]
    if not formula.generic:
        lines.append(Text("  " + formula.symbolic, style="cyan"))
    lines.append(Text(f"  = {formula.expression} = {formula.value:,}"))
    if layer.adapter is not None:
        lines.append(Text("  " + adapter_line(layer.adapter), style="green"))
    lines += [_tensors_line(layer), Text("  " + layer.text, style="dim"), Text("")]
    return Group(*lines)


def renderable(explanation: Explanation) -> Group:
    parts: list[RenderableType] = [
        *malicious_panel(explanation.report),
        source_line(explanation.report),
        Text(""),
    ]
    parts += [_layer_block(layer) for layer in explanation.layers]
    if not explanation.layers:
        parts.append(Text("No layer matched.", style="yellow"))
    parts.append(Text("What your numbers mean", style="bold underline"))
    parts += [Text(paragraph) for paragraph in explanation.answer]
    return Group(*parts)
