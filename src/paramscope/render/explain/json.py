"""`explain` as JSON: per layer its formula (symbolic, with numbers, value) and tensors."""

from __future__ import annotations

from paramscope.ops.explain import AdapterSplit, Explanation, LayerExplanation
from paramscope.render.envelope import envelope, file_facts, source_dict, tensor_dict, totals_dict


def _adapter_dict(split: AdapterSplit | None) -> dict | None:
    """A peft LoRA layer: ranks per adapter name, DoRA or not, the adapters' totals per role
    against those of the base layer they wrap."""
    if split is None:
        return None
    return {
        "ranks": split.ranks,
        "dora": split.dora,
        "adapters": totals_dict(split.adapters),
        "base": totals_dict(split.base),
    }


def _layer_dict(layer: LayerExplanation) -> dict:
    return {
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
        "adapter": _adapter_dict(layer.adapter),
    }


def document(explanation: Explanation) -> dict:
    return envelope(
        "explain",
        source_dict(explanation.report.source),
        **file_facts(explanation.report),
        layers=[_layer_dict(layer) for layer in explanation.layers],
        answer="\n".join(explanation.answer),
    )
