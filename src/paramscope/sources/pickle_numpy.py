"""NumPy arrays inside a pickle, recovered from their records without NumPy reading the file.

``ndarray.__reduce__`` pickles an array as ``numpy.core.multiarray._reconstruct(ndarray, (0,),
b'b')`` (``numpy._core`` since NumPy 2) and then BUILD with the state ``(version, shape, dtype,
is_fortran, rawdata)``; with pickle protocol 5 it is ``numpy.core.numeric._frombuffer(buffer,
dtype, shape, order)`` instead. The dtype is itself a record, ``numpy.dtype('f4', False, True)``,
whose BUILD state ``(3, '<', …)`` gives the byte order. The walker leaves all of these as inert
:class:`Call` records; here they become an :class:`ArrayRef` of shape and dtype.

Why by hand: calling ``_reconstruct`` or ``__setstate__`` is what unpickling does, and NumPy
would then parse the file's bytes. Only ``np.dtype`` of a short type code that has been
matched against a strict pattern reaches NumPy (as keras_npz.py does), and only numeric kinds
(bool, integers, floats, complex) are tensors: object, string, void and datetime arrays are
data of another kind. The raw data is never read, only measured: its length must be the
array's bytes, so that a record cannot claim a billion elements over twelve bytes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from paramscope.errors import InputError
from paramscope.sources.boundary import shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.pickle_walker import Call, Global, Opaque

NUMPY_PACKAGES = ("numpy.core", "numpy._core")  # NumPy 1 and NumPy 2 spell the same functions so
RECONSTRUCT = frozenset(Global(f"{package}.multiarray", "_reconstruct") for package in NUMPY_PACKAGES)
FROMBUFFER = frozenset(Global(f"{package}.numeric", "_frombuffer") for package in NUMPY_PACKAGES)
TYPE_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}")  # 'f4', 'i8', 'b1', 'c16': no structured dtypes
BYTE_ORDERS = frozenset({"<", ">", "|", "="})
NUMERIC_KINDS = frozenset("biufc")  # bool, signed, unsigned, float, complex


@dataclass(frozen=True, slots=True)
class ArrayRef:
    """A NumPy array a pickle holds: its shape, dtype name and the bytes its data takes."""

    shape: tuple[int, ...]
    dtype: str
    nbytes: int


def numpy_dtype(record: object) -> tuple[str, int] | None:
    """(name, item size) of a pickled ``numpy.dtype`` record of a numeric kind, else None."""
    if not (isinstance(record, Call) and record.function == Global("numpy", "dtype") and record.args):
        return None
    code = record.args[0]
    if not (isinstance(code, str) and TYPE_CODE.fullmatch(code)):
        return None
    state = record.state
    order = state[1] if isinstance(state, tuple) and len(state) > 1 else "="
    if not (isinstance(order, str) and order in BYTE_ORDERS):
        raise InputError(f"a numpy dtype whose byte order is not one of {''.join(sorted(BYTE_ORDERS))}")
    import numpy as np  # only here, on a validated short type code

    try:
        dtype = np.dtype(order.replace("|", "=") + code)
    except (TypeError, ValueError):
        return None
    return (dtype.name, dtype.itemsize) if dtype.kind in NUMERIC_KINDS else None


def _raw_length(raw: object) -> tuple[int, int] | None:
    """The fewest and most bytes the array's raw data may hold. Protocol 2 writes bytes as
    ``_codecs.encode(text, 'latin1')``: one character per byte, so the length is exact unless
    the text was too long to keep (an :class:`Opaque`), whose UTF-8 size spends one or two
    bytes on each character."""
    if isinstance(raw, (bytes, bytearray)):
        return len(raw), len(raw)
    if isinstance(raw, Opaque):
        return raw.size, raw.size
    if isinstance(raw, Call) and raw.function == Global("_codecs", "encode") and raw.args:
        text = raw.args[0]
        if isinstance(text, str):
            return len(text), len(text)
        if isinstance(text, Opaque):
            return (text.size + 1) // 2, text.size
    return None


def _array(shape_value: object, dtype_record: object, raw: object, budget: ReadBudget) -> ArrayRef | None:
    dtype = numpy_dtype(dtype_record)
    if dtype is None:
        return None  # object, string or structured data: not a tensor
    name, itemsize = dtype
    if not isinstance(shape_value, tuple):  # checked first: the repr of a record may be huge
        raise InputError(f"a numpy array whose shape is a {type(shape_value).__name__}")
    shape = shape_of(shape_value, budget, "a numpy array")
    nbytes = math.prod(shape) * itemsize
    length = _raw_length(raw)
    if length is None:
        raise InputError(f"a numpy {name} array of shape {shape} without its raw data")
    fewest, most = length
    if not fewest <= nbytes <= most:
        held = f"{fewest:,}" if fewest == most else f"{fewest:,} to {most:,}"
        raise InputError(
            f"a numpy {name} array of shape {shape} needs {nbytes:,} bytes; its record holds {held}"
        )
    return ArrayRef(shape, name, nbytes)


def numpy_array(call: Call, budget: ReadBudget) -> ArrayRef | None:
    """The array a ``_reconstruct`` or ``_frombuffer`` record rebuilds, or None when the record
    is no numeric array (another call, an object array); an InputError when it is malformed."""
    if not isinstance(call.function, Global):  # records are unhashable: only names are looked up
        return None
    if call.function in RECONSTRUCT:
        state = call.state
        if state is None:
            return None  # never given its state: the empty array _reconstruct starts from
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise InputError("a numpy array record whose state is not (version, shape, dtype, order, data)")
        shape, dtype, _, raw = state[-4:]
        return _array(shape, dtype, raw, budget)
    if call.function in FROMBUFFER:
        if len(call.args) != 4:
            raise InputError("a numpy array record whose arguments are not (buffer, dtype, shape, order)")
        raw, dtype, shape, _ = call.args
        return _array(shape, dtype, raw, budget)
    return None


__all__ = ["ArrayRef", "numpy_array", "numpy_dtype"]
