"""The rules a memory estimate applied, in words: its ``assumptions``.

A figure nobody can check is a guess, so every estimate says which convention produced each
part, and what the estimators people compare with would have printed instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from paramscope.core.report import Role, Tensor
from paramscope.core.units import plural
from paramscope.ops.memory_plan import Item, LoraSpec
from paramscope.ops.memory_rules import PRECISION_DTYPE
from paramscope.ops.memory_sharding import Ledger, describe

GRADIENTS = "gradients: one per trainable tensor, in its weight's dtype (as torch keeps .grad and Keras computes them)"
NO_ACTIVATIONS = "activations: not measured (give a batch size and an input shape)"


def roles(
    planned: Sequence[Item],
    rules: Sequence[tuple[str, str]],
    lora: LoraSpec | None,
    added: list[Tensor],
) -> str:
    said = []
    if lora is not None:
        params = sum(tensor.params for tensor in added)
        said.append(
            f"LoRA r={lora.rank} on {plural(len(added) // 2, 'layer')} ({', '.join(lora.targets)}): {len(added)} adapters, "
            f"{params:,} params in {added[0].dtype}; everything else frozen first"
        )
    if rules:
        said.append("roles after " + ", ".join(f"{action} {selector}" for action, selector in rules))
    elif lora is None:
        said.append("roles as the model has them")
    unknown = sum(1 for item in planned if item.role is Role.UNKNOWN)
    if unknown:
        said.append(
            f"{unknown:,} tensors of unknown role (the source stores no trainability) count as trainable"
        )
    return "; ".join(said)


def weights(precision: str | None, planned: Sequence[Item]) -> str:
    if precision in PRECISION_DTYPE:
        said = f"weights: floating-point tensors in {PRECISION_DTYPE[precision]}; quantized and integer tensors as stored"
    else:
        said = "weights: every tensor at its stored dtype (quantized ones at their real storage)"
    unknown = sum(1 for item in planned if item.tensor.bytes is None)
    if unknown:
        said += f"; {unknown:,} tensors of a dtype paramscope does not know are not counted"
    return said


def master(precision: str | None) -> str:
    if precision == "mixed-master":
        return (
            "mixed precision with a master copy: float16 weights and gradients, a float32 master copy of every "
            "trainable tensor, and the optimizer state kept in float32 beside it"
        )
    if precision == "amp":
        return (
            "amp (autocast): weights, gradients and optimizer state stay in their stored dtype and operations run "
            "in half precision, so there is no master copy (loss-scale scalars not counted)"
        )
    return ""


def sharding(settings, device) -> list[str]:
    if device is None:
        return []
    said = [describe(settings.sharding, settings.devices)]
    figure = device.deepspeed
    if figure is not None:
        said.append(
            f"DeepSpeed's {figure.estimator} would print {figure.bytes:,} bytes per GPU: it prices all "
            f"{figure.params:,} parameters, trainable or not"
        )
    return said


def others(settings, full: dict[str, Ledger]) -> list[str]:
    """What accelerate's ``estimate-memory`` would print for Adam training."""
    if settings.optimizer not in ("adam", "adamw"):
        return []
    model = sum(full["weights"].by_role().values())
    return [
        f"accelerate estimate-memory's Adam training figure would be {4 * model:,} bytes: 4 × the model's "
        f"{model:,} bytes, trainable or not"
    ]
