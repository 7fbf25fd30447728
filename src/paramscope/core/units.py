"""Number and size formatting shared by every renderer.

`keras_size` reproduces Keras's own `readable_memory_size` exactly (powers of 1024, two
decimals), because our footer prints Keras's lines verbatim beside ours. Keras 3 calls bytes
`B`; tf.keras calls them `Byte`.
"""

from __future__ import annotations

_UNITS = ("KB", "MB", "GB", "TB", "PB")


def keras_size(nbytes: float, byte_unit: str = "B") -> str:
    """Format a byte count as Keras's `model.summary()` does (`8.73 MB`)."""
    size = float(nbytes)
    for unit in (byte_unit, *_UNITS):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} {_UNITS[-1]}"


def count(n: int) -> str:
    """Thousands-separated integer (`2,253,335`)."""
    return f"{n:,}"


def plural(n: int, word: str) -> str:
    """`1 tensor`, `2 tensors`."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
