"""What an audit driver is: the contract between ``run_audit`` and one framework's training.

``run_audit`` (audit.py) is framework-neutral: it asks a driver to snapshot, step, observe,
restore and prove the restore, and judges what it saw. Everything that touches torch or Keras
while training lives in a driver (``audit_torch.TorchAudit``, ``audit_keras.KerasAudit``); a
new framework is one new class with these methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from paramscope.core.dtypes import normalize_dtype

SIXTEEN_BIT = ("float16", "bfloat16")


@dataclass
class Observation:
    """What the driver saw of one tensor across the steps."""

    changed: bool
    max_abs_delta: float


@dataclass
class TrainingSetup:
    """What the audit trains with; None leaves it to the driver's default."""

    optimizer: object | None = None
    inputs: object | None = None
    loss: object | None = None
    optimizer_name: str | None = None  # build this optimizer instead of the model's
    lr: float | None = None
    input_shape: tuple[int, ...] | None = None


@dataclass
class StepFacts:
    """Evidence the driver gathered for root causes (tensor paths unless said otherwise)."""

    no_gradient: set[str] = field(default_factory=set)  # trainable, and no gradient reached it
    zero_gradient: set[str] = field(default_factory=set)  # trainable, its gradient all zero in a step
    not_in_optimizer: set[str] = field(default_factory=set)  # trainable, in no param group
    zero_learning_rate: set[str] = field(default_factory=set)
    weight_decay: set[str] = field(default_factory=set)  # frozen, in a group with weight decay > 0
    stale_gradient: set[str] = field(default_factory=set)  # frozen, holding a (zero) gradient
    optimizer_state: set[str] = field(default_factory=set)  # frozen, with optimizer state
    stale_compile: list[str] | None = None  # layers whose flag changed since compile()
    step_error: str | None = None  # the train step raised this


def note_torch_gradient(path: str, grad, no_gradient: set[str], zero_gradient: set[str]) -> None:
    """A trainable torch parameter's gradient after backward, noted where it explains a tensor
    that did not move: None (cut off the loss) or all zero (LoRA's A while B is still zero, a
    unit that never fired). The audit's driver and the guard's probe both judge by it."""
    if grad is None:
        no_gradient.add(path)
    elif not grad.any():
        zero_gradient.add(path)


class AuditDriver(Protocol):
    """One framework's real training step on one live model, and an exact way back."""

    @property
    def loss_scaled(self) -> bool:
        """Whether the optimizer scales the loss (and skips steps while the scale settles)."""

    @property
    def optimizer_label(self) -> str:
        """What trains, in words: "the compiled Adam", "SGD(lr=0.01) over the trainable parameters"."""

    @property
    def loss_label(self) -> str: ...

    @property
    def inputs_label(self) -> str:
        """The inputs' shapes and dtypes."""

    def snapshot(self) -> None:
        """Copy everything a step can touch: values, gradients, optimizer state, RNG, modes."""

    def step(self) -> None:
        """One training step, as the user's loop (or ``fit()``) would run it."""

    def observe(self) -> dict[str, Observation]:
        """Every tensor's change since the snapshot, by tensor path."""

    def restore(self) -> None:
        """Put back everything the snapshot copied."""

    def restored_exactly(self) -> bool:
        """Whether everything is bit-identical to the snapshot again."""

    def gather_facts(self) -> StepFacts:
        """The evidence for root causes, as the snapshot had the optimizer."""


def default_learning_rate(trainable_dtypes) -> float:
    """For the optimizer the audit builds: 16-bit weights round small updates away, so they
    get a larger step."""
    return 0.1 if any(normalize_dtype(d) in SIXTEEN_BIT for d in trainable_dtypes) else 0.01
