"""The structure of an HDF5 file as plain JSON data; runs inside the sandbox (sandbox.py).

Reads no dataset values, and of the attributes only those the Keras readers use
(:data:`WANTED`), each bounded before it is read (its element count, and for fixed-length
text its stored size) and after (the length of the decoded text). A variable-length string
is stored as a 16-byte reference into a heap, so its stored size says nothing about its
data, and thousands of references may share one large heap object; libhdf5 decodes an
attribute whole. So the element count is bounded by the objects in the file, the reads run
under an address-space limit no larger than the attribute text the budget allows
(``header_bytes``), and the decoded length is charged after.

Each object is looked at once, however many hard links reach it (libhdf5's visitor already
descends into a group once): a group's further links are charged to ``references`` and
share its attributes; a dataset's are refused, since one stored array would become two
variables. Refused too, as Keras's own loader refuses them or because they reach outside the
file: soft, external and user-defined links, datasets with external storage, virtual
datasets, and datasets that declare over 4 GiB and a thousand times what they store.

The reply, validated again by the parent (hdf5_structure.py), which trusts nothing from here::

    {"attributes": [{"name": "text" or ["text", ...]}, ...],   # one entry per group object
     "root": 0,                                                # the root group's entry
     "groups": [["path", entry], ...],
     "datasets": [["path", [dims, ...], "dtype", declared bytes, stored bytes], ...]}
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import struct
import tempfile
import zipfile

from paramscope.core.oslimits import memory_growth_limit
from paramscope.errors import InputError
from paramscope.sources.archive import open_member, open_zip, zip_errors
from paramscope.sources.boundary import open_regular, require_regular, shape_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget

WANTED = ("layer_names", "weight_names", "keras_version", "model_config", "name")
LINK_KINDS = {1: "soft", 64: "external"}  # h5l.TYPE_SOFT, h5l.TYPE_EXTERNAL
READ_SLACK = 32 * 1024 * 1024  # address space the attribute reads need beside the text they decode
SPILL_CHUNK = 1024 * 1024
BOMB_FLOOR, BOMB_EXPANSION = 1 << 32, 1000  # Keras refuses a dataset this much larger than its bytes


def _text(value: bytes) -> str:
    """Stored text (bytes, fixed-length or variable) as valid Unicode."""
    return bytes(value).decode("utf-8", "replace")


class _Walk:
    """One pass over a file's links, then one read of each group's wanted attributes."""

    def __init__(self, handle, budget: ReadBudget) -> None:
        import h5py  # here, not at the top: the parent imports this module and never parses HDF5

        self._h5, self._handle, self._budget = h5py, handle, budget
        root = h5py.h5o.open(handle.id, b"/")
        self._groups: list = [root]  # group objects, in the order their attributes are listed
        self._seen: dict[int, int | str] = {h5py.h5o.get_info(root).addr: 0}  # address -> group entry or path
        self._group_links: list[list] = []
        self._datasets: list[list] = []
        self._links = 0
        self._failure: Exception | None = None

    def reply(self) -> dict:
        self._handle.id.links.visit(self._visit, info=True)
        if self._failure is not None:
            raise self._failure
        limit = self._links + 1  # a list of names longer than this names things the file lacks
        allowed = self._budget.limits.header_bytes - self._budget.used("header_bytes")
        with memory_growth_limit(allowed + READ_SLACK):
            attributes = [self._attributes(group, limit) for group in self._groups]
        return {"attributes": attributes, "root": 0, "groups": self._group_links, "datasets": self._datasets}

    def _visit(self, raw_name: bytes, info) -> bool | None:
        # h5py mangles exceptions raised in a visitor: keep the first one and stop the visit
        try:
            self._link(raw_name, info)
        except InputError as exc:
            self._failure = exc
        except Exception as exc:
            self._failure = InputError(f"damaged or unreadable file ({type(exc).__name__}: {str(exc)[:100]})")
        return True if self._failure is not None else None  # a non-None result stops the visit

    def _link(self, raw_name: bytes, info) -> None:
        self._budget.tick()
        self._links += 1
        name = raw_name.decode("utf-8", "replace")
        if info.type != self._h5.h5l.TYPE_HARD:
            raise InputError(f"refused HDF5 {LINK_KINDS.get(info.type, 'user-defined')} link {name!r:.80}")
        known = self._seen.get(info.u)
        if isinstance(known, str):  # one stored array would become two variables
            raise InputError(f"refused a second hard link ({name!r:.80}) to dataset {known!r:.80}")
        if known is not None:
            self._budget.charge("references", 1, "HDF5 linking")
            self._group_links.append([name, known])
            return
        item = self._h5.h5o.open(self._handle.id, raw_name)
        kind = self._h5.h5i.get_type(item)
        if kind == self._h5.h5i.GROUP:
            self._seen[info.u] = len(self._groups)
            self._group_links.append([name, len(self._groups)])
            self._groups.append(item)
        elif kind == self._h5.h5i.DATASET:
            self._seen[info.u] = name
            self._budget.charge("tensors", 1, "datasets")
            self._datasets.append(self._dataset(name, item))
        # a named datatype: no weight, nothing Keras reads

    def _dataset(self, name: str, item) -> list:
        """[path, shape, dtype, bytes its shape declares, bytes the file stores], or a refusal of
        what Keras's loader refuses too."""
        what = f"dataset {name!r:.80}"
        plist = item.get_create_plist()
        if plist.get_layout() == self._h5.h5d.VIRTUAL:
            raise InputError(f"refused virtual {what}")
        if plist.get_external_count():
            raise InputError(f"refused {what} with external storage")
        shape = shape_of([int(d) for d in item.shape or ()], self._budget, what)
        declared, stored = math.prod(shape) * item.dtype.itemsize, item.get_storage_size()
        if declared > BOMB_FLOOR and declared > BOMB_EXPANSION * stored:
            raise InputError(
                f"refused {what}: it declares {declared:,} bytes and stores {stored:,} (a shape bomb)"
            )
        return [name, list(shape), item.dtype.name, declared, stored]

    def _attributes(self, group, limit: int) -> dict:
        self._budget.tick()
        found: dict = {}
        if self._h5.h5a.get_num_attrs(group):
            for name in WANTED:
                if self._h5.h5a.exists(group, name.encode()):
                    found[name] = self._attribute(self._h5.h5a.open(group, name.encode()), name, limit)
        return found

    def _attribute(self, attribute, name: str, limit: int) -> str | list[str]:
        """One wanted attribute as text or a list of text, bounded before and after reading."""
        what = f"attribute {name}"
        shape = attribute.shape  # None: an empty attribute
        if len(shape or ()) > 1:
            raise InputError(f"{what} has {len(shape)} dimensions; Keras writes a list of names")
        count = 0 if shape is None else math.prod(shape)
        if count > limit:
            raise InputError(f"{what} lists {count:,} names, more than the {limit:,} objects in the file")
        if count == 0:
            return []
        dtype = attribute.dtype
        string = self._h5.check_string_dtype(dtype)
        if string is None:
            raise InputError(f"{what} is not text ({dtype.name})")
        if string.length is not None:  # fixed-length: the stored size is the data's size
            self._budget.check("header_bytes", attribute.get_storage_size(), what)
        texts = [_text(value) for value in self._read(attribute, shape, what).flat]
        self._budget.charge("header_bytes", sum(map(len, texts)), "the attributes of this file")
        return texts if shape else texts[0]

    def _read(self, attribute, shape: tuple[int, ...], what: str):
        """The attribute's values as bytes, as h5py's own reader gets them."""
        import numpy

        values = numpy.zeros(shape, dtype=attribute.dtype)
        try:
            attribute.read(values, mtype=self._h5.h5t.py_create(attribute.dtype))
        except (MemoryError, OSError) as exc:
            if isinstance(exc, OSError) and "memory allocation failed" not in str(exc):
                raise  # damage, not size: libhdf5 reports a failed allocation as an OSError too
            raise BudgetExceeded("header_bytes", self._budget.limits.header_bytes, what) from None
        return values


def walk_file(path: str, budget: ReadBudget) -> dict:
    """The structure of an HDF5 file on disk."""
    import h5py

    require_regular(path)  # h5py opens by name: never a FIFO or a device
    with h5py.File(path, "r") as handle:
        return _Walk(handle, budget).reply()


def walk_files(paths: list[str], budget: ReadBudget) -> list[dict]:
    """The structures of several files (the shards of one set), within one budget."""
    return [walk_file(path, budget) for path in paths]


def walk_member(path: str, member: str, budget: ReadBudget) -> dict:
    """The structure of an HDF5 member of a zip archive.

    A stored member (Keras writes them so) is read in place through a :class:`Window`; a
    compressed one is decompressed through the archive caps (ratio, ``decompressed_bytes``)
    into an unnamed temporary file, which the child's file-size limit bounds as well.
    """
    import h5py

    with open_regular(path) as raw, contextlib.ExitStack() as stack:
        with zip_errors(path), open_zip(raw, budget, path) as archive:
            info = archive.getinfo(member)
            if info.compress_type == zipfile.ZIP_STORED:
                source = Window(raw, _member_offset(raw, info), info.file_size)
            else:
                source = stack.enter_context(tempfile.TemporaryFile())
                _spill(archive, info, budget, source)
        with h5py.File(source, "r") as handle:
            return _Walk(handle, budget).reply()


def _spill(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ReadBudget, target) -> None:
    """A compressed member decompressed into ``target`` through the archive caps, a tick per
    chunk: in the sandbox a tick is a beat, and decompressing is progress."""
    with open_member(archive, info, budget, "decompressed_bytes") as stream:
        while chunk := stream.read(SPILL_CHUNK):
            budget.tick()
            target.write(chunk)


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
    central directory's). The member must end within the file."""
    handle.seek(info.header_offset)
    local = handle.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise InputError(f"damaged zip member {info.filename!r:.80}")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.file_size > os.fstat(handle.fileno()).st_size:
        raise InputError(f"zip member {info.filename!r:.80} runs past the end of the archive")
    return start
