"""NumPy ``.npy`` and ``.npz`` files, headers only.

numpy's own header parser (``numpy.lib.format``) reads the dict literal with
``ast.literal_eval`` (no code runs) and is the reference; we call it on the header bytes
only, and treat it as what it is on hostile bytes — a third-party parser whose every failure
is a bad file. The shape it returns is validated like any other, and the data it declares
must be in the file.

An object array's data is a pickle (``np.save`` of a dict of arrays, as some packages ship their
weights): our inert walker reads it, the numeric arrays inside count as tensors, and the report
carries the pickle's verdict — ``np.load`` needs ``allow_pickle=True`` for it, which runs
whatever the pickle names.
"""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npformat

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Source, Verdict
from paramscope.errors import InputError
from paramscope.sources.archive import peek_member, zip_errors
from paramscope.sources.boundary import name_of, open_regular, shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.pickle_numpy import RECONSTRUCT, ArrayRef
from paramscope.sources.pickle_verdict import verdict_of
from paramscope.sources.pickle_walker import Call, Names, walk
from paramscope.sources.torch_pickled import Held, holdings

COMPRESSED = (
    "{count} array(s) are stored compressed in the file: their sizes are the sizes the archive "
    "declares for them, not the bytes on disk."
)
OBJECT = "object"
MAX_HEADER = 100_000  # numpy's own default cap on a header's length
# What numpy's header parser raises on damaged or hostile headers.
HEADER_DAMAGE = (
    ValueError,
    OSError,
    EOFError,
    SyntaxError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    MemoryError,
    RecursionError,
    tokenize.TokenError,
)


def read_npy_header(
    handle: BinaryIO, budget: ReadBudget, label: str
) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, Fortran order, dtype, offset of the data) of the .npy stream in ``handle``: a
    damaged header is an InputError, the shape checked and charged (``shape_of``)."""
    try:
        version = npformat.read_magic(handle)
        reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
        shape, fortran, dtype = reader(handle, max_header_size=MAX_HEADER)
        data_start = handle.tell()
    except HEADER_DAMAGE as exc:
        raise InputError(
            f"{label}: not a readable .npy header ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    return shape_of(shape, budget, label), bool(fortran), dtype, data_start


def _header(handle: BinaryIO, size: int, budget: ReadBudget, label: str) -> tuple[tuple[int, ...], str]:
    """(shape, dtype name) of the array in ``handle``, whose stream holds ``size`` bytes; the
    dtype is ``object`` for a pickled object array, whose pickle follows in ``handle``."""
    shape, _fortran, dtype, data_start = read_npy_header(handle, budget, label)
    if dtype.hasobject:
        return shape, OBJECT
    needed = math.prod(shape) * dtype.itemsize
    if needed > size - data_start:
        raise InputError(f"{label}: declares {needed:,} bytes of data; the file holds {size - data_start:,}")
    return shape, np.dtype(dtype).name


def _elements(record: object) -> object:
    """What an object array holds: its elements (the one element of a 0-d array, as
    ``np.save(dict)`` writes), so that arrays are named by their keys."""
    state = record.state if isinstance(record, Call) and record.function in RECONSTRUCT else None
    elements = state[-1] if isinstance(state, tuple) and state else record
    return elements[0] if isinstance(elements, list) and len(elements) == 1 else elements


def _pickled_arrays(handle: BinaryIO, prefix: str, budget: ReadBudget, names: Names) -> list[FlatTensor]:
    """The numeric arrays inside an object array's pickle, named by their key paths under
    ``prefix`` (an .npz member's name; nothing for an .npy)."""
    held = [
        h
        for h in holdings(_elements(walk(handle, budget=budget, names=names)), budget)
        if isinstance(h, Held) and isinstance(h.tensor, ArrayRef)
    ]
    budget.charge("tensors", len(held), "object array")
    return [
        FlatTensor(
            name_of(".".join((prefix, *h.path) if prefix else h.path) or "array", budget, "an array name"),
            h.tensor.shape,
            h.tensor.dtype,
            id(h.tensor),
            nbytes=h.tensor.nbytes,
        )
        for h in held
    ]


def _numpy_report(
    path: Path, entries: list[FlatTensor], names: Names, label: str, budget: ReadBudget, notes: list[str]
) -> Report:
    """The report, with the verdict of any object array's pickle. Nothing numeric is no array
    file — unless a pickle in it is malicious: then the verdict is the report."""
    verdict = verdict_of(names.values(), names.protocols) if names.protocols else None
    if not entries and (verdict is None or verdict.verdict is not Verdict.MALICIOUS):
        raise InputError(f"{path}: holds no numeric arrays")
    source = Source(kind=Kind.NPZ, path=str(path))
    report = flat_report(entries, source, label, path.name, warnings=notes, budget=budget)
    report.pickle = verdict
    return report


def read_npy(path: Path, budget: ReadBudget) -> Report:
    names = Names()
    with open_regular(path) as handle:
        shape, dtype = _header(handle, os.fstat(handle.fileno()).st_size, budget, str(path))
        if dtype == OBJECT:
            entries = _pickled_arrays(handle, "", budget, names)
        else:
            entries = [FlatTensor(name_of(path.stem, budget, "the file name"), shape, dtype, path.stem)]
    return _numpy_report(path, entries, names, "A .npy file", budget, [])


def read_npz(path: Path, archive: zipfile.ZipFile, budget: ReadBudget) -> Report:
    entries, compressed, names = [], 0, Names()
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        compressed += info.compress_type != zipfile.ZIP_STORED
        budget.charge("tensors", 1, "archive")
        key = name_of(info.filename.removesuffix(".npy"), budget, "a member name")  # as np.load names it
        name = key.replace("/", ".")
        label = f"{path}:{name_of(info.filename, budget, 'a member name')}"
        with zip_errors(label), peek_member(archive, info) as handle:
            shape, dtype = _header(handle, info.file_size, budget, label)
            if dtype == OBJECT:
                entries += _pickled_arrays(handle, name, budget, names)
                continue
        entries.append(FlatTensor(name, shape, dtype, name, key=key))
    notes = [COMPRESSED.format(count=compressed)] if compressed else []
    return _numpy_report(path, entries, names, "An .npz file", budget, notes)
