"""GGUF files (llama.cpp), versions 2 and 3, split files too: the header, never the data.

Hand-written because the ``gguf`` package's ``GGUFReader`` trusts the file: it makes one
numpy view per array element, so a 256k-token vocabulary takes half a minute and a 49-byte
file that declares a huge array grows past 2 GB; it loops without end on some truncated
files and fails with whatever numpy raises. The header is a short, documented little-endian
layout (ggml's ``docs/gguf.md``): magic, version, tensor and metadata counts, the metadata
key/value pairs, then one info record per tensor. We walk it over a memory map, and every
length or count is checked against the bytes left in the file before anything is allocated
or looped over. Arrays of fixed-size values are skipped by their length; arrays of strings
walk only the string lengths; nested arrays use a stack bounded by the ``depth`` limit. Each
field costs one bounds check and one ``struct`` unpack: a 262,144-token vocabulary takes a few
hundredths of a second, a million keys (the default budget) one to two seconds.

Parameters are element counts, quantized or not; bytes come from the GGML type's block size
and bytes per block, as stored.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.printable import visible
from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.boundary import name_of, open_regular, shape_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.flat import FlatTensor, flat_report

PLAIN_TYPES = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "i8": "int8",
    "i16": "int16",
    "i32": "int32",
    "i64": "int64",
}  # quantized types keep GGML's names (q4_k…)
SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$")

# GGML tensor types: id -> (name, elements per block, bytes per block), as gguf-py's
# GGMLQuantizationType and GGML_QUANT_SIZES list them (ids 4, 5 and 31-33, 36-38 were removed).
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("f32", 1, 4),
    1: ("f16", 1, 2),
    2: ("q4_0", 32, 18),
    3: ("q4_1", 32, 20),
    6: ("q5_0", 32, 22),
    7: ("q5_1", 32, 24),
    8: ("q8_0", 32, 34),
    9: ("q8_1", 32, 40),
    10: ("q2_k", 256, 84),
    11: ("q3_k", 256, 110),
    12: ("q4_k", 256, 144),
    13: ("q5_k", 256, 176),
    14: ("q6_k", 256, 210),
    15: ("q8_k", 256, 292),
    16: ("iq2_xxs", 256, 66),
    17: ("iq2_xs", 256, 74),
    18: ("iq3_xxs", 256, 98),
    19: ("iq1_s", 256, 50),
    20: ("iq4_nl", 32, 18),
    21: ("iq3_s", 256, 110),
    22: ("iq2_s", 256, 82),
    23: ("iq4_xs", 256, 136),
    24: ("i8", 1, 1),
    25: ("i16", 1, 2),
    26: ("i32", 1, 4),
    27: ("i64", 1, 8),
    28: ("f64", 1, 8),
    29: ("iq1_m", 256, 56),
    30: ("bf16", 1, 2),
    34: ("tq1_0", 256, 54),
    35: ("tq2_0", 256, 66),
    39: ("mxfp4", 32, 17),
    40: ("nvfp4", 64, 36),
    41: ("q1_0", 128, 18),
}

# Metadata value types (docs/gguf.md): the fixed-size ones by id, with their sizes.
FIXED_VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
UINT32, STRING, ARRAY = 4, 8, 9
# The fewest bytes one value of a type takes: a string is at least its length, an array at
# least its element type and count.
MIN_VALUE_SIZES = {**FIXED_VALUE_SIZES, STRING: 8, ARRAY: 12}

HEADER = struct.Struct("<4sIQQ")  # magic, version, tensor count, metadata count
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
MIN_KEY_VALUE = 8 + 4 + 1  # key length, value type, a one-byte value
MIN_TENSOR_INFO = 8 + 4 + 4 + 8  # name length, dimension count, type, offset
MAX_KEY_BYTES = 65_535  # the spec's limit on a metadata key
ALIGNMENT_KEY = b"general.alignment"
DEFAULT_ALIGNMENT = 32
ENTRIES_PER_TICK = 4_096  # keys, tensors or inner arrays walked between two checks of the clock
STRINGS_PER_TICK = 65_536


def _damaged(path: Path, detail: str) -> InputError:
    return InputError(f"{path}: damaged GGUF file: {detail}")


class _Cursor:
    """A read position in the mapped start of the file. Each read compares the bytes it needs
    with the bytes left, once, before reading. Only the first ``header_bytes`` of the file are
    mapped: a 400 GB model costs no more address space than its header. Numbers are unpacked
    from a memoryview of the map (twice as fast as from the map), bytes sliced from the map."""

    __slots__ = ("data", "end", "mapped", "path", "pos", "size")

    def __init__(self, mapped: mmap.mmap, data: memoryview, path: Path, size: int) -> None:
        self.mapped = mapped
        self.data = data
        self.end = len(data)  # of the mapped window
        self.size = size  # of the file
        self.path = path
        self.pos = 0

    def short(self, size: int, what: str) -> InputError:
        """The refusal of a read of ``size`` bytes past the window: the file is cut short, or
        its header is longer than the window (the ``header_bytes`` limit)."""
        if size <= self.size - self.pos:
            return self.past_window()
        return InputError(
            f"{self.path}: truncated GGUF file: {what} at byte {self.pos:,} needs {size:,} bytes, "
            f"{self.size - self.pos:,} remain"
        )

    def past_window(self) -> InputError:
        return InputError(
            f"{self.path}: the GGUF header runs past its first {self.end:,} bytes "
            "(raise with --limit header_bytes=N)"
        )

    def skip(self, size: int, what: str) -> None:
        if size > self.end - self.pos:
            raise self.short(size, what)
        self.pos += size

    def take(self, size: int, what: str) -> bytes:
        pos = self.pos
        if size > self.end - pos:
            raise self.short(size, what)
        self.pos = pos + size
        return self.mapped[pos : pos + size]

    def key(self) -> tuple[bytes, int]:
        """A metadata key and its value type: the hot path of a file of many keys, in one call."""
        pos, data = self.pos, self.data
        if self.end - pos < 8:
            raise self.short(8, "a metadata key")
        (length,) = U64.unpack_from(data, pos)
        if length > MAX_KEY_BYTES:
            raise _damaged(self.path, f"a metadata key of {length:,} bytes at byte {pos:,}")
        if self.end - pos - 8 < length + 4:
            self.pos = pos + 8
            raise self.short(length + 4, "a metadata key and its value type")
        self.pos = pos + 12 + length
        return self.mapped[pos + 8 : pos + 8 + length], U32.unpack_from(data, pos + 8 + length)[0]

    def key_at(self, record: int) -> str:
        """The metadata key whose record starts at ``record``, made visible, quoted and cut
        short: for error messages, which name keys the walk has already checked."""
        (length,) = U64.unpack_from(self.data, record)
        raw = self.mapped[record + 8 : record + 8 + min(length, 200)]
        return f"{visible(raw.decode('utf-8', 'replace'))!r:.80}"

    def u32(self, what: str) -> int:
        pos = self.pos
        if self.end - pos < 4:
            raise self.short(4, what)
        self.pos = pos + 4
        return U32.unpack_from(self.data, pos)[0]

    def u64(self, what: str) -> int:
        pos = self.pos
        if self.end - pos < 8:
            raise self.short(8, what)
        self.pos = pos + 8
        return U64.unpack_from(self.data, pos)[0]

    def u64s(self, count: int, what: str) -> tuple[int, ...]:
        pos = self.pos
        if self.end - pos < 8 * count:
            raise self.short(8 * count, what)
        self.pos = pos + 8 * count
        return struct.unpack_from(f"<{count}Q", self.data, pos)

    def skip_strings(self, count: int, budget: ReadBudget) -> None:
        """Step over ``count`` strings, checking the wall clock between runs of them."""
        for first in range(0, count, STRINGS_PER_TICK):
            budget.tick()
            self._skip_string_run(min(STRINGS_PER_TICK, count - first))

    def _skip_string_run(self, count: int) -> None:
        """The hot loop of a vocabulary: each string's length read, its bytes stepped over."""
        data, pos, end, unpack = self.data, self.pos, self.end, U64.unpack_from
        try:
            for _ in range(count):
                after = pos + 8 + unpack(data, pos)[0]  # struct.error if fewer than 8 bytes remain
                if after > end:
                    break
                pos = after
            else:
                self.pos = pos
                return
        except struct.error:
            pass
        self.pos = pos
        self.skip(self.u64("a string"), "a string")  # raises, saying what is missing


def _header(cursor: _Cursor, budget: ReadBudget) -> tuple[int, int]:
    """The tensor and metadata counts, refused at once if the rest of the file is too small to
    hold them. The file holds at least the fixed header."""
    path = cursor.path
    magic, version, tensors, entries = HEADER.unpack_from(cursor.data, 0)
    cursor.pos = HEADER.size
    if magic != b"GGUF":
        raise InputError(f"{path}: not a GGUF file (magic {magic!r})")
    if version and not version & 0xFFFF:  # version 3 written big-endian reads 0x03000000
        raise InputError(
            f"{path}: a big-endian GGUF file (version field {version:#010x}); only little-endian files can be read"
        )
    if version == 1:
        raise InputError(
            f"{path}: GGUF version 1 is not supported (it used 32-bit counts; versions 2 and 3 are)"
        )
    if version not in (2, 3):
        raise InputError(f"{path}: GGUF version {version} is not supported (2 and 3 are)")
    needed, left = tensors * MIN_TENSOR_INFO + entries * MIN_KEY_VALUE, cursor.size - cursor.pos
    if needed > left:
        raise InputError(
            f"{path}: absurd GGUF counts ({tensors:,} tensors and {entries:,} metadata entries need at least "
            f"{needed:,} bytes, {left:,} remain; truncated or damaged)"
        )
    if needed > cursor.end - cursor.pos:
        raise cursor.past_window()
    budget.charge("tensors", tensors, str(path))
    budget.charge("metadata_entries", entries, str(path))
    return tensors, entries


def _metadata(cursor: _Cursor, entries: int, budget: ReadBudget) -> int:
    """Walk the key/value pairs, each key once (llama.cpp refuses a repeated key too); the data
    alignment they set (32 unless ``general.alignment``)."""
    keys: set[bytes] = set()
    alignment = DEFAULT_ALIGNMENT
    for index in range(entries):
        if not index % ENTRIES_PER_TICK:
            budget.tick()
        record = cursor.pos
        key, value_type = cursor.key()
        if key in keys:
            raise _damaged(cursor.path, f"metadata key {cursor.key_at(record)} appears twice")
        keys.add(key)
        size = FIXED_VALUE_SIZES.get(value_type)
        if key == ALIGNMENT_KEY:
            alignment = _alignment(cursor, value_type)
        elif size is not None:
            cursor.skip(size, "a metadata value")
        else:
            _skip_value(cursor, value_type, record, budget)
    return alignment


def _alignment(cursor: _Cursor, value_type: int) -> int:
    if value_type != UINT32:
        raise _damaged(cursor.path, f"general.alignment has value type {value_type}, not uint32")
    alignment = cursor.u32("general.alignment")
    if alignment == 0 or alignment & (alignment - 1):
        raise _damaged(cursor.path, f"general.alignment {alignment:,} is not a power of two")
    return alignment


def _skip_value(cursor: _Cursor, value_type: int, record: int, budget: ReadBudget) -> None:
    """Step over the string or array value of the key at ``record`` without materialising it."""
    if value_type == STRING:
        cursor.skip(cursor.u64("a string"), "a string")
    elif value_type == ARRAY:
        _skip_array(cursor, record, budget)
    else:
        raise _damaged(cursor.path, f"metadata {cursor.key_at(record)} has unknown value type {value_type}")


def _skip_array(cursor: _Cursor, record: int, budget: ReadBudget) -> None:
    """Step over an array value. Arrays of arrays are walked with an explicit stack of the
    elements each open one has left, so nesting costs its ``depth`` budget, never Python's
    recursion limit; an inner array of anything else is skipped where it stands."""
    element_type, count = _array_header(cursor, record, budget)
    if element_type != ARRAY:
        _skip_elements(cursor, element_type, count, budget)
        return
    stack, walked = [count], 0
    while stack:
        if not stack[-1]:
            stack.pop()
            continue
        stack[-1] -= 1
        walked += 1
        if not walked % ENTRIES_PER_TICK:
            budget.tick()
        element_type, count = _array_header(cursor, record, budget)
        if element_type == ARRAY:
            if len(stack) >= budget.limits.depth:
                key = cursor.key_at(record)
                raise BudgetExceeded("depth", budget.limits.depth, f"{cursor.path}: metadata {key}")
            stack.append(count)
        else:
            _skip_elements(cursor, element_type, count, budget)


def _array_header(cursor: _Cursor, record: int, budget: ReadBudget) -> tuple[int, int]:
    """An array's element type and count, the count checked against the bytes left, and charged
    to the budget when the elements are walked one by one (strings, arrays)."""
    element_type = cursor.u32("an array's element type")
    count = cursor.u64("an array's length")
    minimum = MIN_VALUE_SIZES.get(element_type)
    if minimum is None:
        key = cursor.key_at(record)
        raise _damaged(cursor.path, f"metadata {key} has arrays of unknown value type {element_type}")
    if count * minimum > cursor.size - cursor.pos:
        raise InputError(
            f"{cursor.path}: absurd GGUF array length: metadata {cursor.key_at(record)} declares {count:,} "
            f"elements of at least {minimum} bytes at byte {cursor.pos:,}, {cursor.size - cursor.pos:,} remain"
        )
    if count * minimum > cursor.end - cursor.pos:
        raise cursor.past_window()
    if element_type not in FIXED_VALUE_SIZES:
        budget.charge("metadata_entries", count, str(cursor.path))
    return element_type, count


def _skip_elements(cursor: _Cursor, element_type: int, count: int, budget: ReadBudget) -> None:
    if element_type == STRING:
        cursor.skip_strings(count, budget)
    else:  # fixed size: their bytes were checked against the file with the count
        cursor.pos += count * FIXED_VALUE_SIZES[element_type]


def _tensor_info(cursor: _Cursor, alignment: int, budget: ReadBudget) -> tuple[FlatTensor, int]:
    """One tensor info record, validated (name, dimensions, GGML type, aligned offset): the
    tensor, and its offset from the start of the data section."""
    path = cursor.path
    length = cursor.u64("a tensor name")
    where = f"{path}: a tensor name"
    budget.check("name_chars", length, where)
    name = name_of(cursor.take(length, "a tensor name"), budget, where)
    label = f"{path}: tensor {name!r:.80}"
    n_dims = cursor.u32("a tensor's dimension count")
    budget.check("dims", n_dims, label)
    dims = cursor.u64s(n_dims, "a tensor's dimensions")  # the fastest axis first
    if 0 in dims:
        raise InputError(f"{label}: damaged GGUF file: a dimension of 0 in {list(dims)}")
    shape = shape_of(dims[::-1], budget, label)
    type_id = cursor.u32("a tensor's type")
    if type_id not in GGML_TYPES:
        raise InputError(f"{label}: damaged GGUF file: unknown GGML type {type_id}")
    ggml_type, block, block_bytes = GGML_TYPES[type_id]
    row = dims[0] if dims else 1
    if row % block:
        raise InputError(
            f"{label}: damaged GGUF file: rows of {row:,} elements, not a multiple of {ggml_type}'s block of {block}"
        )
    offset = cursor.u64("a tensor's offset")
    if offset % alignment:
        raise InputError(
            f"{label}: damaged GGUF file: offset {offset:,} is not a multiple of the alignment {alignment}"
        )
    nbytes = math.prod(dims) // block * block_bytes
    dtype = PLAIN_TYPES.get(ggml_type, ggml_type)
    return FlatTensor(name, shape, dtype, (path.name, name), nbytes=nbytes), offset


def _tensor_infos(
    cursor: _Cursor, count: int, alignment: int, budget: ReadBudget
) -> list[tuple[FlatTensor, int]]:
    infos, names = [], set()
    for index in range(count):
        if not index % ENTRIES_PER_TICK:
            budget.tick()
        tensor, offset = _tensor_info(cursor, alignment, budget)
        if tensor.name in names:
            raise _damaged(cursor.path, f"duplicate tensor name {tensor.name!r:.80}")
        names.add(tensor.name)
        infos.append((tensor, offset))
    return infos


def _check_data(cursor: _Cursor, infos: list[tuple[FlatTensor, int]], alignment: int) -> None:
    """Every tensor's bytes lie inside the file, after the aligned end of the tensor infos, and
    no two tensors share bytes: 50,000 names for the same 32 bytes are not 50,000 tensors."""
    start = cursor.pos + -cursor.pos % alignment
    previous, previous_end = None, start
    for tensor, offset in sorted(infos, key=lambda info: info[1]):
        begin, end = start + offset, start + offset + tensor.nbytes
        if begin < previous_end:
            raise _damaged(cursor.path, f"tensors {previous.name!r:.60} and {tensor.name!r:.60} overlap")
        if end > cursor.size:
            raise InputError(
                f"{cursor.path}: truncated GGUF file: tensor {tensor.name!r:.80} ends at byte {end:,}, "
                f"the file has {cursor.size:,}"
            )
        previous, previous_end = tensor, end


def _read_part(path: Path, budget: ReadBudget) -> list[FlatTensor]:
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < HEADER.size:
            raise InputError(f"{path}: truncated GGUF header (less than {HEADER.size} bytes)")
        window = min(size, max(budget.limits.header_bytes, HEADER.size))
        with (
            mmap.mmap(handle.fileno(), window, access=mmap.ACCESS_READ) as mapped,
            memoryview(mapped) as data,
        ):
            cursor = _Cursor(mapped, data, path, size)
            tensors, entries = _header(cursor, budget)
            alignment = _metadata(cursor, entries, budget)
            infos = _tensor_infos(cursor, tensors, alignment, budget)
            _check_data(cursor, infos, alignment)
    return [tensor for tensor, _ in infos]


def _parts(path: Path, budget: ReadBudget) -> list[Path]:
    """The parts of a split file, all present (a part that is not a file is refused on reading)."""
    match = SPLIT.match(path.name)
    if not match:
        return [path]
    total = int(match["total"])
    if total < 1:
        raise InputError(f"{path}: split into {total} parts")
    budget.check("shards", total, str(path))
    parts = []
    for number in range(1, total + 1):  # up to the first missing part: "of 99999" costs two
        part = path.with_name(f"{match['stem']}-{number:05d}-of-{total:05d}.gguf")
        if not part.exists():
            raise InputError(f"{path}: split file part {part.name} is missing")
        parts.append(part)
    return parts


def read_gguf(path: Path, budget: ReadBudget) -> Report:
    entries = [entry for part in _parts(path, budget) for entry in _read_part(part, budget)]
    match = SPLIT.match(path.name)
    name = match["stem"] if match else path.name
    return flat_report(entries, Source(kind=Kind.GGUF, path=str(path)), "GGUF", name)
