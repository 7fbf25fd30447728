"""The summary's first line and the notes under its table, as plain strings for every format.

The first line answers "what trains?" the way PEFT's ``print_trainable_parameters()`` taught
people to expect, against the total the user's own framework prints: Keras ``count_params()``
(state included), torch ``sum(p.numel() for p in model.parameters())`` (buffers excluded, as
PEFT's "all params"), a file's every tensor. The notes say what the default view left out and
how to see it, so that a hidden layer is never mistaken for a missing one.
"""

from __future__ import annotations

from paramscope.core.conventions import keras_counts, torch_counts
from paramscope.core.kinds import Family
from paramscope.core.report import Report
from paramscope.core.units import count, plural
from paramscope.ops.explain import lora_answer
from paramscope.render.summary.view import LayerRow, View

TIED_MARK = "↔"


def total_params(report: Report) -> int:
    """The framework's own "all params": what the first line's percentage is of."""
    kind = report.source.kind
    if kind.keras_like and report.totals["unknown"].tensors == 0:
        counts = keras_counts(report)
        return counts.trainable.params + counts.non_trainable.params  # count_params()
    if kind.family is Family.TORCH:
        return torch_counts(report)["total_params"]
    return report.totals["all"].params


def answer_line(report: Report) -> str:
    """`trainable 29,463 of 2,287,447 params (1.29 %) in 2 tensors; frozen 2,223,872; state 34,112`."""
    totals, total = report.totals, total_params(report)
    trainable = totals["trainable"]
    if totals["unknown"].tensors and not (trainable.tensors or totals["frozen"].tensors):
        return _roles_unknown_line(report)
    share = f" ({100 * trainable.params / total:.2f} %)" if total else ""
    line = (
        f"trainable {count(trainable.params)} of {count(total)} params{share} in "
        f"{plural(trainable.tensors, 'tensor')}; frozen {count(totals['frozen'].params)}; "
        f"state {count(totals['state'].params)}"
    )
    unknown = totals["unknown"].params
    return line + (f"; unknown {count(unknown)}" if totals["unknown"].tensors else "")


def _roles_unknown_line(report: Report) -> str:
    """A file stores no trainability: "trainable 0" would read as "nothing trains", so say what is known."""
    totals = report.totals
    unknown, state = totals["unknown"], totals["state"]
    return (
        f"{count(totals['all'].params)} params in {plural(totals['all'].tensors, 'tensor')}; "
        f"roles unknown (a file stores no trainability): {count(unknown.params)} in "
        f"{plural(unknown.tensors, 'tensor')} could train, {count(state.params)} state"
    )


def notes(report: Report, view: View) -> list[str]:
    """What the table left out and what its marks mean, one short line each."""
    layers = [row for row in view.rows if isinstance(row, LayerRow)]
    lines = []
    if view.only and not report.summaries[id(report.root)].totals()[view.only].tensors:
        lines.append(f"no layer holds {view.only} tensors")
    if view.adaptive and view.depth < view.deepest:
        opened = any(row.depth > view.depth for row in layers)
        further = "; partly trainable layers opened down to what trains" if opened else ""
        lines.append(
            f"Depth {view.depth} of {view.deepest}, chosen to fit a screen{further} (--depth N shows more)."
        )
    if view.hidden:
        lines.append(f"{plural(view.hidden, 'layer')} without tensors hidden (--all-layers shows them).")
    if any(row.members > 1 and not (row.rest or row.parallel) for row in layers):
        lines.append("a … b (N × Type): N consecutive layers with the same tensors and roles, one row.")
    if any(row.parallel for row in layers):
        lines.append("a.*.b, a.{i…j}.b (N × Type): the same layer in each of N alike blocks, one row.")
    if any(row.tied for row in layers):
        lines.append(f"{TIED_MARK} x: reuses a tensor of layer x (tied), counted once, at x.")
    if report.source.kind.family is Family.TORCH:
        lines.append(
            "Params include buffers (state); the first line's total is model.parameters() only, "
            "as torch and PEFT count."
        )
    return lines + lora_answer(report)[:1]  # a peft model: its adapters against the frozen base
