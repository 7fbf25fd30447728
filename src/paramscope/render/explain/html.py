"""`explain` as HTML: the answer to the user's three numbers, then every weighted layer's
formula in the layer table, checked against its real tensors."""

from __future__ import annotations

from paramscope.ops.explain import Explanation
from paramscope.render.explain import adapter_line
from paramscope.render.html_parts.blocks import details, escape, heading, layer_table
from paramscope.render.html_parts.page import fragment, page
from paramscope.render.summary.html import numbers

SHOWN_PARAGRAPHS = 3  # the notebook's compact view: layers, tensors, parameters


def formulas(explanation: Explanation) -> dict[str, str]:
    """Node path -> `units × (input + 1) = 5 × (6 + 1) = 35` (a LoRA layer's adapters against
    its base after it), or the problem our check found."""
    shown = {}
    for layer in explanation.layers:
        formula = layer.formula
        symbolic = "" if formula.generic else f"{formula.symbolic} = "
        shown[layer.path] = layer.problem or f"{symbolic}{formula.expression} = {formula.value:,}"
        if layer.adapter is not None and not layer.problem:
            shown[layer.path] += f"; {adapter_line(layer.adapter)}"
    return shown


def _answer(paragraphs: list[str]) -> str:
    return '<ul class="explain">' + "".join(f"<li>{escape(p)}</li>" for p in paragraphs) + "</ul>"


def _problems(explanation: Explanation) -> str:
    items = "".join(
        f"<li><code>{escape(layer.path)}</code>: {escape(layer.problem)}</li>"
        for layer in explanation.problems
    )
    return f'<ul class="bad">{items}</ul>' if items else ""


def html(explanation: Explanation) -> str:
    report = explanation.report
    body = [
        heading(report, f"Why {report.root.name or '(root)'} counts what it counts"),
        numbers(report),
        "<h2>What your numbers mean</h2>",
        _answer(explanation.answer),
        _problems(explanation),
        "<h2>Layers and their formulas</h2>",
        layer_table(report, None, formulas(explanation)),
    ]
    return page(f"paramscope explain: {report.root.name}", "\n".join(body))


def notebook(explanation: Explanation) -> str:
    report = explanation.report
    rest = _answer(explanation.answer[SHOWN_PARAGRAPHS:]) + layer_table(report, None, formulas(explanation))
    body = [
        heading(report),
        numbers(report),
        _answer(explanation.answer[:SHOWN_PARAGRAPHS]),
        _problems(explanation),
        details("More, and every layer's formula", rest),
    ]
    return fragment("\n".join(body))
