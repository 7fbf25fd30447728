"""memory: what training this model costs with this freeze, part by part and per role.

Every estimator people use ignores freezing: accelerate's ``estimate-memory`` prices every
parameter at 16 bytes for Adam in fp32, DeepSpeed's ZeRO estimators count every parameter
whether it requires grad or not. Here each tensor is priced by what training really keeps for
it — its weights always; a gradient, optimizer state and (mixed precision) an fp32 master copy
only when it trains — by its framework's own rules (``memory_rules``), after the freeze rules
and LoRA (``memory_plan``), per device under sharding (``memory_sharding``). Activations are
measured by the caller's meter (a driver in ``sources/activations.py``), never guessed. The
same model with everything trainable is priced too, so what freezing saved is one subtraction.

Every figure is ``{bytes, by_role}``, keyed by each tensor's role once the rules apply, so
``saved_by_freezing.by_role["frozen"]`` is what the frozen tensors no longer cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from paramscope.core.dtypes import tensor_bytes
from paramscope.core.report import ROLES, Report, Role
from paramscope.errors import InputError
from paramscope.ops import memory_rules as rules_of
from paramscope.ops import memory_words as words
from paramscope.ops.memory_plan import (
    Item,
    LoraSpec,
    adapters,
    all_trainable,
    items,
    lora_rules,
    planned_roles,
)
from paramscope.ops.memory_sharding import (
    DeepSpeedFigure,
    Ledger,
    check_sharding,
    deepspeed_figure,
    per_device,
)

PARTS = ("weights", "gradients", "optimizer", "master_weights", "activations")


@dataclass
class MemoryPart:
    bytes: int
    by_role: dict[str, int]

    @classmethod
    def of(cls, by_role: dict[str, int]) -> MemoryPart:
        return cls(sum(by_role.values()), by_role)

    def as_dict(self) -> dict:
        return {"bytes": self.bytes, "by_role": dict(self.by_role)}


@dataclass
class DevicePart(MemoryPart):
    """Bytes on one device, with what DeepSpeed's own estimator would print beside them."""

    devices: int = 1
    sharding: str = "none"
    deepspeed: DeepSpeedFigure | None = None

    def as_dict(self) -> dict:
        deepspeed = self.deepspeed.as_dict() if self.deepspeed else None
        return {
            **super().as_dict(),
            "devices": self.devices,
            "sharding": self.sharding,
            "deepspeed": deepspeed,
        }


@dataclass(frozen=True)
class MemorySettings:
    """How the model will be trained. ``precision`` None keeps every tensor's stored dtype;
    ``batch`` is per device."""

    optimizer: str = "adam"
    precision: str | None = None
    devices: int = 1
    sharding: str = "none"
    batch: int | None = None
    input_shape: tuple[int, ...] | None = None
    amsgrad: bool = False

    def __post_init__(self) -> None:
        rules_of.check_choices(self.optimizer, self.precision)
        check_sharding(self.sharding, self.devices)
        if (self.batch is None) != (self.input_shape is None):
            raise InputError("activations need both a batch size and an input shape (or neither)")
        if self.batch is not None and (not isinstance(self.batch, int) or self.batch < 1):
            raise InputError(f"batch {self.batch!r}: expected a positive whole number")

    @property
    def sharded(self) -> bool:
        return self.devices > 1 or self.sharding != "none"


class ActivationMeter(Protocol):
    """Measures the activations one training step keeps, given the tensors that train."""

    method: str  # how, in words, for the assumptions

    def __call__(self, trains: frozenset[str]) -> int: ...


@dataclass
class MemoryEstimate:
    weights: MemoryPart
    gradients: MemoryPart
    optimizer: MemoryPart
    master_weights: MemoryPart
    activations: MemoryPart | None  # None when not measured
    total: MemoryPart
    per_device: DevicePart | None  # None unless sharded or on several devices
    all_trainable_total: MemoryPart
    saved_by_freezing: MemoryPart
    assumptions: list[str]
    settings: MemorySettings = field(repr=False)
    report: Report = field(repr=False)

    def as_dict(self) -> dict:
        """The command's own keys, as the JSON contract names them."""
        names = (*PARTS, "total", "per_device", "all_trainable_total", "saved_by_freezing")
        result = {name: (getattr(self, name).as_dict() if getattr(self, name) else None) for name in names}
        return {**result, "assumptions": list(self.assumptions)}

    def _repr_html_(self) -> str:  # Jupyter, VS Code, Colab
        """A display hook: the parts as bars by role, rendered lazily (ARCHITECTURE.md)."""
        from paramscope.render import notebook_html

        return notebook_html("memory", self)


def price(
    planned: Sequence[Item], settings: MemorySettings, rules: str, backend: str | None
) -> dict[str, Ledger]:
    """Weights, gradients, optimizer state and master weights of these tensors."""
    ledgers = {part: Ledger() for part in PARTS[:4]}
    precision, trained, eight_bit = settings.precision, False, 0
    for item in planned:
        tensor = item.tensor
        dtype = rules_of.weight_dtype(tensor.dtype, precision) if tensor.quantized is None else tensor.dtype
        stored = tensor.bytes if dtype == tensor.dtype else tensor_bytes(tensor.params, dtype)
        ledgers["weights"].add(item.role, stored or 0, replicated=item.role is Role.STATE)
        if not item.trains:
            continue
        trained = True
        ledgers["gradients"].add(item.role, tensor_bytes(tensor.params, dtype) or 0)
        if precision == "mixed-master":
            ledgers["master_weights"].add(item.role, tensor_bytes(tensor.params, "float32") or 0)
        state = rules_of.state_dtype(dtype, precision)
        for array in rules_of.states(
            rules, settings.optimizer, settings.amsgrad, tensor.shape, tensor.params, state
        ):
            ledgers["optimizer"].add(item.role, array.bytes, replicated=array.scalar)
        eight_bit += rules == "bitsandbytes" and tensor.params >= rules_of.BNB_MIN_8BIT_SIZE
    if trained:  # an optimizer with nothing to update is not built; its own scalars serve training
        for array in rules_of.optimizer_wide(rules, backend, eight_bit):
            ledgers["optimizer"].add(Role.TRAINABLE, array.bytes, replicated=True)
    return ledgers


def _measure(meter: ActivationMeter | None, trains: frozenset[str], ledgers: dict[str, Ledger]) -> None:
    """Activations are paid because something trains; every device keeps its own."""
    if meter is not None:
        ledgers["activations"] = Ledger()
        ledgers["activations"].add(Role.TRAINABLE, meter(trains), replicated=True)


def _total(ledgers: dict[str, Ledger]) -> dict[str, int]:
    total = dict.fromkeys(map(str, ROLES), 0)
    for ledger in ledgers.values():
        for role, nbytes in ledger.by_role().items():
            total[role] += nbytes
    return total


def estimate_memory(
    report: Report,
    settings: MemorySettings,
    *,
    rules: Sequence[tuple[str, str]] = (),
    lora: LoraSpec | None = None,
    meter: ActivationMeter | None = None,
) -> MemoryEstimate:
    """Price one training configuration of ``report``'s model, and the all-trainable one."""
    roles = planned_roles(report, lora_rules(lora, list(rules)))
    pairs = adapters(report, lora, settings.precision) if lora is not None else []
    added = [adapter for _, adapter in pairs]
    planned = items(report, roles, settings.precision, added)
    everything = all_trainable(planned, {adapter.path for adapter in added})
    optimizer_rules = rules_of.convention(settings.optimizer, report.source.kind.keras_like)
    ledgers = price(planned, settings, optimizer_rules, report.source.backend)
    full = price(everything, settings, optimizer_rules, report.source.backend)
    adapted = {weight.path for weight, _ in pairs}
    _measure(meter, frozenset(i.tensor.path for i in planned if i.trains) | adapted, ledgers)
    _measure(meter, frozenset(i.tensor.path for i in everything if i.trains), full)
    device = _per_device(report, settings, ledgers, sum(adapter.params for adapter in added))
    said = [
        words.roles(planned, rules, lora, added),
        words.weights(settings.precision, planned),
        words.GRADIENTS,
        rules_of.describe(optimizer_rules, settings.optimizer, settings.amsgrad, report.source.backend),
        words.master(settings.precision),
        meter.method if meter is not None else words.NO_ACTIVATIONS,
        *words.sharding(settings, device),
        *words.others(settings, full),
    ]
    return _estimate(ledgers, full, device, [line for line in said if line], settings, report)


def _per_device(report: Report, settings: MemorySettings, ledgers: dict[str, Ledger], extra: int):
    """One device's share, beside DeepSpeed's estimate (``extra``: adapter parameters, which
    ``model.parameters()`` lists too)."""
    if not settings.sharded:
        return None
    figure = deepspeed_figure(report, settings.sharding, settings.devices, extra)
    by_role = per_device(ledgers, settings.sharding, settings.devices)
    return DevicePart(sum(by_role.values()), by_role, settings.devices, settings.sharding, figure)


def _estimate(ledgers, full, device, said, settings, report) -> MemoryEstimate:
    parts = {part: MemoryPart.of(ledger.by_role()) for part, ledger in ledgers.items()}
    total, all_total = _total(ledgers), _total(full)
    return MemoryEstimate(
        weights=parts["weights"],
        gradients=parts["gradients"],
        optimizer=parts["optimizer"],
        master_weights=parts["master_weights"],
        activations=parts.get("activations"),
        total=MemoryPart.of(total),
        per_device=device,
        all_trainable_total=MemoryPart.of(all_total),
        saved_by_freezing=MemoryPart.of({role: all_total[role] - total[role] for role in total}),
        assumptions=said,
        settings=settings,
        report=report,
    )
