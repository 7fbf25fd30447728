"""What the text and Markdown of every command say, as plain data: the source's name, the
reconciliation under the layer table, the pickle's verdict and the file's metadata.

Users confuse weight *tensors* (``len(model.trainable_weights)``), scalar *parameters*
("Trainable params") and *layers*. The reading lists our split by role in both units and then
the framework's own lines, with the sums that connect the two; text, Markdown and HTML
renderers only format it.

It also says what the file is beside its tensors: the verdict on a pickle (what *loading* it
would do, see sources/pickle_verdict.py) and the plain facts it carries (``Report.metadata``),
both made of names and values written by whoever made the file, so escaped and bounded here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from paramscope.core.conventions import (
    keras_counts,
    keras_differences,
    keras_lines,
    torch_lines,
    torch_parameter_tensors,
)
from paramscope.core.kinds import Family, Kind
from paramscope.core.printable import visible
from paramscope.core.report import PickleVerdict, Report, RoleTotals, Source, Verdict
from paramscope.core.units import count, keras_size, plural

SOURCE_NAMES = {
    Kind.KERAS: "Keras",
    Kind.TF_KERAS: "tf.keras",
    Kind.TORCH: "PyTorch",
    Kind.TORCH_FILE: "torch checkpoint",
    Kind.KERAS_FILE: ".keras file, saved by Keras",
    Kind.H5: "legacy Keras .h5 file, saved by Keras",
    Kind.SAFETENSORS: "safetensors",
    Kind.NPZ: "NumPy",
    Kind.TORCHSCRIPT: "TorchScript archive",
    Kind.PEFT_ADAPTER: "PEFT adapter",
}


def framework_name(source: Source) -> str:
    """`Keras`, `torch checkpoint`…: what wrote or runs the model, as the source line names it."""
    return SOURCE_NAMES.get(source.kind, source.kind.value)


def shown_backend(source: Source) -> str | None:
    """The backend a live Keras 3 model runs on (the only source whose backend matters to it)."""
    return source.backend if source.kind is Kind.KERAS else None


def type_suffix(node_type: str) -> str:
    """` (Dense)`; nothing for nodes of files that store no layer types."""
    return f" ({node_type})" if node_type else ""


ROLE_NOTES = {
    "trainable": "updated by the optimizer",
    "frozen": "could learn, switched off",
    "state": "never trained by gradients (moving stats, buffers)",
    "unknown": "the source stores no trainability",
}


def role_cell(totals: RoleTotals) -> str:
    """`2 tensors · 18 params`: one role's totals in both units."""
    return f"{plural(totals.tensors, 'tensor')} · {plural(totals.params, 'param')}"


@dataclass(frozen=True)
class RoleLine:
    role: str
    totals: RoleTotals
    note: str

    @property
    def text(self) -> str:
        size = f" ({keras_size(self.totals.bytes)})" if self.totals.params else ""
        return role_cell(self.totals) + size


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
    # Keras counts quantized, float8 and wrapped-torch tensors its own way: say how, not a false sum
    lines = keras_differences(report) or [
        f"Non-trainable params {count(counts.non_trainable.params)} = frozen "
        f"{count(totals['frozen'].params)} + state {count(totals['state'].params)}."
    ]
    trainable = totals["trainable"] if report.compiled_trainable is not None else counts.trainable
    lines.append(
        f"len(model.trainable_weights) = {trainable.tensors:,} tensors; "
        f"len(model.non_trainable_weights) = {counts.non_trainable.tensors:,}."
    )
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
        f"model.parameters() holds {torch_parameter_tensors(report):,} "
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
    if kind.keras_like and roles_known:
        title, lines, connections = (
            "model.summary() says",
            keras_lines(report),
            _keras_connections(report),
        )
    elif kind.family is Family.TORCH:  # a TorchScript archive knows parameters from buffers, as torch does
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


# ------------------------------------------------------------------ the pickle verdict

SHOWN_CLASSES = 5  # needs-code names listed in its one line
SHOWN_DANGERS = 10  # malicious names listed, each with what it does
LOADERS = {  # (what loading runs code with, what loads data only) per source kind
    Kind.TORCH_FILE: ("torch.load(weights_only=False)", "torch.load(weights_only=True)"),
    Kind.PEFT_ADAPTER: ("torch.load(weights_only=False)", "torch.load(weights_only=True)"),
    Kind.TORCHSCRIPT: ("torch.jit.load (which runs the archive's TorchScript code)", None),
    Kind.NPZ: ("np.load(allow_pickle=True)", None),
}
ANY_LOADER = ("pickle.load", None)


@dataclass(frozen=True)
class VerdictNote:
    """What a pickle's verdict tells the user, as plain lines for every renderer."""

    verdict: Verdict
    headline: str
    names: list[tuple[str, str]]  # malicious: (global, what calling it does), at most SHOWN_DANGERS
    more: int  # malicious names not listed
    consequence: str  # malicious: what loading would do, and what paramscope did


def _listed(names: tuple[str, ...], shown: int, code: Callable[[str], str]) -> str:
    """`a, b, c and 4 more`: the first ``shown`` names."""
    listed = ", ".join(code(name) for name in names[:shown])
    return listed + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


def verdict_note(report: Report, code: Callable[[str], str] = visible) -> VerdictNote | None:
    """The verdict in words, or None when the source is not a pickle. ``code`` shows a name
    or a call (escaped; Markdown puts it in a code span)."""
    verdict: PickleVerdict | None = report.pickle
    if verdict is None:
        return None
    unsafe, safe = LOADERS.get(report.source.kind, ANY_LOADER)
    if verdict.verdict is Verdict.MALICIOUS:
        names = [(code(name), visible(does)) for name, does in verdict.malicious[:SHOWN_DANGERS]]
        return VerdictNote(
            verdict.verdict,
            "This file reaches functions that no checkpoint needs",
            names,
            len(verdict.malicious) - len(names),
            f"Loading it with {code(unsafe)} (or any pickle loader) would run them. paramscope read "
            "it without executing anything.",
        )
    if verdict.verdict is Verdict.NEEDS_CODE:
        headline = (
            f"Pickle needs code: loading it imports {_listed(verdict.needs_code, SHOWN_CLASSES, code)} "
            f"and needs {code(unsafe)}; paramscope read it without importing them."
        )
        return VerdictNote(verdict.verdict, headline, [], 0, "")
    loads = f"{code(safe)} loads it" if safe else "loading it runs no code from other packages"
    return VerdictNote(verdict.verdict, f"Pickle is data only: {loads}.", [], 0, "")


# ------------------------------------------------------------------ the file's metadata

METADATA_ROWS = 12  # keys shown; the block never passes METADATA_ROWS + 2 lines
METADATA_KEY_CHARS = 32
METADATA_VALUE_CHARS = 72
MAX_INT_BITS = 256  # wider integers are described, not converted to thousands of digits


@dataclass(frozen=True)
class MetadataRows:
    rows: list[tuple[str, str]]  # (key, its value on one short line), escaped
    more: int  # keys not shown


def metadata_rows(report: Report) -> MetadataRows:
    """The first top-level keys of ``report.metadata`` with short one-line values."""
    shown = itertools.islice(report.metadata.items(), METADATA_ROWS)
    rows = [(_cut(visible(str(key)), METADATA_KEY_CHARS), short_value(value)) for key, value in shown]
    return MetadataRows(rows, len(report.metadata) - len(rows))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_value(value: object, limit: int = METADATA_VALUE_CHARS) -> str:
    """``value`` as compact JSON on one line of at most ``limit`` characters, escaped.

    Built piece by piece and stopped at the limit, so that a value of a million items or
    nested a thousand deep costs no more than what is shown (``json.dumps`` would render it
    whole, and recurse). A string alone is shown without quotes.
    """
    if isinstance(value, str):
        return _cut(visible(value[: limit + 1]), limit)
    shown, size = [], 0
    for piece in _pieces(value, limit):
        shown.append(piece)
        size += len(piece)
        if size > limit:
            break
    return _cut(visible("".join(shown)), limit)


_END = object()


class _Mark(str):
    """Punctuation in a rendering, told apart from the strings of the value itself."""


def _pieces(value: object, limit: int) -> Iterator[str]:
    """The compact JSON of ``value``, in pieces, walked with a stack of lazy iterators."""
    stack: list[Iterator[object]] = [iter([value])]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, _Mark):
            yield item
        elif isinstance(item, dict):
            stack.append(_dict_parts(item, limit))
        elif isinstance(item, (list, tuple)):
            stack.append(_list_parts(item))
        else:
            yield _scalar(item, limit)


def _dict_parts(value: dict, limit: int) -> Iterator[object]:
    yield _Mark("{")
    for i, (key, item) in enumerate(value.items()):
        yield _Mark(", " if i else "")
        yield _Mark(_scalar(str(key), limit) + ": ")
        yield item
    yield _Mark("}")


def _list_parts(value: list | tuple) -> Iterator[object]:
    yield _Mark("[")
    for i, item in enumerate(value):
        yield _Mark(", " if i else "")
        yield item
    yield _Mark("]")


def _scalar(value: object, limit: int) -> str:
    if isinstance(value, str):
        return json.dumps(value[: limit + 1], ensure_ascii=False)
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        return f"<a {value.bit_length():,}-bit integer>"
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return f"<{type(value).__name__}>"
