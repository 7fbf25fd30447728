"""A protobuf wire-format walker over a memory-mapped file: message headers, never their data.

Hand-written because the protobuf runtime (and ``onnx.load`` on top of it) decodes a whole
message at once: every ``bytes`` field is copied into memory — in an ONNX model, the
``raw_data`` of every tensor, so a 2 GB model costs 2 GB before one shape can be looked at —
and nothing bounds what hostile bytes make it allocate or how deep they make it recurse. Here
a message is a ``memoryview`` of the mapped file and length-delimited fields come back as
zero-copy slices that the caller decodes or skips, so tensor data is never copied, nor even
paged in.

What the wire format allows and hostile bytes abuse is checked as it is read: a varint has at
most 10 bytes and 64 bits (int64 fields are two's complement), a field number is in
1 … 2**29 - 1, every length fits the bytes that remain, groups (wire types 3 and 4, deprecated
and unused by the formats we read) are refused, nesting is bounded by the ``depth`` limit, and
long walks check the clock. A walk is linear: a nested message's bytes are skipped by its
parent and read once, by the caller that decodes it. The walker keeps nothing beyond the field
it yields; callers charge the budget for what they keep.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from paramscope.errors import InputError
from paramscope.sources.boundary import open_regular
from paramscope.sources.budget import ReadBudget

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
FIXED_SIZES = {FIXED64: 8, FIXED32: 4}
WIRE_NAMES = {VARINT: "a varint", FIXED64: "64-bit", LENGTH: "length-delimited", FIXED32: "32-bit"}
MAX_FIELD_NUMBER = 2**29 - 1
TWO_TO_64 = 2**64
TICK_EVERY = 1 << 14  # fields walked between two looks at the clock
COUNT_CHUNK = 1 << 20  # bytes of a packed field copied at once to count its values
_CONTINUATION_BYTES = bytes(range(0x80, 0x100))  # the bytes of a varint that are not its last


class ProtobufError(InputError):
    """Bytes that are not a well-formed protobuf message of the expected type."""


def map_file(path: Path) -> memoryview:
    """The whole regular file at ``path``, memory-mapped read-only.

    The mapping is not closed explicitly: slices of it may still be alive (in a traceback, say)
    and ``mmap.close`` refuses while they are; it is unmapped when the last view is dropped.
    """
    with open_regular(path) as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise ProtobufError("an empty file")
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def read_varint(data: memoryview, position: int) -> tuple[int, int]:
    """The unsigned varint at ``position`` and the position after it."""
    result = shift = 0
    end = len(data)
    while shift < 70:
        if position >= end:
            raise ProtobufError("a varint runs past the end of its message")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result >= TWO_TO_64:
                raise ProtobufError("a varint above 64 bits")
            return result, position
        shift += 7
    raise ProtobufError("a varint longer than 10 bytes")


def signed64(value: int) -> int:
    """An int64 field's value: varints carry negative numbers in 64-bit two's complement."""
    return value - TWO_TO_64 if value >= 2**63 else value


def count_varints(data: memoryview) -> int:
    """How many varints a packed field holds, counted without decoding them: each one ends
    with the only byte of it below 0x80. Copied a chunk at a time, so memory stays bounded."""
    if len(data) and data[-1] >= 0x80:
        raise ProtobufError("a packed field ends inside a varint")
    return sum(
        len(bytes(data[start : start + COUNT_CHUNK]).translate(None, _CONTINUATION_BYTES))
        for start in range(0, len(data), COUNT_CHUNK)
    )


class Field(NamedTuple):
    """One field of a message: a varint or fixed-width field's integer, or a length-delimited
    field's bytes as a slice of the file. Accessors check the wire type the caller expects."""

    number: int
    wire_type: int
    value: int | memoryview
    message: str  # the type of the message holding it, for error messages

    def _expect(self, wire_type: int) -> None:
        if self.wire_type != wire_type:
            raise ProtobufError(
                f"field {self.number} of {self.message} is {WIRE_NAMES[self.wire_type]}, "
                f"not {WIRE_NAMES[wire_type]}"
            )

    def uint(self) -> int:
        self._expect(VARINT)
        return self.value

    def int64(self) -> int:
        return signed64(self.uint())

    def chunk(self) -> memoryview:
        """A length-delimited field's bytes: a nested message, a string, packed values."""
        self._expect(LENGTH)
        return self.value

    def text(self, budget: ReadBudget, what: str) -> str:
        """A string field as text, its size bounded before it is copied (UTF-8 takes at most
        4 bytes a character). Invalid UTF-8 is replaced: proto2 does not validate strings."""
        data = self.chunk()
        budget.check("name_chars", (len(data) + 3) // 4, what)
        return bytes(data).decode("utf-8", "replace")

    def varints(self) -> Iterator[int]:
        """The values of a repeated varint field in this occurrence, packed or not."""
        if self.wire_type == VARINT:
            yield self.value
            return
        data, position = self.chunk(), 0
        while position < len(data):
            value, position = read_varint(data, position)
            yield value

    def count(self, wire_type: int) -> int:
        """How many values of a repeated scalar field of ``wire_type`` this occurrence holds,
        packed or not, without decoding them."""
        if self.wire_type == wire_type:
            return 1
        data = self.chunk()
        if wire_type == VARINT:
            return count_varints(data)
        size = FIXED_SIZES[wire_type]
        if len(data) % size:
            raise ProtobufError(
                f"a packed field of {len(data):,} bytes in {self.message}, not {size}-byte values"
            )
        return len(data) // size


_new_field = tuple.__new__  # builds a Field without the Python-level __new__ of a NamedTuple: 2x faster


def fields(data: memoryview, budget: ReadBudget, depth: int, message: str) -> Iterator[Field]:
    """The fields of the message in ``data``, nested ``depth`` levels deep, in file order.

    Keys, varints and lengths below 128 (most of them) take a one-byte fast path.
    """
    budget.check("depth", depth, message)
    position, end, walked = 0, len(data), 0
    while position < end:
        key = data[position]
        if key < 0x80:
            position += 1
        else:
            key, position = read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if not 1 <= number <= MAX_FIELD_NUMBER:
            raise ProtobufError(f"field number {number} in {message}")
        if wire_type in (LENGTH, VARINT):
            if position < end and data[position] < 0x80:
                value = data[position]
                position += 1
            else:
                value, position = read_varint(data, position)
            if wire_type == LENGTH:
                length = value
                if length > end - position:
                    raise ProtobufError(
                        f"a field of {length:,} bytes in {message} with {end - position:,} left"
                    )
                value = data[position : position + length]
                position += length
        elif wire_type in FIXED_SIZES:
            size = FIXED_SIZES[wire_type]
            if size > end - position:
                raise ProtobufError(f"a {size}-byte field runs past the end of {message}")
            value = int.from_bytes(data[position : position + size], "little")
            position += size
        else:
            raise ProtobufError(f"wire type {wire_type} (a group or no wire type) in {message}")
        walked += 1
        if walked % TICK_EVERY == 0:
            budget.tick()
        yield _new_field(Field, (number, wire_type, value, message))
