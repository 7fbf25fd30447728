"""`explain` as Markdown: a section per layer, then the answer as a list."""

from __future__ import annotations

from paramscope.ops.explain import Explanation, LayerExplanation
from paramscope.render.explain import adapter_line, tensor_label
from paramscope.render.html_parts.collapsible import collapsible
from paramscope.render.markup import malicious_markdown, quoted
from paramscope.render.reading import type_suffix
from paramscope.render.tree_rows import shape_text


def _layer_section(layer: LayerExplanation) -> list[str]:
    lines = [f"### {quoted(layer.path or '(root)')}{type_suffix(layer.type)} · {layer.params:,} params", ""]
    if layer.problem:
        return [*lines, f"> **{layer.problem}**", ""]
    if not layer.formula.generic:
        lines.append(f"`{layer.formula.symbolic}`  ")
    tensors = ", ".join(f"{tensor_label(layer, t)} {shape_text(t)}" for t in layer.tensors)
    lines.append(f"= `{layer.formula.expression}` = **{layer.formula.value:,}**  ")
    if layer.adapter is not None:
        lines.append(adapter_line(layer.adapter) + "  ")
    lines.append(f"Tensors: {tensors}  ")
    return [*lines, layer.text, ""]


def markdown(explanation: Explanation) -> str:
    report = explanation.report
    lines = [
        *malicious_markdown(report),
        f"## Why {quoted(report.root.name or '(root)')} counts what it counts",
        "",
    ]
    sections = [line for layer in explanation.layers for line in _layer_section(layer)]
    count = len(explanation.layers)
    lines += collapsible(f"Every layer's formula ({count:,} layers)", sections, count)
    lines += ["## What your numbers mean", ""]
    lines += [f"- {paragraph}" for paragraph in explanation.answer]
    return "\n".join(lines) + "\n"
