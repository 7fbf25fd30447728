"""Our GGUF header walk against the ``gguf`` package, and against hostile bytes.

Valid files are written by ``gguf.GGUFWriter`` and read back by ``gguf.GGUFReader`` as the
reference; hostile files are built byte by byte below, each field named, so that every
refusal is explained.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paramscope
from paramscope.errors import InputError
from paramscope.sources.budget import ReadBudget, limits
from paramscope.sources.gguf_file import GGML_TYPES, PLAIN_TYPES, read_gguf

ROOT = Path(__file__).resolve().parents[2]
VOCABULARY = 262_144  # Gemma 3's, the largest in common use


# Valid files, written by gguf.GGUFWriter ---------------------------------------------------


def _finish(writer) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _every_value_type(writer) -> None:
    """One key of every metadata value type, arrays of each, and arrays of arrays."""
    writer.add_uint8("t.u8", 200)
    writer.add_int8("t.i8", -100)
    writer.add_uint16("t.u16", 60_000)
    writer.add_int16("t.i16", -30_000)
    writer.add_uint32("t.u32", 4_000_000_000)
    writer.add_int32("t.i32", -2_000_000_000)
    writer.add_float32("t.f32", 0.5)
    writer.add_bool("t.bool", True)
    writer.add_string("t.string", "héllo\nworld")
    writer.add_uint64("t.u64", 2**63)
    writer.add_int64("t.i64", -(2**62))
    writer.add_float64("t.f64", 1e300)
    writer.add_array("t.bytes", b"\x00\x01\x02")
    writer.add_key_value("t.u16s", [1, 2, 3], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT16)
    writer.add_key_value("t.u64s", [1, 2**63], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT64)
    writer.add_key_value("t.f64s", [0.25, 0.5], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT64)
    writer.add_array("t.bools", [True, False, True])
    writer.add_array("t.ints", [-1, 0, 1])
    writer.add_array("t.floats", [0.5, 1.5])
    writer.add_array("t.strings", ["a", "", "ccc"])
    writer.add_array("t.nested", [[1, 2], [3]])
    writer.add_array("t.nested_strings", [["a"], ["b", "c"]])
    writer.add_array("t.deeper", [[[1.0], [2.0, 3.0]], [[4.0]]])
    writer.add_array("tokenizer.ggml.tokens", [f"token {i}" for i in range(2_000)])
    writer.add_array("tokenizer.ggml.scores", [float(i) for i in range(2_000)])
    writer.add_array("tokenizer.ggml.token_type", [1] * 2_000)


def _quantized(writer, name: str, qtype, rows: int = 2, row: int = 256) -> None:
    """A tensor of ``qtype``: stored bytes, their element shape derived by the writer."""
    block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    raw = np.zeros((rows, row // block * block_bytes), np.uint8)
    writer.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qtype)


def write_rich(path: Path, alignment: int | None = None) -> None:
    """Plain and quantized tensors of several shapes and metadata of every value type."""
    writer = gguf.GGUFWriter(path, "llama")
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    _every_value_type(writer)
    writer.add_tensor("token_embd.weight", np.ones((16, 64), np.float32))
    writer.add_tensor("output_norm.weight", np.ones(64, np.float16))
    writer.add_tensor("blk.0.attn_q.weight", np.ones((2, 3, 4, 32), np.float64))
    writer.add_tensor("blk.0.count", np.ones((5, 7), np.int32))
    writer.add_tensor("blk.0.codes", np.ones((3, 8), np.int8))
    q8 = gguf.quants.quantize(np.ones((64, 64), np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.ffn_up.weight", q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    _quantized(writer, "blk.0.ffn_down.weight", gguf.GGMLQuantizationType.Q4_K, rows=8)
    _quantized(writer, "blk.0.ffn_gate.weight", gguf.GGMLQuantizationType.IQ2_XXS, rows=3, row=512)
    _finish(writer)


def write_small(path: Path) -> None:
    """A few hundred bytes: metadata with a string, an array, a nested array, and two tensors."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_array("t.strings", ["ab", "c"])
    writer.add_array("t.nested", [[1], [2, 3]])
    writer.add_uint32("t.count", 7)
    writer.add_tensor("a.weight", np.ones((2, 4), np.float32))
    writer.add_tensor("b.weight", np.ones(8, np.float16))
    _finish(writer)


def reference(paths: list[Path]) -> dict[str, tuple[tuple[int, ...], str, int, int]]:
    """name -> (shape, dtype, params, bytes), as gguf.GGUFReader reads the files."""
    result = {}
    for path in paths:
        for tensor in gguf.GGUFReader(path).tensors:
            ggml = tensor.tensor_type.name.lower()
            shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
            result[tensor.name] = (
                shape,
                PLAIN_TYPES.get(ggml, ggml),
                int(tensor.n_elements),
                int(tensor.n_bytes),
            )
    return result


def ours(path: Path) -> dict[str, tuple[tuple[int, ...], str, int, int]]:
    report = paramscope.inspect(path)
    return {t.path.replace("/", "."): (t.shape, t.dtype, t.params, t.bytes) for t in report.tensors()}


# Parity with gguf.GGUFReader ---------------------------------------------------------------


def test_type_table_matches_gguf() -> None:
    known = {int(t): (t.name.lower(), *gguf.GGML_QUANT_SIZES[t]) for t in gguf.GGMLQuantizationType}
    assert known == GGML_TYPES


@pytest.mark.parametrize("alignment", [None, 64, 8])
def test_rich_file_matches_gguf_reader(tmp_path: Path, alignment: int | None) -> None:
    path = tmp_path / "model.gguf"
    write_rich(path, alignment)
    expected = reference([path])
    assert ours(path) == expected
    report = paramscope.inspect(path)
    assert report.totals["all"].params == sum(v[2] for v in expected.values())
    assert report.totals["all"].bytes == sum(v[3] for v in expected.values())
    assert expected["blk.0.ffn_down.weight"] == ((8, 256), "q4_k", 8 * 256, 8 * 144)
    assert expected["blk.0.attn_q.weight"][0] == (2, 3, 4, 32)


def test_every_ggml_type_matches_gguf_reader(tmp_path: Path) -> None:
    path = tmp_path / "types.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    for qtype in gguf.GGMLQuantizationType:
        _quantized(writer, f"t.{qtype.name.lower()}", qtype)
    _finish(writer)
    got = ours(path)
    assert got == reference([path])
    assert {dtype for _, dtype, _, _ in got.values()} >= {"float32", "bfloat16", "q4_k", "iq1_m", "mxfp4"}


def test_split_files_match_gguf_reader(tmp_path: Path) -> None:
    writer = gguf.GGUFWriter(tmp_path / "model.gguf", "llama", split_max_tensors=2)
    for i in range(5):
        writer.add_tensor(f"blk.{i}.weight", np.ones((i + 1, 32), np.float32))
    _finish(writer)
    parts = sorted(tmp_path.glob("model-*-of-00003.gguf"))
    assert [p.name for p in parts] == [f"model-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    assert ours(parts[0]) == reference(parts)
    assert paramscope.inspect(parts[0]).totals["all"].params == 32 * (1 + 2 + 3 + 4 + 5)


def test_large_vocabulary_is_walked_not_materialised(tmp_path: Path) -> None:
    """A 262,144-token vocabulary (GGUFReader needs ~40 s for it): tensors as written, and the
    string array charged once per token, well inside the default budget."""
    path = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_array("tokenizer.ggml.tokens", [f"<token {i}>" for i in range(VOCABULARY)])
    writer.add_array("tokenizer.ggml.scores", [float(-i) for i in range(VOCABULARY)])
    writer.add_array("tokenizer.ggml.token_type", [1] * VOCABULARY)
    writer.add_array("tokenizer.ggml.merges", [f"a{i} b{i}" for i in range(VOCABULARY)])
    writer.add_tensor("token_embd.weight", np.ones((64, 32), np.float16))
    _quantized(writer, "output.weight", gguf.GGMLQuantizationType.Q6_K, rows=4)
    _finish(writer)
    budget = ReadBudget()
    report = read_gguf(path, budget)
    assert {t.path: (t.shape, t.dtype, t.bytes) for t in report.tensors()} == {
        "token_embd/weight": ((64, 32), "float16", 64 * 32 * 2),
        "output/weight": ((4, 256), "q6_k", 4 * 210),
    }
    entries = budget.used("metadata_entries")
    assert 2 * VOCABULARY < entries < 2 * VOCABULARY + 10  # keys + strings; fixed-size arrays are skipped
    assert entries < budget.limits.metadata_entries / 1.5


def test_metadata_budget_counts_strings(tmp_path: Path) -> None:
    path = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_array("tokenizer.ggml.tokens", [str(i) for i in range(2_000)])
    _finish(writer)
    with limits(metadata_entries=1_000), pytest.raises(InputError, match="metadata entries"):
        paramscope.inspect(path)


def test_gguf_is_not_imported_to_read(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    write_small(path)
    code = (
        "import sys, paramscope; "
        f"assert paramscope.inspect({str(path)!r}).totals['all'].params == 16; "
        "assert 'gguf' not in sys.modules, 'gguf imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# Hostile files, byte by byte ---------------------------------------------------------------

U8, U32, STRING, ARRAY = 0, 4, 8, 9


def string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def kv(key: bytes, value_type: int, payload: bytes) -> bytes:
    return string(key) + struct.pack("<I", value_type) + payload


def array(element_type: int, count: int, payload: bytes = b"") -> bytes:
    return struct.pack("<IQ", element_type, count) + payload


def tensor_info(
    name: bytes = b"w", dims: tuple[int, ...] = (4,), ggml_type: int = 0, offset: int = 0
) -> bytes:
    return string(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, ggml_type, offset)


def gguf_bytes(
    kvs: list[bytes] = (), tensors: list[bytes] = (), version: int = 3, data: bytes = b""
) -> bytes:
    """A GGUF file: header, metadata, tensor infos, padding to 32 bytes, then ``data``."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    return head + b"\0" * (-len(head) % 32) + data


def nested(depth: int) -> bytes:
    """An array holding an array holding … ``depth`` levels, the innermost an empty uint8 array."""
    return array(ARRAY, 1) * (depth - 1) + array(U8, 0)


HOSTILE = {
    "absurd tensor count": (b"GGUF" + struct.pack("<IQQ", 3, 2**60, 0), "absurd GGUF counts"),
    "absurd metadata count": (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**60) + b"\0" * 25, "absurd GGUF counts"),
    "counts overflowing 64 bits": (
        b"GGUF" + struct.pack("<IQQ", 3, 2**64 - 1, 2**64 - 1),
        "absurd GGUF counts",
    ),
    "absurd fixed array": (gguf_bytes([kv(b"a", ARRAY, array(U8, 2**62))]), "absurd GGUF array length"),
    "absurd string array": (gguf_bytes([kv(b"a", ARRAY, array(STRING, 2**40))]), "absurd GGUF array length"),
    "absurd nested array": (gguf_bytes([kv(b"a", ARRAY, array(ARRAY, 2**63))]), "absurd GGUF array length"),
    "string length 2**63": (
        gguf_bytes([kv(b"a", STRING, struct.pack("<Q", 2**63))]),
        "needs 9,223,372,036,854,775,808 bytes",
    ),
    "string in array 2**63": (
        gguf_bytes([kv(b"a", ARRAY, array(STRING, 1, struct.pack("<Q", 2**63)))]),
        "truncated GGUF file: a string",
    ),
    "key length 2**63": (
        b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**63) + b"\0" * 8,
        "a metadata key of 9,223,372,036,854,775,808 bytes",
    ),
    "tensor name length 2**63": (
        gguf_bytes([], [struct.pack("<Q", 2**63) + b"\0" * 16]),
        "characters in a name",
    ),
    "depth bomb": (gguf_bytes([kv(b"a", ARRAY, nested(10_000))]), "exceeds 256 levels of nesting"),
    "unknown value type": (gguf_bytes([kv(b"a", 13, b"\0" * 8)]), "unknown value type 13"),
    "unknown array element type": (
        gguf_bytes([kv(b"a", ARRAY, array(99, 1, b"\0" * 8))]),
        "arrays of unknown value type 99",
    ),
    "unknown GGML type": (
        gguf_bytes([], [tensor_info(ggml_type=250)], data=b"\0" * 16),
        "unknown GGML type 250",
    ),
    "removed GGML type": (gguf_bytes([], [tensor_info(ggml_type=4)], data=b"\0" * 16), "unknown GGML type 4"),
    "zero dimension": (gguf_bytes([], [tensor_info(dims=(4, 0))], data=b"\0" * 16), "a dimension of 0"),
    "overflowing dimensions": (
        gguf_bytes([], [tensor_info(dims=(2**32, 2**32))]),
        "more than 2**63 elements",
    ),
    "dimension 2**64-1": (gguf_bytes([], [tensor_info(dims=(2**64 - 1, 2))]), "more than 2**63 elements"),
    "too many dimensions": (gguf_bytes([], [tensor_info(dims=(1,) * 65)]), "exceeds 64 dimensions"),
    "row not a block multiple": (
        gguf_bytes([], [tensor_info(dims=(16,), ggml_type=8)], data=b"\0" * 34),
        "not a multiple of q8_0's block of 32",
    ),
    "offset past the end": (gguf_bytes([], [tensor_info(offset=2**40)], data=b"\0" * 16), "ends at byte"),
    "offset 2**64-32": (gguf_bytes([], [tensor_info(offset=2**64 - 32)], data=b"\0" * 16), "ends at byte"),
    "data cut short": (
        gguf_bytes([], [tensor_info(dims=(8,))], data=b"\0" * 16),
        "truncated GGUF file: tensor 'w' ends at byte",
    ),
    "misaligned offset": (
        gguf_bytes([], [tensor_info(offset=3)], data=b"\0" * 64),
        "not a multiple of the alignment 32",
    ),
    "alignment 48": (
        gguf_bytes([kv(b"general.alignment", U32, struct.pack("<I", 48))]),
        "general.alignment 48 is not a power of two",
    ),
    "alignment 0": (
        gguf_bytes([kv(b"general.alignment", U32, struct.pack("<I", 0))]),
        "general.alignment 0 is not a power of two",
    ),
    "alignment as a string": (gguf_bytes([kv(b"general.alignment", STRING, string(b"32"))]), "not uint32"),
    "duplicate tensor names": (
        gguf_bytes([], [tensor_info(), tensor_info(offset=32)], data=b"\0" * 64),
        "duplicate tensor name 'w'",
    ),
    "alignment set twice": (
        gguf_bytes([kv(b"general.alignment", U32, struct.pack("<I", 32))] * 2),
        "metadata key 'general.alignment' appears twice",
    ),
    "duplicate metadata keys": (
        gguf_bytes([kv(b"a\x1b[2J", U8, b"\1"), kv(b"a\x1b[2J", U8, b"\2")]),
        "metadata key 'a\\\\x1b[2J' appears twice",
    ),
    "overlapping tensors": (
        gguf_bytes([], [tensor_info(b"a", (8,)), tensor_info(b"b", (4,), offset=0)], data=b"\0" * 32),
        "tensors 'a' and 'b' overlap",
    ),
    "version 1": (gguf_bytes(version=1), "version 1 is not supported (it used 32-bit counts"),
    "version 0": (gguf_bytes(version=0), "version 0 is not supported"),
    "big-endian bytes": (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian GGUF file"),
    "header cut short": (b"GGUF\x03\0\0\0" + b"\0" * 8, "truncated GGUF header"),
    "escape in a name": (
        gguf_bytes([], [tensor_info(name=b"\x1b[2Jw", ggml_type=250)]),
        "tensor '\\\\x1b[2Jw'",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_refused_cleanly(case: str, tmp_path: Path) -> None:
    data, phrase = HOSTILE[case]
    path = tmp_path / "model.gguf"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        paramscope.inspect(path)
    message = str(caught.value)
    assert phrase in message
    assert "\n" not in message and "\x1b" not in message and len(message) < 300


def test_hand_built_file_is_read(tmp_path: Path) -> None:
    """The builder above writes files the reader accepts: each hostile case differs by one field."""
    path = tmp_path / "model.gguf"
    kvs = [kv(b"general.alignment", U32, struct.pack("<I", 64)), kv(b"a", ARRAY, nested(200))]
    head = gguf_bytes(kvs, [tensor_info(dims=(4, 2)), tensor_info(b"v", offset=64)])
    path.write_bytes(head + b"\0" * (-len(head) % 64) + b"\0" * 96)
    assert ours(path) == {"w": ((2, 4), "float32", 8, 32), "v": ((4,), "float32", 4, 16)}


def test_deep_nesting_within_a_raised_limit_needs_no_recursion(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(gguf_bytes([kv(b"a", ARRAY, nested(20_000))]))
    with limits(depth=30_000):
        assert paramscope.inspect(path).totals["all"].tensors == 0


def test_header_is_read_within_its_byte_budget(tmp_path: Path) -> None:
    """Only the first ``header_bytes`` of a file are mapped; a longer header is refused, naming
    the limit, and a file whose data is far larger (a sparse 64 GB one) costs nothing more."""
    path = tmp_path / "model.gguf"
    head = gguf_bytes(
        [kv(b"a", ARRAY, array(STRING, 1_000, string(b"token") * 1_000))], [tensor_info(dims=(2**34,))]
    )
    path.write_bytes(head)
    with open(path, "r+b") as handle:
        handle.truncate(len(head) + 2**36)  # a hole on disk: the data is never written
    assert ours(path) == {"w": ((2**34,), "float32", 2**34, 2**36)}
    with limits(header_bytes=len(head) // 2), pytest.raises(InputError, match="limit header_bytes"):
        paramscope.inspect(path)


def test_split_part_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    write_small(tmp_path / "model-00001-of-00002.gguf")
    os.mkfifo(tmp_path / "model-00002-of-00002.gguf")
    with pytest.raises(InputError, match="a FIFO"):
        paramscope.inspect(tmp_path / "model-00001-of-00002.gguf")


def test_big_endian_file_from_the_writer_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(path, "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_tensor("w", np.ones(4, np.float32))
    _finish(writer)
    with pytest.raises(InputError, match="big-endian GGUF file"):
        paramscope.inspect(path)


def test_every_truncation_refused(tmp_path: Path) -> None:
    """Cut at every byte up to the end of the last tensor's data: refused, saying why; the
    padding the writer adds after it is not needed."""
    source = tmp_path / "small.gguf"
    write_small(source)
    data = source.read_bytes()
    end = max(t.data_offset + int(t.n_bytes) for t in gguf.GGUFReader(source).tensors)
    path = tmp_path / "cut.gguf"
    for size in range(4, end):
        path.write_bytes(data[:size])
        with pytest.raises(InputError) as caught:
            paramscope.inspect(path)
        message = str(caught.value)
        assert any(p in message for p in ("truncated GGUF", "absurd GGUF")), (size, message)
    for size in (end, len(data)):
        path.write_bytes(data[:size])
        assert paramscope.inspect(path).totals["all"].params == 16


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def test_fuzzed_file_fails_only_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "small.gguf"
    write_small(source)
    original = source.read_bytes()
    path = tmp_path / "fuzzed.gguf"

    @FUZZ
    @given(
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), min_size=1, max_size=8),
        st.integers(4, len(original)),
    )
    def check(flips, cut) -> None:
        data = bytearray(original)
        for position, value in flips:
            data[position] = value
        data[:4] = b"GGUF"  # keep it a GGUF file, so that the GGUF reader is what is fuzzed
        path.write_bytes(bytes(data[:cut]))
        with contextlib.suppress(InputError):  # the only acceptable failure
            paramscope.inspect(path)

    check()
