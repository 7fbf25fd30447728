"""`memory`: what training costs with this freeze, as a small table read at a glance.

What text and Markdown both say is computed here, as plain data: the rows (weights, gradients,
optimizer state, master weights, activations, total) by role in human units, the line that
compares with everything trainable, the per-device figure beside DeepSpeed's, the settings.
JSON gives every figure in exact bytes instead (render/memory/json.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from paramscope.core.units import keras_size
from paramscope.ops.memory import MemoryEstimate, MemoryPart

ROWS = (
    ("weights", "weights"),
    ("gradients", "gradients"),
    ("optimizer", "optimizer state"),
    ("master_weights", "master weights"),
    ("activations", "activations"),
    ("total", "total"),
)
NONE = "—"  # a part that costs nothing in this role
NOT_MEASURED = "not measured"


def size(nbytes: int) -> str:
    """Bytes as people read them (Keras's units: powers of 1024), a dash for nothing."""
    return keras_size(nbytes) if nbytes else NONE


def roles_shown(estimate: MemoryEstimate) -> list[str]:
    """The roles some tensor of the model has, in the order of the vocabulary."""
    present = estimate.weights.by_role
    shown = [role for role, nbytes in present.items() if nbytes]
    return shown or ["trainable"]


@dataclass(frozen=True)
class Row:
    label: str
    cells: list[str]  # one per role shown
    total: str


def rows(estimate: MemoryEstimate) -> list[Row]:
    """One row per part and the total; activations say when they were not measured."""
    roles = roles_shown(estimate)
    result = []
    for name, label in ROWS:
        part: MemoryPart | None = getattr(estimate, name)
        if part is None:
            result.append(Row(label, [NOT_MEASURED, *[""] * (len(roles) - 1)], ""))
            continue
        result.append(Row(label, [size(part.by_role[role]) for role in roles], size(part.bytes)))
    return result


def setup_line(estimate: MemoryEstimate, separator: str) -> str:
    """`optimizer adam · weights as stored · batch 32 × (224, 224, 3)`."""
    settings = estimate.settings
    optimizer = settings.optimizer + (" (amsgrad)" if settings.amsgrad else "")
    parts = [f"optimizer {optimizer}", f"precision {settings.precision or 'as stored'}"]
    if settings.batch is not None:
        parts.append(f"batch {settings.batch} × {settings.input_shape}")
    return separator.join(parts)


def comparison_line(estimate: MemoryEstimate) -> str:
    """`Everything trainable: X; freezing saved Y (N bytes)`."""
    saved = estimate.saved_by_freezing.bytes
    return (
        f"Everything trainable: {keras_size(estimate.all_trainable_total.bytes)}; "
        f"freezing saved {keras_size(saved)} ({saved:,} bytes)"
    )


def device_line(estimate: MemoryEstimate) -> str | None:
    """`Per device (zero2 on 4 devices): X; DeepSpeed's estimator would print Y`."""
    device = estimate.per_device
    if device is None:
        return None
    devices = f"{device.devices} device" + ("s" if device.devices > 1 else "")
    line = f"Per device ({device.sharding} on {devices}): {keras_size(device.bytes)} ({device.bytes:,} bytes)"
    if device.deepspeed is not None:
        line += f"; DeepSpeed's {device.deepspeed.estimator} would print {keras_size(device.deepspeed.bytes)}"
    return line
