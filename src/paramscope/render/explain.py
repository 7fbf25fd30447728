"""Rendering an Explanation: each layer's formula, then the plain-language answer."""

from __future__ import annotations

import json

from rich.console import Group, RenderableType
from rich.text import Text

from paramscope.ops.explain import Explanation, LayerExplanation
from paramscope.render.json import SCHEMA_VERSION, file_facts, source_dict, tensor_dict
from paramscope.render.markdown import malicious_markdown
from paramscope.render.text import ROLE_STYLE, malicious_panel, plain_text, source_line
from paramscope.render.tree_rows import shape_text


def _tensor_list(layer: LayerExplanation) -> str:
    return ", ".join(f"{t.name} {shape_text(t)}" for t in layer.tensors)


def _layer_block(layer: LayerExplanation) -> RenderableType:
    title = Text.assemble((layer.path or "(root)", "bold"), f" ({layer.type}) · {layer.params:,} params")
    if layer.problem:
        return Group(title, Text("  " + layer.problem, style="bold red"), Text(""))
    formula = layer.formula
    lines = [title]
    if not formula.generic:
        lines.append(Text("  " + formula.symbolic, style="cyan"))
    lines.append(Text(f"  = {formula.expression} = {formula.value:,}"))
    tensors = Text("  ")
    for i, tensor in enumerate(layer.tensors):
        if i:
            tensors.append(", ")
        tensors.append(f"{tensor.name} {shape_text(tensor)} ")
        tensors.append(tensor.role.value, style=ROLE_STYLE[tensor.role.value])
        if tensor.shared_with:
            tensors.append(f" → {tensor.shared_with}", style="italic")
    lines += [tensors, Text("  " + layer.text, style="dim"), Text("")]
    return Group(*lines)


def explanation_renderable(explanation: Explanation) -> Group:
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


def render_explanation_text(explanation: Explanation, width: int = 100) -> str:
    return plain_text(explanation_renderable(explanation), width)


def render_explanation_markdown(explanation: Explanation) -> str:
    report = explanation.report
    lines = [*malicious_markdown(report), f"## Why {report.root.name or '(root)'} counts what it counts", ""]
    for layer in explanation.layers:
        lines.append(f"### {layer.path or '(root)'} ({layer.type}) · {layer.params:,} params")
        lines.append("")
        if layer.problem:
            lines += [f"> **{layer.problem}**", ""]
            continue
        if not layer.formula.generic:
            lines.append(f"`{layer.formula.symbolic}`  ")
        lines.append(f"= `{layer.formula.expression}` = **{layer.formula.value:,}**  ")
        lines.append(f"Tensors: {_tensor_list(layer)}  ")
        lines += [layer.text, ""]
    lines += ["## What your numbers mean", ""]
    lines += [f"- {paragraph}" for paragraph in explanation.answer]
    return "\n".join(lines) + "\n"


def explanation_dict(explanation: Explanation) -> dict:
    source = explanation.report.source
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source_dict(source),
        **file_facts(explanation.report),
        "layers": [
            {
                "path": layer.path,
                "type": layer.type,
                "params": layer.params,
                "tensors": [tensor_dict(t) for t in layer.tensors],
                "formula": {
                    "symbolic": layer.formula.symbolic,
                    "expression": layer.formula.expression,
                    "value": layer.formula.value,
                    "generic": layer.formula.generic,
                },
                "text": layer.text,
                "problem": layer.problem,
            }
            for layer in explanation.layers
        ],
        "answer": "\n".join(explanation.answer),
    }


def render_explanation_json(explanation: Explanation) -> str:
    return json.dumps(explanation_dict(explanation), indent=2) + "\n"


EXPLANATION_RENDERERS = {
    "text": render_explanation_text,
    "md": render_explanation_markdown,
    "json": render_explanation_json,
}
