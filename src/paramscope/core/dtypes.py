"""Element sizes of the dtypes frameworks and files use, in bits.

Bits, not bytes, because packed 4-bit types exist; a tensor's byte count is rounded up.
Names are the framework-neutral spellings (`float32`, `bfloat16`, `int8`); torch names are
normalised by dropping their `torch.` prefix before lookup.
"""

from __future__ import annotations

import functools

_BITS = {
    "float64": 64,
    "double": 64,
    "float32": 32,
    "float": 32,
    "float16": 16,
    "half": 16,
    "bfloat16": 16,
    "complex128": 128,
    "complex64": 64,
    "complex32": 32,
    "int64": 64,
    "int32": 32,
    "int16": 16,
    "int8": 8,
    "uint64": 64,
    "uint32": 32,
    "uint16": 16,
    "uint8": 8,
    "bool": 8,
    "float8_e4m3fn": 8,
    "float8_e4m3fnuz": 8,
    "float8_e5m2": 8,
    "float8_e5m2fnuz": 8,
    "float8_e8m0fnu": 8,
    "int4": 4,
    "uint4": 4,
    "float4_e2m1fn_x2": 8,
    "qint8": 8,
    "quint8": 8,
    "qint32": 32,
    "quint4x2": 8,
    "quint2x4": 8,
}


@functools.lru_cache(maxsize=256)
def normalize_dtype(dtype: object) -> str:
    """The neutral name of a dtype object or string (`torch.float32` -> `float32`).

    Cached: a model has a handful of dtypes and thousands of tensors.
    """
    name = getattr(dtype, "name", None) if not isinstance(dtype, str) else dtype
    if not isinstance(name, str):
        name = str(dtype)
    return name.removeprefix("torch.")


def dtype_bits(dtype: str) -> int | None:
    """Bits per element, or None for a dtype we do not know (bytes are then not reported)."""
    return _BITS.get(normalize_dtype(dtype))


def tensor_bytes(params: int, dtype: str) -> int | None:
    """Bytes that `params` elements of `dtype` occupy, rounded up to whole bytes."""
    bits = dtype_bits(dtype)
    return None if bits is None else (params * bits + 7) // 8  # integers: exact past 2**53
