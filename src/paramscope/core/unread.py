"""Why a file gives no Report: the refusals that callers tell apart from a damaged file.

Readers (sources/) raise them; ``scan`` (ops/) lists each its own way — a format recognised
but not read is skipped, bytes in no known format are no checkpoint, a read that ran out of
memory says so — so they live below both.
"""

from __future__ import annotations

from paramscope.errors import InputError


class UnrecognisedFormat(InputError):
    """The bytes are no checkpoint format paramscope knows (as opposed to a damaged one)."""


class RecognisedNotRead(InputError):
    """A model format paramscope recognises but does not read (as opposed to an unknown one)."""

    def __init__(self, format_name: str) -> None:
        self.format_name = format_name
        super().__init__(f"recognised: {format_name}, not read")


class OutOfMemory(InputError):
    """Reading the file needed more memory than the limits allow."""
