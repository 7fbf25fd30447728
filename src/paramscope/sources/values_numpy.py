"""Where each array's elements lie in a ``.npy`` file or an ``.npz`` archive.

The header is parsed by numpy's own header reader, as the reader parses it (numpy_file.py);
the data follows it, in C or Fortran order and in the header's byte order, and must fit in
the bytes that follow. An uncompressed ``.npz`` member is a byte range of the archive; a
compressed one (``np.savez_compressed``) is decompressed as a stream, a chunk at a time, and
must yield every byte its header declares. An object array's data is a pickle: not read.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from paramscope.core.report import Report
from paramscope.errors import InputError
from paramscope.sources.archive import open_zip, peek_member, zip_errors
from paramscope.sources.boundary import name_of, open_regular
from paramscope.sources.budget import ReadBudget
from paramscope.sources.detect import NPY_MAGIC
from paramscope.sources.flat import FlatTensor
from paramscope.sources.hdf5_walk import _member_offset
from paramscope.sources.numpy_file import read_npy_header
from paramscope.sources.packed_weights import Hints
from paramscope.sources.values import CHUNK_ELEMENTS, TensorValues, Values, flat_paths, located_view, native

IN_PICKLE = "an object array: its arrays are stored inside a pickle, whose values are not read"
NUMBERS = "biufc"  # bool, signed, unsigned, float, complex


@dataclass(frozen=True)
class Array:
    """An array's header: shape, dtype, order, and where its data starts in its stream."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    data_start: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    def view(self) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """(element offset, shape, stride) of the array over its data."""
        dims = range(len(self.shape))
        if self.fortran:
            return 0, self.shape, tuple(math.prod(self.shape[:i]) for i in dims)
        return 0, self.shape, tuple(math.prod(self.shape[i + 1 :]) for i in dims)

    def unreadable(self) -> str | None:
        if self.dtype.hasobject:
            return IN_PICKLE
        return None if self.dtype.kind in NUMBERS else f"a {self.dtype} array holds no numbers"


def _header(handle: BinaryIO, size: int, budget: ReadBudget, label: str) -> Array:
    shape, fortran, dtype, start = read_npy_header(handle, budget, label)
    array = Array(shape, dtype, fortran, start)
    if not dtype.hasobject and array.count * dtype.itemsize > size - start:
        raise InputError(f"{label}: declares more data than the file holds")
    return array


def _in_file(path: Path, file_size: int, first_byte: int, array: Array) -> TensorValues | str:
    nbytes = array.count * array.dtype.itemsize
    return array.unreadable() or located_view(path, file_size, first_byte, nbytes, array.dtype, array.view())


def npy_values(path: Path, budget: ReadBudget) -> Values:
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        array = _header(handle, size, budget, str(path))
    if array.dtype.hasobject:
        return Values({}, IN_PICKLE)  # the report names the arrays inside its pickle
    name = name_of(path.stem, budget, "the file name")
    (tensor_path,) = flat_paths([FlatTensor(name, array.shape, array.dtype.name, name)], Hints(), budget)
    return Values({tensor_path: _in_file(path, size, array.data_start, array)})


@dataclass(frozen=True)
class CompressedArray:
    """An array in a compressed ``.npz`` member, decompressed a chunk at a time, in order."""

    file: Path
    member: str
    skip: int  # bytes of header before the data
    dtype: np.dtype
    count: int

    def chunks(self) -> Iterator[np.ndarray]:
        itemsize = self.dtype.itemsize
        with (
            open_regular(self.file) as handle,
            zip_errors(str(self.file)),
            open_zip(handle, ReadBudget(), str(self.file)) as archive,
            archive.open(self.member) as stream,
        ):
            wanted = [self.skip] + [
                min(CHUNK_ELEMENTS, self.count - start) * itemsize
                for start in range(0, self.count, CHUNK_ELEMENTS)
            ]
            for index, length in enumerate(wanted):
                data = stream.read(length)
                if len(data) != length:
                    raise InputError(f"{self.file}: member {self.member!r:.80} is cut short")
                if index:
                    yield native(np.frombuffer(data, self.dtype))


def _member(
    path: Path, size: int, handle, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ReadBudget
):
    """(the member's array, its values or why they are not read)."""
    label = f"{path}:{name_of(info.filename, budget, 'a member name')}"
    with zip_errors(label), peek_member(archive, info) as stream:
        array = _header(stream, info.file_size, budget, label)
    if info.compress_type == zipfile.ZIP_STORED:
        return array, _in_file(path, size, _member_offset(handle, info) + array.data_start, array)
    if array.fortran and len(array.shape) > 1:
        return array, "a Fortran-order array compressed in the archive: its values are not read"
    return array, array.unreadable() or CompressedArray(
        path, info.filename, array.data_start, array.dtype, array.count
    )


def npz_values(path: Path, budget: ReadBudget) -> Values:
    entries, values = [], []
    with open_regular(path) as handle, open_zip(handle, budget, str(path)) as archive:
        size = os.fstat(handle.fileno()).st_size
        for info in archive.infolist():
            if info.filename.endswith(".npy"):
                array, found = _member(path, size, handle, archive, info, budget)
                name = name_of(info.filename.removesuffix(".npy").replace("/", "."), budget, "a member name")
                entries.append(FlatTensor(name, array.shape, array.dtype.name, info.filename))
                values.append(found)
    return Values(dict(zip(flat_paths(entries, Hints(), budget), values, strict=True)))


def numpy_values(path: Path, report: Report, budget: ReadBudget) -> Values:
    with open_regular(path) as handle:
        is_npy = os.pread(handle.fileno(), len(NPY_MAGIC), 0) == NPY_MAGIC
    return npy_values(path, budget) if is_npy else npz_values(path, budget)
