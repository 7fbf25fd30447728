"""Text from untrusted sources made safe to print: one line, nothing hidden, nothing forged.

Names in a checkpoint are bytes chosen by whoever wrote it. Printed as they are, an escape
sequence recolours or rewrites the terminal (CSI, OSC), a newline forges an extra output line,
a NUL or a lone surrogate crashes an encoder, a right-to-left override reverses what is shown.
:func:`visible` replaces every character that is not plainly printable with its Python escape
(``\\x1b``, ``\\u202e``, ``\\udcff``), so what was in the file is still there to read.
"""

from __future__ import annotations

MAX_LINE = 300


NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in NAMED:
        return NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` with every non-printable character (controls, format characters, separators
    other than the ASCII space, surrogates, unassigned code points) shown as an escape."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` made visible and cut to ``limit`` characters with an ellipsis: an error line."""
    shown = visible(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
