"""A bounds-checked reader of FlatBuffers: tables, their vtables, vectors and strings.

Hand-written because the ``flatbuffers`` runtime, and the TFLite schema classes generated on
top of it, trust the buffer: an offset is followed wherever it points, a vector's length is
believed, and a bad one surfaces as whatever ``struct`` or indexing raises, or as bytes read
from the wrong place; those classes also ship inside TensorFlow, which a file reader must not
import. flatc's C++ ``Verifier`` checks a buffer before use; this module does the same checks
as it reads, on a ``memoryview`` (a memory-mapped file):

- a table is a signed offset to its vtable, which must lie inside the buffer, hold at least its
  own 4-byte header and be made of 2-byte slots; the table's inline size must fit too;
- a field must lie inside its table's inline size, after the vtable offset;
- an offset (to a table, vector or string) must land inside the buffer with room for the
  4-byte length or vtable offset it points to;
- a vector's length times its element size must fit in the bytes after it, checked before any
  element is read; a string must also end with the NUL the format requires.

Nothing here loops over the buffer on its own: the caller walks a fixed schema and indexes the
vectors it needs, so an offset that points back into an enclosing table can make the caller
read that table again, never walk forever; the caller charges what it walks to its budget.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from paramscope.errors import InputError

SIZES = {"b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "f": 4, "q": 8, "Q": 8, "d": 8}


class FlatbufferError(InputError):
    """Bytes that are not a well-formed FlatBuffer of the expected schema."""


def _u32(data: memoryview, position: int, what: str) -> int:
    if not 0 <= position <= len(data) - 4:
        raise FlatbufferError(f"{what} at byte {position:,} lies outside the {len(data):,}-byte buffer")
    return struct.unpack_from("<I", data, position)[0]


@dataclass(frozen=True, slots=True)
class Vector:
    """A vector's elements: ``length`` of ``size`` bytes from ``start``, inside the buffer."""

    data: memoryview
    start: int
    length: int
    size: int
    name: str

    def scalars(self, kind: str) -> tuple:
        """Every element as a ``struct`` scalar (``"i"``, ``"f"``…). The caller bounds the length."""
        return struct.unpack_from(f"<{self.length}{kind}", self.data, self.start)

    def table(self, index: int, name: str) -> Table:
        """Element ``index`` of a vector of tables: an offset from the element's own position."""
        if not 0 <= index < self.length:
            raise FlatbufferError(f"index {index:,} of {self.name}, which has {self.length:,} elements")
        position = self.start + 4 * index
        return table_at(self.data, position + _u32(self.data, position, self.name), name)


@dataclass(frozen=True, slots=True)
class Table:
    """A table at ``position`` whose vtable has been checked to lie inside the buffer."""

    data: memoryview
    position: int
    vtable: int
    slots: int  # fields the vtable describes
    inline_size: int
    name: str

    def _field(self, field_id: int, size: int) -> int | None:
        """The position of field ``field_id``'s inline bytes, or None when it is absent."""
        if field_id >= self.slots:
            return None
        (offset,) = struct.unpack_from("<H", self.data, self.vtable + 4 + 2 * field_id)
        if offset == 0:
            return None
        if offset < 4 or offset + size > self.inline_size:
            raise FlatbufferError(
                f"field {field_id} of a {self.name} lies outside its {self.inline_size}-byte table"
            )
        return self.position + offset

    def scalar(self, field_id: int, kind: str, default: float) -> float:
        position = self._field(field_id, SIZES[kind])
        return default if position is None else struct.unpack_from(f"<{kind}", self.data, position)[0]

    def _target(self, field_id: int) -> int | None:
        """Where the offset in field ``field_id`` points, or None when the field is absent."""
        position = self._field(field_id, 4)
        if position is None:
            return None
        return position + _u32(self.data, position, f"field {field_id} of a {self.name}")

    def table(self, field_id: int, name: str) -> Table | None:
        target = self._target(field_id)
        return None if target is None else table_at(self.data, target, name)

    def vector(self, field_id: int, kind: str, name: str) -> Vector | None:
        """A vector of ``struct`` scalars (``kind``) or, with ``kind="I"``, of table offsets."""
        target = self._target(field_id)
        if target is None:
            return None
        length, size = _u32(self.data, target, name), SIZES[kind]
        start = target + 4
        if length > (len(self.data) - start) // size:
            raise FlatbufferError(
                f"{name} of {length:,} elements runs past the end of the {len(self.data):,}-byte buffer"
            )
        return Vector(self.data, start, length, size, name)

    def string(self, field_id: int, limit: int, what: str) -> bytes | None:
        """A string's bytes, refused past ``limit`` bytes before they are copied."""
        vector = self.vector(field_id, "B", what)
        if vector is None:
            return None
        if vector.length > limit:
            raise FlatbufferError(f"{what} of {vector.length:,} bytes, above the limit of {limit:,}")
        end = vector.start + vector.length
        if end >= len(self.data) or self.data[end] != 0:
            raise FlatbufferError(f"{what} does not end with a NUL byte")
        return bytes(self.data[vector.start : end])


def table_at(data: memoryview, position: int, name: str) -> Table:
    """The table at ``position``, once its vtable and inline size are checked to fit."""
    if not 0 <= position <= len(data) - 4:
        raise FlatbufferError(f"a {name} at byte {position:,} lies outside the {len(data):,}-byte buffer")
    (vtable_offset,) = struct.unpack_from("<i", data, position)
    vtable = position - vtable_offset
    if not 0 <= vtable <= len(data) - 4:
        raise FlatbufferError(f"the vtable of a {name} at byte {vtable:,} lies outside the buffer")
    vtable_size, inline_size = struct.unpack_from("<HH", data, vtable)
    if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > len(data):
        raise FlatbufferError(f"the vtable of a {name} declares {vtable_size:,} bytes")
    if inline_size < 4 or position + inline_size > len(data):
        raise FlatbufferError(f"a {name} of {inline_size:,} bytes at byte {position:,} runs past the end")
    return Table(data, position, vtable, (vtable_size - 4) // 2, inline_size, name)


def root_table(data: memoryview, identifier: bytes, name: str) -> Table:
    """The root table of a buffer that carries ``identifier`` at bytes 4-8."""
    if len(data) < 8 or bytes(data[4:8]) != identifier:
        raise FlatbufferError(f"no {identifier.decode()} file identifier at bytes 4-8")
    return table_at(data, _u32(data, 0, "the root offset"), name)
