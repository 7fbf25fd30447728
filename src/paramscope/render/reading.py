"""The reconciliation every renderer prints under the layer table, as plain data.

Users confuse weight *tensors* (``len(model.trainable_weights)``), scalar *parameters*
("Trainable params") and *layers*. The reading lists our split by role in both units and then
the framework's own lines, with the sums that connect the two; text, Markdown and HTML
renderers only format it.
"""

from __future__ import annotations

from dataclasses import dataclass

from paramscope.core.conventions import keras_counts, keras_lines, torch_lines
from paramscope.core.report import Report, RoleTotals
from paramscope.core.units import count, keras_size, plural

SOURCE_NAMES = {
    "keras": "Keras",
    "tf_keras": "tf.keras",
    "torch": "PyTorch",
    "torch_file": "torch checkpoint",
    "keras_file": ".keras file, saved by Keras",
    "h5": "legacy Keras .h5 file, saved by Keras",
    "safetensors": "safetensors",
    "npz": "NumPy",
}


def type_suffix(node_type: str) -> str:
    """` (Dense)`; nothing for nodes of files that store no layer types."""
    return f" ({node_type})" if node_type else ""


ROLE_NOTES = {
    "trainable": "updated by the optimizer",
    "frozen": "could learn, switched off",
    "state": "never trained by gradients (moving stats, buffers)",
    "unknown": "the source stores no trainability",
}


@dataclass(frozen=True)
class RoleLine:
    role: str
    totals: RoleTotals
    note: str

    @property
    def text(self) -> str:
        size = f" ({keras_size(self.totals.bytes)})" if self.totals.params else ""
        return f"{plural(self.totals.tensors, 'tensor')} · {plural(self.totals.params, 'param')}{size}"


@dataclass(frozen=True)
class Reading:
    roles: list[RoleLine]
    framework_title: str
    framework_lines: list[str]
    connections: list[str]
    extras: list[str]
    warnings: list[str]


def role_lines(report: Report) -> list[RoleLine]:
    """Trainable, frozen and state always; unknown only when present; then all."""
    lines = [
        RoleLine(role, report.totals[role], ROLE_NOTES[role])
        for role in ("trainable", "frozen", "state", "unknown")
        if role != "unknown" or report.totals[role].tensors
    ]
    lines.append(RoleLine("all", report.totals["all"], "each tensor counted once"))
    return lines


def _keras_connections(report: Report) -> list[str]:
    totals, counts = report.totals, keras_counts(report)
    lines = [
        f"Non-trainable params {count(counts.non_trainable.params)} = frozen "
        f"{count(totals['frozen'].params)} + state {count(totals['state'].params)}.",
        f"len(model.trainable_weights) = {totals['trainable'].tensors:,} tensors; "
        f"len(model.non_trainable_weights) = {totals['frozen'].tensors + totals['state'].tensors:,}.",
    ]
    if counts.optimizer is not None:
        lines.append(
            f"Total params includes {count(counts.optimizer.params)} optimizer params "
            "(built by compile() + fit()); they are not part of the model."
        )
    if report.compiled_trainable is not None and counts.trainable.params != totals["trainable"].params:
        lines.append(
            f"Trainable params {count(counts.trainable.params)} is the list captured at compile(); "
            f"training flags now say {count(totals['trainable'].params)}. fit() uses the "
            "compiled list: call compile() again."
        )
    return lines


def _torch_connections(report: Report) -> list[str]:
    state = report.totals["state"]
    lines = [
        f"model.parameters() holds {report.totals['trainable'].tensors + report.totals['frozen'].tensors:,} "
        "tensors (trainable + frozen), each tied tensor once."
    ]
    if state.tensors:
        lines.append(
            f"Buffers ({plural(state.tensors, 'tensor')}, {count(state.params)} values) are "
            "not parameters; Keras would count them as non-trainable params."
        )
    return lines


def reading(report: Report) -> Reading:
    kind = report.source.kind
    roles_known = report.totals["unknown"].tensors == 0  # a weights-only file: Keras's split is unknown
    if kind in ("keras", "tf_keras", "keras_file", "h5") and roles_known:
        title, lines, connections = (
            "model.summary() says",
            keras_lines(report),
            _keras_connections(report),
        )
    elif kind == "torch":
        title, lines, connections = "torch says", torch_lines(report), _torch_connections(report)
    else:
        every = report.totals["all"]
        title = "The file holds"
        lines = [
            f"{plural(every.tensors, 'tensor')} · {plural(every.params, 'param')} ({keras_size(every.bytes)})"
        ]
        connections = []
    extras = [
        f"{group.name.capitalize()}: {plural(group.totals.tensors, 'tensor')} · "
        f"{plural(group.totals.params, 'param')}, reported apart from the model."
        for group in (report.optimizer, report.metrics, report.constants)
        if group is not None
    ]
    return Reading(role_lines(report), title, lines, connections, extras, list(report.warnings))
