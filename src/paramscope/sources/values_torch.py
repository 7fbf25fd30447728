"""Where each tensor's elements lie in a torch ``.pt`` file, zip or legacy, without torch.

The pickle is walked again by the inert walker, as the reader walks it (torch_file.py), and
gives each model tensor its name, its storage, and its view of that storage (element offset,
shape, stride). A storage is a byte range of the file: in a zip archive, an uncompressed
member (torch stores them so; open_zip has checked every member's range against the
archive); in a legacy file, the element count and elements written after the pickles, which
the reader has checked lie inside the file. Each view is checked against its storage's bytes.
A NumPy array inside the pickle has its data in the pickle stream itself: it is not read.
"""

from __future__ import annotations

import functools
import mmap
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from paramscope.core.report import Report
from paramscope.errors import InputError
from paramscope.sources.archive import open_zip, read_member
from paramscope.sources.boundary import open_regular
from paramscope.sources.budget import ReadBudget
from paramscope.sources.detect import ZIP_MAGIC
from paramscope.sources.flat import FlatTensor
from paramscope.sources.hdf5_walk import _member_offset
from paramscope.sources.packed_weights import Hints, config_beside
from paramscope.sources.pickle_walker import Names, StorageRef, walk, walk_at
from paramscope.sources.torch_checkpoint import layout
from paramscope.sources.torch_file import _flat, _found, _legacy_storages
from paramscope.sources.torch_pickled import Sighting
from paramscope.sources.values import Located, TensorValues, Values, element_dtype, flat_paths, located_view

Spans = dict[str, tuple[int, int] | str]  # storage key -> (first byte, bytes), or why it is not read
Layout = tuple[object, list[Sighting], Spans]  # the pickled object, its tensors, their storages
IN_PICKLE = "a NumPy array stored inside the pickle: its values are not read"


def _entries(obj: object, found: list[Sighting], spans: Spans, budget: ReadBudget) -> list[FlatTensor]:
    """The model's tensors as the reader lists them, each view sized by its storage's span."""

    def storage_bytes(storage: StorageRef) -> int:
        span = spans.get(storage.key)
        return span[1] if isinstance(span, tuple) else 0

    return _flat(layout(obj, found).model, storage_bytes, budget)[0]


def _located(path: Path, obj: object, found: list[Sighting], spans: Spans, budget: ReadBudget) -> Located:
    """Each model tensor's values by its report path, from the storage spans of the file."""
    size = path.stat().st_size
    entries = _entries(obj, found, spans, budget)
    paths = flat_paths(entries, Hints(config=lambda: config_beside(path.parent, budget)), budget)
    return {tensor: _values(path, size, entry, spans) for tensor, entry in zip(paths, entries, strict=True)}


def _values(path: Path, size: int, entry: FlatTensor, spans: Spans) -> TensorValues | str:
    if not (isinstance(entry.identity, tuple) and len(entry.identity) == 4):
        return IN_PICKLE
    key, offset, shape, stride = entry.identity  # as torch_file names one view of one storage
    span = spans.get(key, f"storage {key!r:.40} is missing from the file")
    if isinstance(span, str):
        return span
    element = element_dtype(entry.dtype)
    if element is None:
        return f"{entry.dtype} elements are not whole bytes: a view of them cannot be read"
    start, nbytes = span
    return located_view(path, size, start, nbytes, element, (offset, shape, stride))


def _zip_layout(path: Path, budget: ReadBudget) -> Layout:
    with open_regular(path) as handle, open_zip(handle, budget, str(path)) as archive:
        infos = archive.infolist()
        pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
        if len(pickles) != 1:
            raise InputError(f"{path}: not a torch archive (no single */data.pkl)")
        pickle = pickles[0]
        prefix = pickle.filename.removesuffix("data.pkl") + "data/"
        spans: Spans = {
            info.filename[len(prefix) :]: (
                (_member_offset(handle, info), info.file_size)
                if info.compress_type == zipfile.ZIP_STORED
                else "its storage is compressed in the archive (torch stores them uncompressed)"
            )
            for info in infos
            if info.filename.startswith(prefix)
        }
        obj = walk(read_member(archive, pickle, budget, "pickle_bytes"), budget=budget, names=Names())
    return obj, _found(obj, path, budget), spans


def _legacy_layout(path: Path, budget: ReadBudget) -> Layout:
    """The pre-1.6 format: after the pickles, the list of storage keys, then each storage as
    an int64 element count followed by its elements."""
    names = Names()
    with open_regular(path) as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        position = 0
        for _ in range(4):  # magic number, protocol, system info, the object
            obj, position = walk_at(data, position, budget, names=names)
        found = _found(obj, path, budget)
        sizes = _legacy_storages(data, position, found, budget, names)
        _, position = walk_at(data, position, budget, names=names)  # the keys: storages follow
    spans: Spans = {}
    for key, nbytes in sizes.items():  # in file order
        spans[key] = (position + 8, nbytes)
        position += 8 + nbytes
    return obj, found, spans


def _layout(path: Path, budget: ReadBudget) -> Layout:
    with open_regular(path) as handle:
        is_zip = os.pread(handle.fileno(), len(ZIP_MAGIC), 0) == ZIP_MAGIC
    return _zip_layout(path, budget) if is_zip else _legacy_layout(path, budget)


def torch_values(path: Path, report: Report, budget: ReadBudget) -> Values:
    return Values(_located(path, *_layout(path, budget), budget))


def stored_bytes(path: Path, budget: ReadBudget) -> Callable[[str], bytes]:
    """The stored bytes of a small tensor by its name in the file: the ``content`` hint the
    header-only reader (torch_file.py) gives, so that bitsandbytes' quant state (a JSON text in
    a uint8 tensor) tells a 4-bit weight its logical shape, as the safetensors reader's does.
    The file's layout is walked again on the first call only; the view is checked as diff's are."""

    @functools.cache
    def by_name() -> dict[str, TensorValues | str]:
        obj, found, spans = _layout(path, budget)
        size = path.stat().st_size
        return {
            entry.name: _values(path, size, entry, spans) for entry in _entries(obj, found, spans, budget)
        }

    def content(name: str) -> bytes:
        values = by_name().get(name, f"no tensor {name!r:.80}")
        if isinstance(values, str):
            raise InputError(f"{path}: {values}")
        return b"".join(chunk.tobytes() for chunk in values.chunks())

    return content
