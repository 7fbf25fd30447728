"""Tensor values, a bounded chunk at a time: what ``diff`` compares.

The file readers never read tensor data; ``diff`` must. Here each tensor of a report gets its
values as a stream of 1-D NumPy chunks in C order, each of at most ``CHUNK_ELEMENTS``
elements, so that two large models are compared without either being in memory. A chunk
holds the elements as stored: NumPy's own dtype where it has one, unsigned integers of the
element's width where it has none (bfloat16 as uint16, float8 as uint8), so that equal bits
compare equal whatever the source; ops/diff.py decodes them. A dtype with no whole-byte
element (4-bit, unknown) is streamed as its bytes.

In a file, a tensor is a byte range (:class:`FileRange`) or a strided view of one (a torch
storage saved as a view, a Fortran-order array: :class:`FileView`). The per-format modules
(``values_*.py``) find them by walking the file as its reader does, and check every offset
and extent against the bytes the file holds. A read checks again that the file still has the
size it had (it may have been cut or rewritten since) and that every byte asked for came. A
range is read with ``pread`` into one reused buffer rather than mapped: the pages of a mapped
2 GB file count as this process's memory until it unmaps them.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from paramscope.core.dtypes import dtype_bits
from paramscope.core.kinds import Kind
from paramscope.core.printable import visible
from paramscope.core.report import Report, Tensor
from paramscope.core.tree import TreeBuilder
from paramscope.errors import InputError
from paramscope.sources.boundary import open_regular
from paramscope.sources.budget import ReadBudget
from paramscope.sources.detect import STRICT_ENV
from paramscope.sources.flat import FlatTensor, flat_tree
from paramscope.sources.packed_weights import Hints, recognise

CHUNK_ELEMENTS = 1 << 20  # per side: 8 MB of float64 once decoded
# A strided block (a transposed weight) touches many pages of the file for few elements; they
# are file pages, released after each block. Large enough that a transposed matrix is read in
# bands of rows, each page touched once per band.
STRIDED_ELEMENTS = 1 << 18
NUMPY_CODES = {
    "float64": "f8",
    "float32": "f4",
    "float16": "f2",
    "int64": "i8",
    "int32": "i4",
    "int16": "i2",
    "int8": "i1",
    "uint64": "u8",
    "uint32": "u4",
    "uint16": "u2",
    "uint8": "u1",
    "bool": "b1",
    "complex64": "c8",
    "complex128": "c16",
}
NOT_READ = "values of {kind} files are not read yet"
EXPANDED = "a view that repeats its storage's elements (stride 0): its values are not read"


class TensorValues(Protocol):
    """One tensor's stored elements, as a stream of bounded chunks."""

    dtype: np.dtype  # how a chunk holds each stored element
    count: int  # elements stored

    def chunks(self) -> Iterator[np.ndarray]: ...


Located = dict[str, "TensorValues | str"]  # tensor path -> its values, or why it has none


@dataclass
class Values:
    """The values of one report's tensors; ``missing`` says why a tensor not located has none."""

    located: Located
    missing: str = "not found among the file's data"

    def of(self, tensor: Tensor) -> TensorValues | str:
        return self.located.get(tensor.path, self.missing)


def element_dtype(dtype: str, order: str = "<") -> np.dtype | None:
    """How a chunk holds one element of ``dtype``: NumPy's own type, else unsigned integers of
    its width; None for elements narrower than a byte or of unknown size."""
    code = NUMPY_CODES.get(dtype)
    if code is not None:
        return np.dtype(order + code)
    bits = dtype_bits(dtype)
    return np.dtype(f"{order}u{bits // 8}") if bits in (8, 16, 32, 64) else None


def stored(dtype: str, count: int, nbytes: int) -> tuple[np.dtype, int]:
    """(chunk dtype, elements) of a tensor whose data is ``nbytes`` long: its elements where a
    chunk can hold them, else its bytes (4-bit and packed data are compared as bytes)."""
    element = element_dtype(dtype)
    if element is None or count * element.itemsize != nbytes:
        return np.dtype("u1"), nbytes
    return element, count


def native(chunk: np.ndarray) -> np.ndarray:
    """The chunk in this machine's byte order (a big-endian .npy holds the same values)."""
    return chunk if chunk.dtype.isnative else chunk.astype(chunk.dtype.newbyteorder("="))


def blocks(array, shape: tuple[int, ...], limit: int) -> Iterator[object]:
    """Sub-arrays of ``array`` (NumPy, torch, jax or TensorFlow) of at most ``limit`` elements,
    in C order: runs of its leading axis, or, where one index of that axis holds more than
    ``limit``, the blocks of each index in turn."""
    if math.prod(shape) <= limit:
        yield array
        return
    row = math.prod(shape[1:])
    if row > limit:
        for index in range(shape[0]):
            yield from blocks(array[index], shape[1:], limit)
        return
    step = limit // row
    for start in range(0, shape[0], step):
        yield array[start : start + step]


def extent(offset: int, shape: tuple[int, ...], stride: tuple[int, ...]) -> int:
    """The elements of storage a view reaches: one past its last element (0 when empty)."""
    if 0 in shape:
        return 0
    return offset + sum((dim - 1) * step for dim, step in zip(shape, stride, strict=True)) + 1


def is_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Whether a view's elements lie one after another in C order."""
    expected = 1
    for dim, step in zip(reversed(shape), reversed(stride), strict=True):
        if dim != 1 and step != expected:
            return False
        expected *= dim
    return True


def _opened(file: Path, size: int):
    """The file opened for reading, if it still has the size it had when it was located."""
    handle = open_regular(file)
    now = os.fstat(handle.fileno()).st_size
    if now != size:
        handle.close()
        raise InputError(f"{file}: changed while it was read ({now:,} bytes, was {size:,})")
    return handle


@dataclass(frozen=True)
class FileRange:
    """``count`` elements stored one after another from byte ``offset`` of ``file``."""

    file: Path
    file_size: int  # the file's size when the range was located and checked against it
    offset: int
    dtype: np.dtype  # as stored, byte order included
    count: int

    def chunks(self) -> Iterator[np.ndarray]:
        itemsize = self.dtype.itemsize
        with _opened(self.file, self.file_size) as handle:
            buffer = memoryview(bytearray(min(self.count, CHUNK_ELEMENTS) * itemsize))
            for start in range(0, self.count, CHUNK_ELEMENTS):
                piece = buffer[: min(CHUNK_ELEMENTS, self.count - start) * itemsize]
                _fill(handle.fileno(), piece, self.offset + start * itemsize, self.file)
                yield native(np.frombuffer(piece, self.dtype))  # valid until the next chunk


def _fill(fd: int, piece: memoryview, offset: int, file: Path) -> None:
    """``piece`` read from ``offset`` of the file, every byte of it."""
    done = 0
    while done < len(piece):
        try:
            got = os.preadv(fd, [piece[done:]], offset + done)
        except OSError as exc:
            raise InputError(f"{file}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        if got == 0:
            raise InputError(f"{file}: cut short at byte {offset + done:,} while its values were read")
        done += got


@dataclass(frozen=True)
class FileView:
    """A strided view of a storage: ``shape`` and ``stride`` in elements, from element ``offset``
    of the storage that starts at byte ``start`` of ``file``. Read through a memory map whose
    pages are released after each block."""

    file: Path
    file_size: int
    start: int
    dtype: np.dtype
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    def chunks(self) -> Iterator[np.ndarray]:
        if self.count == 0:
            return
        with _opened(self.file, self.file_size) as handle:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)  # unmapped once unused
        itemsize = self.dtype.itemsize
        array = np.ndarray(
            self.shape,
            self.dtype,
            buffer=data,
            offset=self.start + self.offset * itemsize,
            strides=tuple(step * itemsize for step in self.stride),
        )
        for block in blocks(array, self.shape, STRIDED_ELEMENTS):
            chunk = native(np.array(block, order="C").reshape(-1))
            data.madvise(mmap.MADV_DONTNEED)  # the pages read stay in the page cache, not in us
            yield chunk


def located_view(
    file: Path, file_size: int, start: int, nbytes: int, element: np.dtype, view: tuple[int, tuple, tuple]
) -> FileRange | FileView | str:
    """A tensor viewing ``nbytes`` of storage from byte ``start`` of a file, as ``(element
    offset, shape, stride)``: a range where its elements follow one another, else a strided
    view; the storage checked against the file, the view against the storage. A view with
    more elements than its storage repeats them (``expand``: stride 0) and is not read: its
    elements could number 2**62 over one stored value."""
    offset, shape, stride = view
    if start + nbytes > file_size:
        raise InputError(f"{file}: a storage reaches past the end of the file")
    if offset < 0 or any(step < 0 for step in stride):
        raise InputError(f"{file}: a tensor view with a negative offset or stride")
    if math.prod(shape) * element.itemsize > nbytes:
        return EXPANDED
    if extent(offset, shape, stride) * element.itemsize > nbytes:
        raise InputError(f"{file}: a tensor of shape {shape} reaches past its storage")
    if is_contiguous(shape, stride):
        return FileRange(file, file_size, start + offset * element.itemsize, element, math.prod(shape))
    return FileView(file, file_size, start, element, offset, shape, stride)


class _PathRecorder(TreeBuilder):
    """A TreeBuilder that remembers the path of each tensor it makes, in the order made."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def tensor(self, *args, **kwargs) -> Tensor:
        made = super().tensor(*args, **kwargs)
        self.paths.append(made.path)
        return made


def flat_paths(entries: list[FlatTensor], hints: Hints, budget: ReadBudget) -> list[str]:
    """The report path of each flat entry, placed exactly as the flat reader places it (packed
    quantized layers under their layer's node): flat_tree makes one tensor per entry, in order."""
    recorder = _PathRecorder()
    packings = recognise(entries, hints, budget).packings
    flat_tree(entries, "", recorder, budget, packings=packings)
    return recorder.paths


FileLocator = Callable[[Path, Report, ReadBudget], Values]


def _file_locator(kind: Kind) -> FileLocator | None:
    if kind is Kind.SAFETENSORS:
        from paramscope.sources.values_safetensors import safetensors_values

        return safetensors_values
    if kind is Kind.TORCH_FILE:
        from paramscope.sources.values_torch import torch_values

        return torch_values
    if kind is Kind.NPZ:
        from paramscope.sources.values_numpy import numpy_values

        return numpy_values
    if kind in (Kind.KERAS_FILE, Kind.H5):
        from paramscope.sources.values_keras import keras_values

        return keras_values
    return None


def values_of(report: Report) -> Values:
    """Where the values of each of the report's tensors are: in its file, or in the live model."""
    kind = report.source.kind
    if kind.live:
        from paramscope.sources.values_live import live_values

        return live_values(report)
    locator = _file_locator(kind)
    if locator is None or report.source.path is None:
        return Values({}, NOT_READ.format(kind=kind))
    path = Path(report.source.path)
    with reading(path):
        return locator(path, report, ReadBudget())


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Any failure to locate the values as one clean error naming the file, as read_file does."""
    try:
        yield
    except InputError as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        exc.args = (visible(message),)
        raise
    except OSError as exc:
        raise InputError(visible(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})")) from None
    except Exception as exc:
        if os.environ.get(STRICT_ENV):
            raise
        raise InputError(visible(f"malformed {path}: {type(exc).__name__}: {str(exc)[:100]}")) from None
