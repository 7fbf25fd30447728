"""How each framework totals roles, reproduced from our own tree so the two reconcile.

* Keras (both generations): "Trainable params" are the trainable tensors (tf.keras after
  ``compile()``: the ones captured then); "Non-trainable params" are frozen + state; Keras 3's
  "Total params" also adds the optimizer's variables once the optimizer is built.
* torch: ``model.parameters()`` holds trainable + frozen tensors; buffers are counted nowhere.

``keras_lines`` prints Keras's footer character for character (Keras 3 and tf.keras format
it differently), so a user can hold our output next to ``model.summary()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from paramscope.core.report import Report, RoleTotals
from paramscope.core.units import count, keras_size


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


def keras_counts(report: Report) -> KerasCounts:
    """The three (or four) numbers `model.summary()` prints for this model."""
    trainable = report.totals["trainable"]
    if report.compiled_trainable is not None:
        wanted = set(report.compiled_trainable)
        trainable = RoleTotals()
        for tensor in report.tensors():
            if tensor.counted and tensor.path in wanted:
                trainable.add(tensor)
    non_trainable = RoleTotals()
    non_trainable += report.totals["frozen"]
    non_trainable += report.totals["state"]
    optimizer = report.optimizer.totals if report.optimizer is not None else None
    if report.source.kind == "tf_keras":
        optimizer = None  # tf.keras's summary never adds optimizer variables
    return KerasCounts(trainable, non_trainable, optimizer)


def keras_lines(report: Report) -> list[str]:
    """Keras's own footer lines, formatted as the model's Keras generation prints them."""
    counts = keras_counts(report)
    if report.source.kind == "tf_keras":
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
