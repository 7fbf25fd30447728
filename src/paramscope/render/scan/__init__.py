"""`scan`: one line per checkpoint under a folder, with its counts and its pickle's verdict.

What its text and Markdown both say is computed here, as plain data. Every string of a
``ScanLine`` is printable already (names from files escaped by ops/scan).
"""

from __future__ import annotations

from collections.abc import Callable

from paramscope.core.report import PickleVerdict

SHOWN_NAMES = 3  # names shown in a line's verdict


def verdict_text(verdict: PickleVerdict, show: Callable[[str], str] = str) -> str:
    """`MALICIOUS (posix.system)`, `needs-code (a, b, c +2)`, `data-only`; ``show`` shows a
    name (Markdown puts it in a code span)."""
    names = [name for name, _ in verdict.malicious] or list(verdict.needs_code)
    if not names:
        return str(verdict.verdict)
    more = f" +{len(names) - SHOWN_NAMES:,}" if len(names) > SHOWN_NAMES else ""
    label = "MALICIOUS" if verdict.malicious else str(verdict.verdict)
    return f"{label} ({', '.join(map(show, names[:SHOWN_NAMES]))}{more})"
