"""Memory per device under data-parallel sharding, and what DeepSpeed's own estimator prints.

ZeRO (Rajbhandari et al., 2019) partitions across N devices: stage 1 the optimizer state (the
fp32 master included), stage 2 the gradients too, stage 3 the weights too. With mixed
precision and Adam that is the published 2Ψ + 2Ψ + KΨ/N, 2Ψ + (2 + K)Ψ/N and (4 + K)Ψ/N,
K = 12. FSDP (``fully_shard``) shards weights, gradients and optimizer state like stage 3.

Freezing changes what each stage partitions: only trainable tensors have gradients and
optimizer state, so stages 1 and 2 partition only those, and stage 3 partitions every weight,
frozen ones included. Buffers and statistics (role ``state``) are replicated, as DeepSpeed and
FSDP do, and so are the optimizer's scalars (step counters, its learning rate). Each device
holds an equal share, rounded up (the flat partitions are padded to equal sizes).

DeepSpeed's ``estimate_zero2_model_states_mem_needs`` and ``estimate_zero3_…`` (stage_1_and_2.py
and stage3.py, ``cpu_offload=False``) count every parameter of ``model.parameters()`` whether it
requires grad or not (DeepSpeed#5304, #2615); the figure is shown beside ours for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paramscope.core.report import ROLES, Report, Role
from paramscope.errors import InputError

SHARDINGS = ("none", "zero1", "zero2", "zero3", "fsdp")
# The parts each strategy partitions across devices.
PARTITIONED = {
    "none": (),
    "zero1": ("optimizer", "master_weights"),
    "zero2": ("optimizer", "master_weights", "gradients"),
    "zero3": ("optimizer", "master_weights", "gradients", "weights"),
    "fsdp": ("optimizer", "master_weights", "gradients", "weights"),
}


@dataclass
class Ledger:
    """One part's bytes per role, split into what sharding can partition and what every
    device keeps whole."""

    shardable: dict[str, int] = field(default_factory=lambda: dict.fromkeys(map(str, ROLES), 0))
    replicated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(map(str, ROLES), 0))

    def add(self, role: Role, nbytes: int, *, replicated: bool = False) -> None:
        (self.replicated if replicated else self.shardable)[role.value] += nbytes

    def by_role(self, devices: int = 1) -> dict[str, int]:
        """Bytes per role on one of ``devices`` that share the shardable bytes."""
        return {role: -(-self.shardable[role] // devices) + self.replicated[role] for role in self.shardable}


@dataclass(frozen=True)
class DeepSpeedFigure:
    """What DeepSpeed's estimator prints per GPU, and the parameter counts it was given."""

    estimator: str
    params: int
    largest_layer_params: int | None
    bytes: int

    def as_dict(self) -> dict:
        return {
            "estimator": self.estimator,
            "params": self.params,
            "largest_layer_params": self.largest_layer_params,
            "bytes": self.bytes,
        }


def check_sharding(sharding: str, devices: int) -> None:
    if sharding not in SHARDINGS:
        raise InputError(f"sharding {sharding!r}: expected one of {', '.join(SHARDINGS)}")
    if not isinstance(devices, int) or devices < 1:
        raise InputError(f"devices {devices!r}: expected a positive whole number")


def per_device(ledgers: dict[str, Ledger], sharding: str, devices: int) -> dict[str, int]:
    """Bytes per role on one device: the partitioned parts divided, the rest whole."""
    total = dict.fromkeys(map(str, ROLES), 0)
    for part, ledger in ledgers.items():
        share = devices if part in PARTITIONED[sharding] else 1
        for role, nbytes in ledger.by_role(share).items():
            total[role] += nbytes
    return total


def _deepspeed_counts(report: Report, extra_params: int) -> tuple[int, int]:
    """(parameters, largest layer's own parameters) as ``model.parameters()`` would give them.

    torch registers buffers apart, so tensors of role ``state`` are not parameters there; Keras
    on the torch backend registers every variable, statistics included, as a parameter.
    """
    keras_like = report.source.kind.keras_like
    total, largest = extra_params, 0
    for node in report.nodes():
        own = sum(t.params for t in node.tensors if t.counted and (keras_like or t.role is not Role.STATE))
        total += own
        largest = max(largest, own)
    return total, largest


def deepspeed_figure(
    report: Report, sharding: str, devices: int, extra_params: int
) -> DeepSpeedFigure | None:
    """DeepSpeed's estimate for this stage on ``devices`` GPUs of one node, without offload."""
    if sharding == "none":
        return None
    params, largest = _deepspeed_counts(report, extra_params)
    if sharding in ("zero1", "zero2"):  # DeepSpeed has one estimator for stages 1 and 2
        nbytes = 4 * params + int(16 * params / devices)
        return DeepSpeedFigure("estimate_zero2_model_states_mem_needs", params, None, nbytes)
    nbytes = 4 * largest + int(18 * params / devices)
    return DeepSpeedFigure("estimate_zero3_model_states_mem_needs", params, largest, nbytes)


def describe(sharding: str, devices: int) -> str:
    on = f"{devices} device" + ("s" if devices > 1 else "")
    if sharding == "none":
        return f"no sharding: each of the {on} holds everything"
    parts = ", ".join(p.replace("_", " ") for p in PARTITIONED[sharding])
    return (
        f"{sharding} on {on}: {parts} partitioned (trainable tensors only have gradients and "
        "optimizer state), rounded up to equal shares; buffers, statistics and the optimizer's scalars "
        "replicated; activations are per device, for its own batch"
    )
