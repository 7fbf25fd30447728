"""Which tensors training will hold, and which of them train: roles after the freeze rules, and
the adapters LoRA adds.

Roles follow the model's own framework (``ops/freeze.py``). A file stores no trainability, so
its tensors are ``unknown`` and count as trainable; freeze rules on a file set each selected
tensor's role directly, as torch's ``requires_grad_`` would once the file is loaded.

LoRA follows peft: the whole base is frozen first, then each target layer gets two trainable
adapters of rank ``r``, ``A`` on the layer's input side and ``B`` on its output side, in
float32 (peft upcasts adapters by default; Keras's ``enable_lora`` makes them in the layer's
variable dtype) unless the precision stores weights in half precision. Freeze rules given
beside it apply after (``--unfreeze head`` trains the head too, as peft's ``modules_to_save``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from paramscope.core.dtypes import tensor_bytes
from paramscope.core.kinds import Freezing
from paramscope.core.report import Report, Role, Tensor
from paramscope.core.select import select
from paramscope.errors import InputError
from paramscope.ops.memory_rules import FLOATING, PRECISION_DTYPE, weight_dtype

LEARNABLE = (Role.TRAINABLE, Role.FROZEN, Role.UNKNOWN)
_WEIGHT_NAMES = ("weight", "kernel", "embeddings")  # the tensor LoRA adapts in each framework


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Item:
    """One tensor as training holds it: its role once the rules apply (the per-role key of
    every figure), whether the optimizer updates it, and whether it could be trained at all
    (a learnable role and floating-point values that gradients can reach)."""

    tensor: Tensor
    role: Role
    trains: bool
    learnable: bool


def parse_lora(spec: str | dict | LoraSpec | None) -> LoraSpec | None:
    """``"r=8,targets=q_proj,v_proj"`` (the CLI's form), a dict, or a LoraSpec."""
    if spec is None or isinstance(spec, LoraSpec):
        return spec
    if isinstance(spec, str):
        fields: dict[str, list[str]] = {}
        key = None
        for piece in (p.strip() for p in spec.split(",") if p.strip()):
            name, sep, value = piece.partition("=")
            if sep:
                key = name.strip()
                fields[key] = [value.strip()]
            elif key is not None:  # a comma inside a list: targets=q_proj,v_proj
                fields[key].append(piece)
        spec = {k: v if k == "targets" else v[0] for k, v in fields.items()}
    rank, targets = spec.get("r"), spec.get("targets")
    targets = [targets] if isinstance(targets, str) else list(targets or [])
    if not str(rank).isdigit() or int(rank) < 1 or not targets:
        raise InputError(f"lora {spec!r}: expected r=RANK (a positive whole number) and targets=LAYER,…")
    return LoraSpec(int(rank), tuple(targets))


def lora_rules(lora: LoraSpec | None, rules: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """LoRA freezes the whole base before the user's own rules apply."""
    return [("freeze", "all"), *rules] if lora is not None else list(rules)


def planned_roles(report: Report, rules: list[tuple[str, str]]) -> dict[str, Role]:
    """Every tensor's role (by path) once ``rules`` apply, in order, as the framework would."""
    if not rules:
        return {tensor.path: tensor.role for tensor in report.tensors()}
    if report.source.kind.freezing is not Freezing.NONE:
        from paramscope.ops.freeze import parse_rules, plan_freeze

        return plan_freeze(report, parse_rules(rules=rules)).roles_after
    owner = {t.path: t.shared_with or t.path for t in report.tensors()}
    roles = {t.path: t.role for t in report.tensors() if t.counted}
    for action, selector in rules:
        if action not in ("freeze", "unfreeze"):
            raise InputError(f"rule {action!r}: expected freeze or unfreeze")
        for node in select(report, selector):
            for tensor in node.all_tensors():
                if roles[owner[tensor.path]] in LEARNABLE:
                    roles[owner[tensor.path]] = Role.TRAINABLE if action == "unfreeze" else Role.FROZEN
    return {path: roles[key] for path, key in owner.items()}


def _target_nodes(report: Report, target: str):
    """A bare layer name matches it anywhere (peft's suffix rule); anything else is a selector."""
    if re.fullmatch(r"\w+", target) and target != "all":
        return select(report, f"re:(^|/){re.escape(target)}$")
    return select(report, target)


def _adapted_weight(node) -> Tensor | None:
    for tensor in node.tensors:
        if tensor.name in _WEIGHT_NAMES and len(tensor.shape) >= 2:  # quantized too: QLoRA
            return tensor
    return None


def _adapter_shapes(shape: tuple[int, ...], rank: int, keras_like: bool) -> list[tuple[str, tuple[int, int]]]:
    """Keras's ``enable_lora`` (kernel: inputs…, outputs) or peft's (weight: outputs, inputs…)."""
    if keras_like:
        return [("lora_kernel_a", (math.prod(shape[:-1]), rank)), ("lora_kernel_b", (rank, shape[-1]))]
    return [("lora_A", (rank, math.prod(shape[1:]))), ("lora_B", (shape[0], rank))]


def adapters(report: Report, lora: LoraSpec, precision: str | None) -> list[tuple[Tensor, Tensor]]:
    """(adapted weight, adapter) pairs: A and B for every target layer that owns a weight matrix;
    A maps its inputs to ``r``, B ``r`` to its outputs: r × (inputs + outputs) values."""
    keras_like = report.source.kind.keras_like
    dtype = PRECISION_DTYPE.get(precision or "", "float32")
    pairs, seen = [], set()
    for target in lora.targets:
        for node in _target_nodes(report, target):
            weight = _adapted_weight(node)
            if weight is None or weight.path in seen:
                continue
            seen.add(weight.path)
            for name, dims in _adapter_shapes(weight.shape, lora.rank, keras_like):
                params = math.prod(dims)
                nbytes = tensor_bytes(params, dtype)
                pairs.append(
                    (weight, Tensor(name, f"{node.path}/{name}", dims, dtype, Role.TRAINABLE, params, nbytes))
                )
    if not pairs:
        raise InputError(f"lora targets {', '.join(lora.targets)}: no selected layer owns a weight matrix")
    return pairs


def items(report: Report, roles: dict[str, Role], precision: str | None, extra: list[Tensor]) -> list[Item]:
    """Every counted tensor with its planned role, then the adapters; a tensor trains when its
    role is trainable (or unknown) and it holds floating-point values gradients can reach."""
    result = []
    for tensor in [*(t for t in report.tensors() if t.counted), *extra]:
        role = roles.get(tensor.path, tensor.role)
        floating = tensor.quantized is None and weight_dtype(tensor.dtype, precision) in FLOATING
        trains = floating and role in (Role.TRAINABLE, Role.UNKNOWN)
        result.append(Item(tensor, role, trains, floating and role in LEARNABLE))
    return result


def all_trainable(planned: list[Item], adapter_paths: set[str]) -> list[Item]:
    """The same model with every learnable tensor trained and no adapters: what freezing saves
    is measured against it. The per-role key stays the planned role."""
    return [
        Item(item.tensor, item.role, item.learnable, item.learnable)
        for item in planned
        if item.tensor.path not in adapter_paths
    ]
