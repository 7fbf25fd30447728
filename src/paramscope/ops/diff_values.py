"""Two tensors' values compared a chunk at a time: equal bytes first, then statistics.

Each side is a stream of bounded 1-D chunks (sources/values.py says how they are read), whose
boundaries need not agree: :func:`aligned` cuts both into pieces of equal length, so no more
than one chunk per side is ever in memory. Equal bytes is the cheap answer for everything
fine-tuning left alone, and the first differing piece ends it. Only a pair that differs is
read again for its statistics, accumulated in float64: the largest absolute change, the
relative change ‖B - A‖ / ‖A‖, and the fraction of elements that moved by more than the
tolerance. Quantized and packed tensors, and dtypes NumPy cannot decode (float8, 4-bit,
complex), are compared as stored bytes only: equal or not, no statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from paramscope.core.report import Tensor

DECODED = frozenset(
    {"float64", "float32", "float16", "int64", "int32", "int16", "int8"}
    | {"uint64", "uint32", "uint16", "uint8", "bool"}
)


class TensorValues(Protocol):
    """One tensor's stored elements as a stream of 1-D chunks (see sources/values.py)."""

    dtype: np.dtype
    count: int

    def chunks(self) -> Iterator[np.ndarray]: ...


@dataclass(frozen=True)
class Comparison:
    """What the values of one pair of tensors did; the statistics are None when only the
    stored bytes could be compared."""

    identical: bool  # equal bytes
    changed: bool  # some element moved by more than the tolerance (or, bytes only: not identical)
    max_abs_delta: float | None = None
    relative_change: float | None = None  # ‖B - A‖ / ‖A‖; inf when A is all zeros and B is not
    changed_fraction: float | None = None


IDENTICAL = Comparison(True, False, 0.0, 0.0, 0.0)


def _bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the upper half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def _float64(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64)


def decoder(dtype: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """How a chunk of ``dtype`` becomes float64 values; None where only bytes can be compared."""
    if dtype == "bfloat16":
        return _bfloat16
    return _float64 if dtype in DECODED else None


def bytes_only(tensor: Tensor) -> bool:
    return tensor.quantized is not None or decoder(tensor.dtype) is None


def aligned(
    left: Iterator[np.ndarray], right: Iterator[np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pieces of equal length from two streams of 1-D chunks, in order, until one ends."""
    x = y = np.empty(0)
    while True:
        while not len(x):
            x = next(left, None)
            if x is None:
                return
        while not len(y):
            y = next(right, None)
            if y is None:
                return
        n = min(len(x), len(y))
        yield x[:n], y[:n]
        x, y = x[n:], y[n:]


def _bytes(chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield chunk.view(np.uint8)


def _equal(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal bytes; compared a word at a time where the length allows (twice as fast)."""
    if len(x) % 8 == 0:
        return np.array_equal(x.view(np.uint64), y.view(np.uint64))
    return np.array_equal(x, y)


def same_bytes(a: TensorValues, b: TensorValues) -> bool:
    if a.count * a.dtype.itemsize != b.count * b.dtype.itemsize:
        return False
    return all(_equal(x, y) for x, y in aligned(_bytes(a.chunks()), _bytes(b.chunks())))


@dataclass
class _Sums:
    """Statistics of a pair, accumulated over its pieces."""

    tolerance: float
    same_dtype: bool  # then an element is the same when its stored bits are
    max_abs: float = 0.0
    delta_squares: float = 0.0
    base_squares: float = 0.0
    moved: int = 0
    elements: int = 0

    def add(self, raw_a: np.ndarray, raw_b: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        delta = b - a
        undefined = np.isnan(delta)
        if undefined.any():  # NaN, or an infinity minus itself: moved unless it is what it was
            delta[undefined & self._same(raw_a, raw_b, a, b)] = 0.0
        magnitude = np.abs(delta)
        self.moved += len(a) - int(np.count_nonzero(magnitude <= self.tolerance))
        largest = float(magnitude.max(initial=0.0))  # NaN where an element became NaN: not "0"
        self.max_abs = largest if math.isnan(largest) or largest > self.max_abs else self.max_abs
        self.delta_squares += float(np.einsum("i,i->", delta, delta))  # no BLAS threads: they spin
        self.base_squares += float(np.einsum("i,i->", a, a))
        self.elements += len(a)

    def _same(self, raw_a: np.ndarray, raw_b: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.same_dtype:
            word = f"u{raw_a.dtype.itemsize}"
            return raw_a.view(word) == raw_b.view(word)
        return (a == b) | (np.isnan(a) & np.isnan(b))

    def comparison(self) -> Comparison:
        if self.base_squares > 0:
            relative = math.sqrt(self.delta_squares) / math.sqrt(self.base_squares)
        else:
            relative = 0.0 if self.delta_squares == 0 else math.inf
        fraction = self.moved / self.elements if self.elements else 0.0
        return Comparison(False, self.moved > 0, self.max_abs, relative, fraction)


def statistics(
    a: Tensor, b: Tensor, values_a: TensorValues, values_b: TensorValues, tolerance: float
) -> Comparison:
    """The pair's statistics in float64, a piece at a time."""
    decode_a, decode_b = decoder(a.dtype), decoder(b.dtype)
    sums = _Sums(tolerance, a.dtype == b.dtype)
    for x, y in aligned(values_a.chunks(), values_b.chunks()):
        sums.add(x, y, decode_a(x), decode_b(y))
    return sums.comparison()


def compare(
    a: Tensor, b: Tensor, values_a: TensorValues, values_b: TensorValues, tolerance: float
) -> Comparison:
    """Equal bytes first; statistics only for a pair of decodable tensors that differ."""
    if bytes_only(a) or bytes_only(b):
        identical = same_bytes(values_a, values_b)
        return Comparison(identical, not identical)
    if a.dtype == b.dtype and same_bytes(values_a, values_b):
        return IDENTICAL
    return statistics(a, b, values_a, values_b, tolerance)
