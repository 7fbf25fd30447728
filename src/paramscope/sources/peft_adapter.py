"""PEFT adapter folders: ``adapter_config.json`` beside ``adapter_model.safetensors`` or ``.bin``.

An adapter holds what fine-tuning trained and nothing else: PEFT's ``save_pretrained`` writes
only the adapter's state dict (``get_peft_model_state_dict``: LoRA's ``lora_A``/``lora_B``,
DoRA's ``lora_magnitude_vector``, the copies of ``modules_to_save``), so its tensors are
trainable by definition and their sum is the "trainable params" that
``print_trainable_parameters()`` printed. The base model it attaches to is named in the config,
never read. The folder is recognised by its structure and content: the config must say which
PEFT method it is, and the weights file is read by whatever reader its bytes call for.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.report import Node, Report, Role, Source, Tensor
from paramscope.errors import InputError
from paramscope.sources.boundary import beside, expect, load_json, name_of, read_small
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flat import is_no_trainability_note

CONFIG = "adapter_config.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # the order PEFT loads them in
WEIGHT_KINDS = (Kind.SAFETENSORS, Kind.TORCH_FILE)  # the formats PEFT saves adapter weights in
MAX_RANK = 2**31  # far above any real rank; keeps a hostile one a small integer
TEXT_FIELDS = ("peft_type", "task_type", "base_model_name_or_path", "revision", "peft_version")
FLAG_FIELDS = ("use_dora", "use_rslora")
LIST_FIELDS = ("modules_to_save",)

Reader = Callable[[Path, ReadBudget], Report]


def _text(value: object, key: str, budget: ReadBudget) -> str | None:
    if value is None:
        return None
    return name_of(expect(value, str, f"{CONFIG}: {key}"), budget, f"{CONFIG}: {key}")


def _names(value: object, key: str, budget: ReadBudget) -> list[str] | str | None:
    """A list of module names, or one pattern (PEFT matches a string as a regular expression)."""
    if value is None or isinstance(value, str):
        return _text(value, key, budget)
    return [_text(item, key, budget) for item in expect(value, list, f"{CONFIG}: {key}")]


def _positive(value: object, key: str) -> int:
    number = expect(value, int, f"{CONFIG}: {key}")
    if not 0 < number < MAX_RANK:
        raise InputError(f"{CONFIG}: {key} must be a positive integer, not {number!r:.20}")
    return number


def _alpha(value: object) -> int | float:
    alpha = expect(value, (int, float), f"{CONFIG}: lora_alpha")
    if not math.isfinite(alpha) or abs(alpha) >= MAX_RANK:
        raise InputError(f"{CONFIG}: lora_alpha {alpha!r:.20} is not a usable number")
    return alpha


def _rank_pattern(value: object, budget: ReadBudget) -> dict[str, int]:
    """``rank_pattern``: module name patterns and the rank each gets instead of ``r``."""
    key = "rank_pattern"
    patterns = expect(value, dict, f"{CONFIG}: {key}")
    return {
        _text(name, key, budget): _positive(rank, f"{key} {name!r:.40}") for name, rank in patterns.items()
    }


def adapter_facts(config: object, budget: ReadBudget) -> dict[str, object]:
    """The config's facts as plain, validated values: which method, for which base model, with
    which rank and alpha on which modules. Keys the config lacks are left out."""
    config = expect(config, dict, CONFIG)
    if not isinstance(config.get("peft_type"), str):
        raise InputError(f"{CONFIG}: no peft_type, so not a PEFT adapter config")
    facts: dict[str, object] = {key: _text(config.get(key), key, budget) for key in TEXT_FIELDS}
    facts["target_modules"] = _names(config.get("target_modules"), "target_modules", budget)
    if "r" in config or config["peft_type"] == "LORA":
        facts["r"] = _positive(config.get("r"), "r")
    if config.get("rank_pattern"):
        facts["rank_pattern"] = _rank_pattern(config["rank_pattern"], budget)
    if "lora_alpha" in config:
        facts["lora_alpha"] = _alpha(config["lora_alpha"])
    for key in FLAG_FIELDS:
        if config.get(key) is not None:
            facts[key] = expect(config[key], bool, f"{CONFIG}: {key}")
    for key in LIST_FIELDS:
        facts[key] = _names(config.get(key), key, budget)
    return {key: value for key, value in facts.items() if value is not None}


def _weights_file(folder: Path) -> Path:
    for name in WEIGHTS:
        path = beside(folder, name, "adapter weights")
        if path.is_file():
            return path
    raise InputError(f"{folder}: a PEFT adapter folder ({CONFIG}) without {' or '.join(WEIGHTS)}")


def _trained(root: Node) -> Node:
    """The tree with every tensor whose role the weights file could not tell made trainable:
    an adapter file holds the trained parameters only. Integer tensors stay state."""
    for node in root.walk():
        node.tensors = [
            dataclasses.replace(t, role=Role.TRAINABLE) if t.role is Role.UNKNOWN else t for t in node.tensors
        ]
    return root


def _is_down_projection(tensor: Tensor) -> bool:
    """LoRA's A matrix (r × in): ``lora_A/weight`` (Linear, a convolution's r × in × window),
    or an Embedding adapter's ``lora_embedding_A`` (r × num_embeddings)."""
    return len(tensor.shape) >= 2 and (
        tensor.path.endswith("lora_A/weight") or tensor.name == "lora_embedding_A"
    )


def _is_adapted(node: Node) -> bool:
    """Whether a node is a module carrying an adapter, whatever kind of layer it is."""
    return any(child.name == "lora_A" for child in node.children) or any(
        t.name == "lora_embedding_A" for t in node.tensors
    )


def _rank_notes(root: Node, facts: dict[str, object]) -> list[str]:
    """LoRA ranks the tensors have that neither the config's ``r`` nor its ``rank_pattern``
    gives: a config that does not belong to these weights."""
    rank = facts.get("r")
    if rank is None:
        return []
    patterns = facts.get("rank_pattern", {})
    ranks = {t.shape[0] for t in root.all_tensors() if _is_down_projection(t)}
    other = sorted(ranks - {rank, *patterns.values()})
    if not other:
        return []
    listed = ", ".join(map(str, other[:5]))
    nor = ", nor does its rank_pattern" if patterns else ""
    return [f"{CONFIG} says r={rank}, but lora_A tensors have rank {listed}{nor}: another adapter's config?"]


def read_peft_adapter(folder: Path, budget: ReadBudget, read_weights: Reader) -> Report:
    """The adapter's tensors, all trainable, and its config's facts as the report's metadata.

    ``read_weights`` reads the weights file by its content (detect.py's dispatch), so a
    ``.bin`` that is really safetensors, or a pickle that reaches dangerous code, is treated as
    what it is; the pickle verdict is kept.
    """
    config_path = beside(folder, CONFIG, "adapter config")
    facts = adapter_facts(load_json(read_small(config_path, budget, CONFIG), budget, CONFIG), budget)
    weights = read_weights(_weights_file(folder), budget)
    if weights.source.kind not in WEIGHT_KINDS:
        raise InputError(
            f"{folder}: adapter weights are a {weights.source.kind} file, not safetensors or torch"
        )
    root = _trained(weights.root)
    root.name = folder.name
    method = facts["peft_type"]
    base = facts.get("base_model_name_or_path", "a base model it does not name")
    warnings = [w for w in weights.warnings if not is_no_trainability_note(w)]
    adapted = sum(_is_adapted(node) for node in root.walk())
    on = f" on {adapted:,} module(s)" if adapted else ""
    warnings.insert(
        0, f"a {method} adapter{on} for {base}: only the adapter's tensors are here, all trainable."
    )
    return Report(
        source=Source(kind=Kind.PEFT_ADAPTER, framework_version=facts.get("peft_version"), path=str(folder)),
        root=root,
        optimizer=weights.optimizer,
        warnings=warnings + _rank_notes(root, facts),
        pickle=weights.pickle,
        metadata=facts,
    )
