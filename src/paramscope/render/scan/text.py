"""`scan` as text: one line per file, never wrapped, so that tools can split and grep it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from paramscope.core.printable import visible
from paramscope.core.report import Verdict
from paramscope.core.units import keras_size
from paramscope.ops.scan import ScanLine
from paramscope.render.console import Unwrapped
from paramscope.render.scan import verdict_text

if TYPE_CHECKING:
    from paramscope.ops.scan import FolderScan

VERDICT_STYLE = {Verdict.MALICIOUS: "bold red", Verdict.NEEDS_CODE: "yellow", Verdict.DATA_ONLY: "dim"}


def _row(line: ScanLine) -> Text:
    """The file's counts and verdict, its error, or why it was skipped."""
    if line.error:
        return Text.assemble(line.shown_path, ("  error: " + line.error, "red"))
    if line.skipped:
        return Text.assemble(line.shown_path, ("  skipped: " + line.skipped, "dim"))
    trainable = f"  trainable {line.trainable:,}" if line.trainable else ""
    row = Text(
        f"{line.shown_path}  {line.kind}  {line.tensors:,} tensors  {line.params:,} params  "
        f"{keras_size(line.bytes)}{trainable}"
    )
    if line.pickle is not None:
        row.append(f"  pickle: {verdict_text(line.pickle)}", VERDICT_STYLE[line.pickle.verdict])
    return row


def renderable(scanned: FolderScan) -> Unwrapped:
    if not scanned.lines:
        return Unwrapped([Text(f"no checkpoints under {visible(scanned.folder)}")])
    return Unwrapped([_row(line) for line in scanned.lines])
