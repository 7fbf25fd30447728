"""The structure of an HDF5 file as plain data: groups, their small attributes, datasets.

Runs inside the sandbox (sandbox.py). Reads no dataset values. Refuses what Keras's own
loader refuses and what could reach outside the file: soft and external links, datasets
with external storage, virtual datasets, and shapes too large to be real.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile

from paramscope.errors import InputError
from paramscope.sources.limits import MAX_DIMS, MAX_TENSORS

MAX_ATTRIBUTE_BYTES = 64 * 1024 * 1024
MAX_ELEMENTS = 2**48


def _attribute(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_attribute(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)[:200]


def _storage_size(attrs, key: str) -> int:
    try:
        return attrs.get_id(key).get_storage_size()
    except RuntimeError:  # an empty attribute: libhdf5 reports its size 0 as an error
        return 0


def _attributes(attrs) -> dict:
    """Small attributes as plain data; oversized ones are left out, never read."""
    return {key: _attribute(attrs[key]) for key in attrs if _storage_size(attrs, key) <= MAX_ATTRIBUTE_BYTES}


def _walk(handle) -> dict:
    """Every link below the root, through h5py's low-level link visitor: the high-level
    ``visititems_links`` looks each name up twice more (a third of the walk's time)."""
    import h5py
    from h5py import h5d, h5i, h5l, h5o

    groups: dict[str, dict] = {}
    datasets: list[dict] = []
    refusals: list[str] = []
    link_kinds = {h5l.TYPE_SOFT: "soft", h5l.TYPE_EXTERNAL: "external"}

    def check(raw_name: bytes, info) -> str | None:
        """Why this link must be refused, else None (and the item is recorded)."""
        name = raw_name.decode("utf-8", "replace")
        if info.type != h5l.TYPE_HARD:
            return f"refused HDF5 {link_kinds.get(info.type, 'user-defined')} link {name!r}"
        item = h5o.open(handle.id, raw_name)
        if h5i.get_type(item) != h5i.DATASET:
            groups[name] = _attributes(h5py.Group(item).attrs)
            return None
        plist = item.get_create_plist()
        if plist.get_layout() == h5d.VIRTUAL:
            return f"refused virtual dataset {name!r}"
        if plist.get_external_count():
            return f"refused dataset {name!r} with external storage"
        shape = tuple(int(d) for d in item.shape or ())
        if len(shape) > MAX_DIMS or math.prod(shape) > MAX_ELEMENTS:
            return f"refused dataset {name!r} with an absurd shape"
        datasets.append({"path": name, "shape": shape, "dtype": item.dtype.name})
        return "too many datasets" if len(datasets) > MAX_TENSORS else None

    def visit(name: bytes, info) -> bool | None:
        # h5py mangles exceptions raised in a visitor; record the reason and stop instead
        try:
            reason = check(name, info)
        except Exception as exc:
            reason = f"damaged or unreadable file ({type(exc).__name__}: {str(exc)[:100]})"
        if reason:
            refusals.append(reason)
            return True  # a non-None result stops the visit
        return None

    handle.id.links.visit(visit, info=True)
    if refusals:
        raise InputError(refusals[0])
    return {"root": _attributes(handle.attrs), "groups": groups, "datasets": datasets}


class Window(io.RawIOBase):
    """A read-only window onto a byte range of a file: an uncompressed zip member in place.

    zipfile's member stream re-reads from the start of the member on every backward seek,
    and HDF5 seeks constantly (1.6 s instead of 0.1 s for ResNet50's weights).
    """

    BLOCK = 64 * 1024
    MAX_BLOCKS = 256  # 16 MB of metadata at most; tensor data is never read

    def __init__(self, handle, start: int, length: int) -> None:
        self._handle, self._start, self._length, self._position = handle, start, length, 0
        self._blocks: dict[int, bytes] = {}  # HDF5 makes many small reads of nearby metadata

    def _block(self, number: int) -> bytes:
        block = self._blocks.get(number)
        if block is None:
            offset = number * self.BLOCK
            size = max(0, min(self.BLOCK, self._length - offset))
            block = os.pread(self._handle.fileno(), size, self._start + offset)
            if len(self._blocks) >= self.MAX_BLOCKS:
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[number] = block
        return block

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self._length - self._position))
        if count > self.BLOCK:  # a large read (rare in a header walk): straight from the file
            data = os.pread(self._handle.fileno(), count, self._start + self._position)
        else:
            first, last = self._position // self.BLOCK, (self._position + count - 1) // self.BLOCK
            joined = b"".join(self._block(n) for n in range(first, last + 1)) if count else b""
            skip = self._position - first * self.BLOCK
            data = joined[skip : skip + count]
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def _member_offset(handle, info: zipfile.ZipInfo) -> int:
    """Where a member's bytes start: after its local header (whose lengths may differ from the
    central directory's)."""
    handle.seek(info.header_offset)
    local = handle.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise InputError(f"damaged zip member {info.filename!r}")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_length + extra_length


def hdf5_structure(path: str, member: str | None = None) -> dict:
    """The structure of an HDF5 file, or of one HDF5 member of a zip archive."""
    import h5py

    if member is None:
        with h5py.File(path, "r") as handle:
            return _walk(handle)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:  # rare: Keras stores members uncompressed
            with archive.open(member) as stream, h5py.File(stream, "r") as handle:
                return _walk(handle)
    with open(path, "rb") as raw:
        window = Window(raw, _member_offset(raw, info), info.file_size)
        with h5py.File(window, "r") as handle:
            return _walk(handle)
