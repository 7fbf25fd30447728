"""TensorFlow tensor bundles (``variables.index`` + ``variables.data-NNNNN-of-NNNNN``): the index
read, every entry checked against the data files, the tensor data never read.

A bundle is how TensorFlow 2 checkpoints and SavedModels store variables. The index is a
LevelDB-format table (TensorFlow's ``core/lib/io/table``): blocks of key/value entries, each key
sharing a prefix with the one before it, a 5-byte trailer after every block (compression type,
CRC), an index block of handles to the data blocks, and a 48-byte footer with the metaindex
and index handles and the magic number. The value under the empty key is a
``BundleHeaderProto`` (number of data shards, endianness); every other value is a
``BundleEntryProto``: dtype, shape, shard, offset and size of one tensor in the data files
(tensorflow/core/protobuf/tensor_bundle.proto).

Hand-written because the only readers are TensorFlow's own (``tf.train.load_checkpoint``),
which need TensorFlow imported and trust the file. Here the table is walked over a memory map:
every block handle must lie inside the file, in order and without overlap (so no block is
walked twice), every entry inside its block, every key below the name limit and strictly above
the one before it. Each entry is checked at this boundary: a known dtype's size must be its
shape's elements times its width, its shard must be one of the bundle's, and its bytes must lie
inside that shard's regular file. TensorFlow writes bundles uncompressed; a snappy-compressed
block is refused cleanly rather than decoded. CRCs are not verified: they guard against disk
corruption, not against a crafted file, which can carry matching ones.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paramscope.core.printable import visible
from paramscope.errors import InputError
from paramscope.sources.boundary import open_regular, require_regular, shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.protobuf import FIXED32, Field, ProtobufError, fields, map_file, read_varint

FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the 8-byte magic
TABLE_MAGIC = 0xDB4775248B80FB57
BLOCK_TRAILER = 5  # compression type (1 byte) + masked CRC32C (4 bytes)
NO_COMPRESSION, SNAPPY = 0, 1
HEADER_KEY = ""
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
DT_STRING = 7

# tensorflow/core/framework/types.proto DataType -> (our name, bytes per element as stored in a
# bundle; None for variable-size types). TensorFlow stores 4- and 2-bit types one per byte.
TF_DTYPES: dict[int, tuple[str, int | None]] = {
    1: ("float32", 4),
    2: ("float64", 8),
    3: ("int32", 4),
    4: ("uint8", 1),
    5: ("int16", 2),
    6: ("int8", 1),
    7: ("string", None),
    8: ("complex64", 8),
    9: ("int64", 8),
    10: ("bool", 1),
    11: ("qint8", 1),
    12: ("quint8", 1),
    13: ("qint32", 4),
    14: ("bfloat16", 2),
    15: ("qint16", 2),
    16: ("quint16", 2),
    17: ("uint16", 2),
    18: ("complex128", 16),
    19: ("float16", 2),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", 4),
    23: ("uint64", 8),
    24: ("float8_e5m2", 1),
    25: ("float8_e4m3fn", 1),
    26: ("float8_e4m3fnuz", 1),
    27: ("float8_e4m3b11fnuz", 1),
    28: ("float8_e5m2fnuz", 1),
    29: ("int4", 1),
    30: ("uint4", 1),
    31: ("int2", 1),
    32: ("uint2", 1),
    33: ("float4_e2m1fn", 1),
}


class BundleError(InputError):
    """A tensor bundle index that is not a well-formed table of bundle entries."""


def dtype_name(dtype: int) -> str:
    return TF_DTYPES.get(dtype, (f"dtype_{dtype}", None))[0]


@dataclass(slots=True)
class BundleEntry:
    """Where one tensor lies in the data shards, as the index declares it (validated)."""

    key: str
    dtype: int  # tensorflow DataType
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int  # bytes in the shard
    crc32c: int

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.dtype)


@dataclass(slots=True)
class Bundle:
    prefix: Path  # the bundle's path without the .index / .data-… suffix
    num_shards: int
    entries: dict[str, BundleEntry]  # in key order, the header excluded

    def shard_path(self, shard_id: int) -> Path:
        return self.prefix.with_name(f"{self.prefix.name}.data-{shard_id:05d}-of-{self.num_shards:05d}")


# The table: footer, blocks, entries.


def _block_handle(data: memoryview, position: int) -> tuple[int, int, int]:
    """(offset, size) of the block a handle points to, and the position after the handle."""
    offset, position = read_varint(data, position)
    size, position = read_varint(data, position)
    return offset, size, position


def _block(data: memoryview, offset: int, size: int, end: int, what: str) -> memoryview:
    """The contents of the block at ``offset``, which with its trailer must end by ``end``."""
    if offset + size + BLOCK_TRAILER > end:
        raise BundleError(f"{what} at byte {offset:,} runs past the end of the table")
    compression = data[offset + size]
    if compression == SNAPPY:
        raise BundleError(f"{what} is snappy-compressed; TensorFlow writes bundles uncompressed, not read")
    if compression != NO_COMPRESSION:
        raise BundleError(f"{what} has unknown compression type {compression}")
    return data[offset : offset + size]


def _block_entries(block: memoryview, budget: ReadBudget, what: str) -> Iterator[tuple[bytes, memoryview]]:
    """The (key, value) entries of one block, keys rebuilt from their shared prefixes.

    A key is refused before it is built if it would exceed the name limit, so that entries
    sharing a long prefix cannot make rebuilding them quadratic.
    """
    if len(block) < 4:
        raise BundleError(f"{what} of {len(block)} bytes has no restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    if restarts == 0 or 4 * (restarts + 1) > len(block):
        raise BundleError(f"{what} declares {restarts:,} restart points in {len(block):,} bytes")
    end = len(block) - 4 * (restarts + 1)
    key, position = b"", 0
    while position < end:
        shared, position = read_varint(block, position)
        unshared, position = read_varint(block, position)
        value_size, position = read_varint(block, position)
        if shared > len(key):
            raise BundleError(f"an entry of {what} shares {shared:,} bytes of a {len(key):,}-byte key")
        budget.check("name_chars", shared + unshared, f"a key in {what}")
        if unshared + value_size > end - position:
            raise BundleError(f"an entry of {what} runs past the end of its block")
        key = key[:shared] + bytes(block[position : position + unshared])
        position += unshared
        yield key, block[position : position + value_size]
        position += value_size


def table_entries(data: memoryview, budget: ReadBudget) -> Iterator[tuple[bytes, memoryview]]:
    """Every (key, value) of a LevelDB-format table, in key order.

    Data blocks must follow each other without overlap, so a crafted index cannot make one
    block be walked twice; keys must rise strictly, as the format's lookups assume.
    """
    if len(data) < FOOTER_SIZE:
        raise BundleError(f"a table of {len(data):,} bytes, shorter than its {FOOTER_SIZE}-byte footer")
    footer = len(data) - FOOTER_SIZE
    (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
    if magic != TABLE_MAGIC:
        raise BundleError("not a table: no table magic number at its end")
    meta_offset, meta_size, position = _block_handle(data, footer)
    index_offset, index_size, _ = _block_handle(data, position)
    _block(data, meta_offset, meta_size, footer, "the metaindex block")
    index = _block(data, index_offset, index_size, footer, "the index block")
    previous_key, blocks_end = None, 0
    for _, handle in _block_entries(index, budget, "the index block"):
        offset, size, _ = _block_handle(handle, 0)
        if offset < blocks_end:
            raise BundleError(f"data blocks overlap or are out of order at byte {offset:,}")
        blocks_end = offset + size + BLOCK_TRAILER
        budget.tick()
        for key, value in _block_entries(
            _block(data, offset, size, footer, "a data block"), budget, "a data block"
        ):
            if previous_key is not None and key <= previous_key:
                raise BundleError(f"key {_shown(key)} is not above the key before it")
            previous_key = key
            yield key, value


def _shown(key: bytes) -> str:
    return f"{visible(key.decode('utf-8', 'replace'))!r:.80}"


# The values: BundleHeaderProto, BundleEntryProto, TensorShapeProto.


def decode_shape(data: memoryview, budget: ReadBudget, depth: int, what: str) -> tuple[int, ...] | None:
    """A ``TensorShapeProto``'s dimensions as stored (-1 for an unknown one); None when its
    rank is unknown. At most ``dims`` dimensions are decoded."""
    dims: list[int] = []
    unknown_rank = False
    for field in fields(data, budget, depth, "TensorShapeProto"):
        if field.number == 2:
            budget.check("dims", len(dims) + 1, what)
            dims.append(_dimension(field.chunk(), budget, depth + 1))
        elif field.number == 3:
            unknown_rank = bool(field.uint())
    return None if unknown_rank else tuple(dims)


def _dimension(data: memoryview, budget: ReadBudget, depth: int) -> int:
    size = 0
    for field in fields(data, budget, depth, "TensorShapeProto.Dim"):
        if field.number == 1:
            size = field.int64()
    return size


def _header(value: memoryview, budget: ReadBudget) -> int:
    """The number of data shards a ``BundleHeaderProto`` declares (at least one)."""
    num_shards = 0
    for field in fields(value, budget, 1, "BundleHeaderProto"):
        if field.number == 1:
            num_shards = field.int64()
    if num_shards < 1:
        raise BundleError(f"the bundle header declares {num_shards:,} data shards")
    budget.check("shards", num_shards, "the bundle header")
    return num_shards


def _fixed32(field: Field) -> int:
    if field.wire_type != FIXED32:
        raise ProtobufError(f"field {field.number} of {field.message} is not 32-bit")
    return field.value


def _entry(key: str, value: memoryview, num_shards: int, budget: ReadBudget) -> BundleEntry:
    label = f"entry {visible(key)!r:.80}"
    dtype, shape, shard_id, offset, size, crc32c = 0, (), 0, 0, 0, 0
    for field in fields(value, budget, 1, "BundleEntryProto"):
        number = field.number
        if number == 1:
            dtype = field.uint()
        elif number == 2:
            shape = decode_shape(field.chunk(), budget, 2, label)
        elif number == 3:
            shard_id = field.int64()
        elif number == 4:
            offset = field.int64()
        elif number == 5:
            size = field.int64()
        elif number == 6:
            crc32c = _fixed32(field)
        elif number == 7:
            raise InputError(f"{label} is a partitioned variable (saved in slices): not read")
    if shape is None:
        raise BundleError(f"{label}: a stored tensor of unknown rank")
    entry = BundleEntry(key, dtype, shape_of(list(shape), budget, label), shard_id, offset, size, crc32c)
    _check_entry(entry, num_shards, label)
    return entry


def _check_entry(entry: BundleEntry, num_shards: int, label: str) -> None:
    """Its shard is one of the bundle's, its span non-negative, and its size what its dtype and
    shape need: exactly, for fixed-size dtypes; for strings at least a length byte per element
    and a 4-byte checksum; for the other variable-size types at least a bit per element."""
    if not 0 <= entry.shard_id < num_shards:
        raise BundleError(f"{label} is in shard {entry.shard_id:,}; the bundle has {num_shards:,}")
    if entry.offset < 0 or entry.size < 0:
        raise BundleError(f"{label}: a negative offset or size ({entry.offset:,}, {entry.size:,})")
    elements = math.prod(entry.shape)
    width = TF_DTYPES.get(entry.dtype, ("", None))[1]
    if width is not None:
        needed = elements * width
        if entry.size != needed:
            raise BundleError(
                f"{label}: {entry.dtype_name} {list(entry.shape)!s:.60} needs {needed:,} bytes, "
                f"the index says {entry.size:,}"
            )
        return
    needed = elements + 4 if entry.dtype == DT_STRING and elements else (elements + 7) // 8
    if entry.size < needed:
        raise BundleError(
            f"{label}: {entry.dtype_name} {list(entry.shape)!s:.60} cannot fit in {entry.size:,} bytes"
        )


# The bundle.


def read_bundle(prefix: Path, budget: ReadBudget) -> Bundle:
    """The entries of the bundle at ``prefix`` (``…/variables/variables``), each checked against
    the data shard that holds it."""
    index = prefix.with_name(prefix.name + ".index")
    try:
        return _read_index(prefix, map_file(index), budget)
    except ProtobufError as exc:
        raise InputError(f"{index.name}: not a readable tensor bundle index ({exc})") from None
    except BundleError as exc:
        raise InputError(f"{index.name}: {exc}") from None


def _read_index(prefix: Path, data: memoryview, budget: ReadBudget) -> Bundle:
    entries_iter = table_entries(data, budget)
    first = next(entries_iter, None)
    if first is None or first[0] != HEADER_KEY.encode():
        raise BundleError("no bundle header (the table's first key is not empty)")
    bundle = Bundle(prefix, _header(first[1], budget), {})
    for raw_key, value in entries_iter:
        budget.charge("tensors", 1, "the tensor bundle")
        # A key that shares its prefix costs the file a few bytes however long it is.
        budget.charge("tree_chars", len(raw_key), "the keys of the tensor bundle")
        key = raw_key.decode("utf-8", "replace")
        if key in bundle.entries:  # distinct invalid UTF-8 keys that read the same
            raise BundleError(f"key {visible(key)!r:.80} appears twice")
        bundle.entries[key] = _entry(key, value, bundle.num_shards, budget)
    _check_shards(bundle, budget)
    return bundle


def _check_shards(bundle: Bundle, budget: ReadBudget) -> None:
    """Every shard an entry uses is a regular file holding the entry's bytes."""
    ends: dict[int, int] = {}
    for entry in bundle.entries.values():
        ends[entry.shard_id] = max(ends.get(entry.shard_id, 0), entry.offset + entry.size)
    for shard_id, end in sorted(ends.items()):
        budget.tick()
        shard = bundle.shard_path(shard_id)
        try:
            size = require_regular(shard)
        except InputError as exc:
            reason = str(exc).removeprefix(f"{shard}: ")
            raise InputError(f"data shard {shard.name}: {reason}") from None
        if end > size:
            raise InputError(f"data shard {shard.name} holds {size:,} bytes; its entries need {end:,}")


def read_string_scalar(bundle: Bundle, key: str, budget: ReadBudget) -> memoryview:
    """The bytes of a scalar string tensor (the object graph), read from its shard: a varint
    length, a 4-byte checksum of the lengths, then the string."""
    entry = bundle.entries[key]
    label = f"entry {visible(key)!r:.80}"
    if entry.dtype != DT_STRING or entry.shape != ():
        raise InputError(f"{label} is {entry.dtype_name} {list(entry.shape)!s:.40}, not a string")
    budget.check("header_bytes", entry.size, label)
    with open_regular(bundle.shard_path(entry.shard_id)) as handle:
        handle.seek(entry.offset)
        data = memoryview(handle.read(entry.size))
    try:
        length, position = read_varint(data, 0)
    except ProtobufError:
        raise InputError(f"{label}: a string without its length") from None
    if len(data) != entry.size or position + 4 + length != entry.size:
        raise InputError(f"{label}: a string of {length:,} bytes in a {entry.size:,}-byte entry")
    return data[position + 4 :]
