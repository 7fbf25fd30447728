"""How each framework totals roles, reproduced from our own tree so the two reconcile.

* Keras (both generations): "Trainable params" are the trainable tensors (tf.keras after
  ``compile()``: the ones captured then); "Non-trainable params" are frozen + state; Keras 3's
  "Total params" also adds the optimizer's variables once the optimizer is built.
* torch: ``model.parameters()`` holds trainable + frozen tensors; buffers are counted nowhere.

Keras counts its own variables by their stored shapes, so three kinds of tensor in a Keras 3
model count differently there than here: a packed int4 weight counts its stored elements
(half its parameters); a float8 layer's scales and amax histories, state here, count as
trainable while their layer trains (Keras creates them trainable and overwrites them with
their "gradient"); a ``TorchModuleWrapper``'s torch buffers are no Keras variables and count
nowhere. ``keras_counts`` follows Keras; ``keras_differences`` says what each one changes.

``keras_lines`` prints Keras's footer character for character (Keras 3 and tf.keras format
it differently; a legacy ``.h5`` written by Keras 2 is summarised by tf.keras once loaded), so
a user can hold our output next to ``model.summary()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from paramscope.core.kinds import Family
from paramscope.core.report import Report, Role, RoleTotals, Tensor
from paramscope.core.units import count, keras_size

FLOAT8_STATE = frozenset({"scale", "amax-history"})  # Tensor.quantized of float8's own variables


@dataclass(frozen=True)
class KerasCounts:
    trainable: RoleTotals
    non_trainable: RoleTotals
    optimizer: RoleTotals | None

    @property
    def total(self) -> RoleTotals:
        total = RoleTotals()
        total += self.trainable
        total += self.non_trainable
        if self.optimizer is not None:
            total += self.optimizer
        return total


def keras2_summary(report: Report) -> bool:
    """Whether tf.keras (Keras 2) prints this model's summary: a live tf.keras model, or a
    legacy ``.h5`` that Keras 2 wrote (its ``keras_version``), which tf.keras loads."""
    kind = report.source.kind
    if kind.family is not Family.TF_KERAS:
        return False
    major = re.match(r"\d{1,4}", report.source.framework_version or "")
    return kind.live or (major is not None and int(major.group()) < 3)


def _keras3(report: Report) -> bool:
    """A live Keras 3 model or a ``.keras`` archive: Keras 3 counts its variables."""
    return report.source.kind.family is Family.KERAS


def _keras_variables(report: Report) -> Iterator[tuple[Tensor, bool]]:
    """Each counted tensor as a Keras 3 variable (params: its stored elements) and whether
    Keras counts it trainable; a wrapped module's torch buffers are left out."""
    keras3 = _keras3(report)
    for node in report.nodes():
        float8_trains = any(t.quantized == "float8" and t.role is Role.TRAINABLE for t in node.tensors)
        for tensor in node.tensors:
            if not tensor.counted or (keras3 and tensor.persistent is not None):
                continue
            stored = math.prod(tensor.shape)
            if keras3 and tensor.quantized is not None and stored != tensor.params:
                tensor = replace(tensor, params=stored)
            trains = tensor.role is Role.TRAINABLE
            yield tensor, trains or (float8_trains and tensor.quantized in FLOAT8_STATE)


def _as_keras_counts(report: Report) -> tuple[RoleTotals, RoleTotals]:
    """(trainable, non-trainable) as Keras totals them; unknown roles count in neither."""
    if not _keras3(report):  # no tensor of these counts differently
        non_trainable = RoleTotals()
        non_trainable += report.totals["frozen"]
        non_trainable += report.totals["state"]
        return report.totals["trainable"], non_trainable
    trainable, non_trainable = RoleTotals(), RoleTotals()
    for tensor, trains in _keras_variables(report):
        if trains:
            trainable.add(tensor)
        elif tensor.role is not Role.UNKNOWN:
            non_trainable.add(tensor)
    return trainable, non_trainable


def keras_counts(report: Report) -> KerasCounts:
    """The three (or four) numbers `model.summary()` prints for this model."""
    trainable, non_trainable = _as_keras_counts(report)
    if report.compiled_trainable is not None:
        wanted = set(report.compiled_trainable)
        trainable = RoleTotals()
        for tensor in report.tensors():
            if tensor.counted and tensor.path in wanted:
                trainable.add(tensor)
    optimizer = report.optimizer.totals if report.optimizer is not None else None
    if keras2_summary(report):
        optimizer = None  # tf.keras's summary never adds optimizer variables
    return KerasCounts(trainable, non_trainable, optimizer)


def keras_differences(report: Report) -> list[str]:
    """Why Keras's totals differ from the roles here, one sentence per reason; empty when
    Non-trainable params are exactly frozen + state."""
    if not _keras3(report):
        return []
    float8 = sum(
        tensor.params for tensor, trains in _keras_variables(report) if trains and tensor.role is Role.STATE
    )
    counted = [tensor for tensor in report.tensors() if tensor.counted]
    buffers = sum(tensor.params for tensor in counted if tensor.persistent is not None)
    packed = sum(
        tensor.params - math.prod(tensor.shape) for tensor in counted if tensor.quantized is not None
    )
    lines = []
    if packed:
        lines.append(
            f"Keras counts packed int4 weights by their stored bytes: {count(packed)} of their parameters "
            "are not in its totals."
        )
    if float8:
        lines.append(
            f"Keras counts {count(float8)} float8 scale and amax-history values as trainable params: "
            "they are overwritten each step, never trained by gradients (state here)."
        )
    if buffers:
        lines.append(
            f"The {count(buffers)} values of wrapped torch modules' buffers are state here and no Keras "
            "variables: Keras's totals leave them out (it saves them with the module's state_dict())."
        )
    return lines


def keras_lines(report: Report) -> list[str]:
    """Keras's own footer lines, formatted as the model's Keras generation prints them."""
    counts = keras_counts(report)
    if keras2_summary(report):
        return [
            f"{label}: {totals.params} ({keras_size(totals.bytes, 'Byte')})"
            for label, totals in (
                ("Total params", counts.total),
                ("Trainable params", counts.trainable),
                ("Non-trainable params", counts.non_trainable),
            )
        ]
    lines = [
        f" Total params: {count(counts.total.params)} ({keras_size(counts.total.bytes)})",
        f" Trainable params: {count(counts.trainable.params)} ({keras_size(counts.trainable.bytes)})",
        f" Non-trainable params: {count(counts.non_trainable.params)} "
        f"({keras_size(counts.non_trainable.bytes)})",
    ]
    if counts.optimizer is not None:
        lines.append(
            f" Optimizer params: {count(counts.optimizer.params)} ({keras_size(counts.optimizer.bytes)})"
        )
    return lines


def torch_counts(report: Report) -> dict[str, int]:
    """What `model.parameters()` totals: trainable + frozen; buffers are not parameters."""
    missed = report.framework_undercount
    trainable = report.totals["trainable"].params - missed.get("trainable", 0)
    frozen = report.totals["frozen"].params - missed.get("frozen", 0)
    return {
        "trainable_params": trainable,
        "non_trainable_params": frozen,
        "total_params": trainable + frozen,
    }


def torch_parameter_tensors(report: Report) -> int:
    """How many tensors `model.parameters()` yields: trainable + frozen, each tied tensor once."""
    return report.totals["trainable"].tensors + report.totals["frozen"].tensors


def torch_lines(report: Report) -> list[str]:
    numbers = torch_counts(report)
    return [
        f"sum(p.numel() for p in model.parameters()) = {count(numbers['total_params'])}",
        f"  of which requires_grad=True: {count(numbers['trainable_params'])}",
        f"  of which requires_grad=False: {count(numbers['non_trainable_params'])}",
    ]


def conventions(report: Report) -> dict[str, dict[str, int]]:
    """Both frameworks' totals for the JSON contract."""
    counts = keras_counts(report)
    keras = {
        "trainable_params": counts.trainable.params,
        "non_trainable_params": counts.non_trainable.params,
        "total_params": counts.total.params,
    }
    if counts.optimizer is not None:
        keras["optimizer_params"] = counts.optimizer.params
    return {"keras": keras, "torch": torch_counts(report)}
