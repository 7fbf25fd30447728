"""The hostile corpus of issue #10: files that attack every checkpoint reader, generated.

paramscope promises that any checkpoint, downloaded from anywhere, can be looked at safely.
:func:`write_corpus` writes several hundred files that try to break that promise, for every
format paramscope reads, each tagged with the class of attack (:data:`KINDS`), the format,
and what must happen: ``refused`` (a clean InputError), ``read`` (a report), ``either``
where both are correct and only the limits judge (time, memory, sane totals, clean output),
or ``malicious``: a trojan beside real weights, read (nothing is refused for the names it
reaches, since nothing is ever called) with the verdict ``malicious`` naming its ``phrase``.
``hostile_runner.py`` reads them in limited child processes; ``test_hostile_corpus.py`` judges.

Generated rather than committed, so that every byte is explained here. Valid files come from
the real writers (torch, safetensors, numpy, h5py, onnx, gguf); what no library would write is
assembled by hand: pickle opcodes, protobuf fields, GGUF records, zip directories. Keras
archives are assembled from h5py-written weights and the config.json Keras 3.15 writes (its
layout copied below), because importing Keras costs ten seconds a run.

Each case gets its own folder, so that "the files it came from" (for the bytes-on-disk check)
is that folder. FIFOs and sockets cannot be generated ahead of time without risking a hang
in whatever copies the folder: the case names them (``specials``) and the harness makes them.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REFUSED, READ, EITHER, MALICIOUS = "refused", "read", "either", "malicious"
KINDS = {
    "integers": "unbounded integers (huge or negative dims, products past 2**63, sizes past the file)",
    "structure": "untrusted structure trusted (wrong types, lists for dicts, zero divisors)",
    "sharing": "shared references and repeated work (DAGs, cycles, duplicates, aliases)",
    "caps": "caps that cap the wrong thing (bombs, huge but allowed counts, deep stacks)",
    "special": "special files and third-party loops (FIFOs, devices, /proc, links)",
    "output": "forged output (escape sequences, newlines, surrogates, huge or deep names)",
    "truncation": "a valid file cut at a structural boundary",
    "trojan": "code execution hidden in a checkpoint",
    "control": "a valid file: must be read (proves the harness reads real files)",
}
MiB = 1024 * 1024
GiB = 1024 * MiB
HOSTILE_NAMES = {  # a name per way of forging terminal output; a forged line starts "INJECTED"
    "newline": "layer\nINJECTED: fake line.weight",
    "carriage-return": "layer\rOVERWRITTEN.weight",
    "clear-screen": "layer\x1b[2J\x1b[H.weight",
    "osc-title": "layer\x1b]0;pwned\x07.weight",
    "nul": "layer\x00hidden.weight",
    "bidi-override": "layer\u202egnp.exe.weight",
    "lone-surrogate": "layer\udcff.weight",
}


@dataclass
class Case:
    """One hostile file (or folder of files) and what paramscope must do with it."""

    name: str  # unique, plain ASCII: the case's folder
    kind: str  # a key of KINDS
    format: str
    expect: str  # REFUSED, READ, EITHER or MALICIOUS
    target: str  # the path paramscope is asked to read, inside the case's folder
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # name -> symbolic link target
    specials: dict[str, str] = field(default_factory=dict)  # name -> "fifo" | "socket" (harness)
    sparse: dict[str, int] = field(default_factory=dict)  # name -> size reached with a hole
    phrase: str = ""  # text a refusal must contain; a MALICIOUS case's global, as its verdict names it
    note: str = ""

    def manifest(self) -> dict:
        entry = asdict(self)
        del entry["files"]
        return entry


# ----------------------------------------------------------------------------------------
# Pickle, assembled opcode by opcode (protocol 2 unless said).
# ----------------------------------------------------------------------------------------

MARK, STOP, TUPLE, REDUCE, BINPERSID, BUILD = b"(", b".", b"t", b"R", b"Q", b"b"
EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, DUP, POP = b"}", b"]", b")", b"2", b"0"
SETITEM, SETITEMS, APPEND, APPENDS, TUPLE2 = b"s", b"u", b"a", b"e", b"\x86"
NEWTRUE, NEWFALSE, NONE, MEMOIZE = b"\x88", b"\x89", b"N", b"\x94"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def p_text(text: str) -> bytes:
    """BINUNICODE; lone surrogates are written as their (invalid) UTF-8 bytes."""
    return p_raw_text(text.encode("utf-8", "surrogatepass"))


def p_short_text(text: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4): two bytes of overhead, for files of many names."""
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def p_raw_text(data: bytes) -> bytes:
    return b"X" + struct.pack("<I", len(data)) + data


def p_int(n: int) -> bytes:
    """The shortest integer opcode: BININT1, BININT, LONG1 or LONG4 (any size)."""
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    if len(data) < 256:
        return b"\x8a" + bytes([len(data)]) + data
    return b"\x8b" + struct.pack("<I", len(data)) + data


def p_float(value: float) -> bytes:
    return b"G" + struct.pack(">d", value)


def p_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def p_tuple(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def p_call(function: bytes, *args: bytes) -> bytes:
    return function + p_tuple(*args) + REDUCE


def p_dict(pairs: list[tuple[bytes, bytes]]) -> bytes:
    if not pairs:
        return EMPTY_DICT
    return EMPTY_DICT + MARK + b"".join(k + v for k, v in pairs) + SETITEMS


def p_list(items: list[bytes]) -> bytes:
    return EMPTY_LIST + (MARK + b"".join(items) + APPENDS if items else b"")


def p_put(index: int) -> bytes:
    return b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)


def p_get(index: int) -> bytes:
    return b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)


def pickled(body: bytes) -> bytes:
    return b"\x80\x02" + body + STOP


def p_storage(key: str, numel: int, storage_type: str = "FloatStorage", legacy: bool = False) -> bytes:
    """A persistent id naming a storage (zip: 5 items; legacy adds the view metadata)."""
    items = [p_text("storage"), p_global("torch", storage_type), p_text(key), p_text("cpu"), p_int(numel)]
    return p_tuple(*items, *([NONE] if legacy else [])) + BINPERSID


def contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= max(dim, 1)
    return tuple(reversed(strides))


def p_tensor_raw(storage: bytes, offset: bytes, size: bytes, stride: bytes, grad: bytes = NEWFALSE) -> bytes:
    """torch._utils._rebuild_tensor_v2 over already-encoded arguments (for hostile ones)."""
    hooks = p_call(p_global("collections", "OrderedDict"))
    return p_call(p_global("torch._utils", "_rebuild_tensor_v2"), storage, offset, size, stride, grad, hooks)


def p_ints(values) -> bytes:
    return p_tuple(*(p_int(v) for v in values))


def p_tensor(
    key: str,
    shape: tuple[int, ...],
    numel: int | None = None,
    stride: tuple[int, ...] | None = None,
    offset: int = 0,
    legacy: bool = False,
) -> bytes:
    numel = max(1, int(np.prod(shape, dtype=object))) if numel is None else numel
    stride = contiguous(shape) if stride is None else stride
    return p_tensor_raw(p_storage(key, numel, legacy=legacy), p_int(offset), p_ints(shape), p_ints(stride))


def p_state_dict(entries: list[tuple[bytes, bytes]]) -> bytes:
    """An OrderedDict, as torch writes a state dict."""
    ordered = p_call(p_global("collections", "OrderedDict"))
    if not entries:
        return ordered
    return ordered + MARK + b"".join(k + v for k, v in entries) + SETITEMS


# ----------------------------------------------------------------------------------------
# Containers: zip archives, torch zip and legacy files.
# ----------------------------------------------------------------------------------------


def zip_bytes(members: dict[str, bytes] | list[tuple[str, bytes]], compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    items = members.items() if isinstance(members, dict) else members
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", method) as archive:
        warnings.simplefilter("ignore")  # duplicate member names are an attack here
        for name, data in items:
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def patch_central(data: bytes, member: str, **fields: int) -> bytes:
    """Rewrite fields of one member's central-directory entry (and of its local header where
    the field exists there too): the lies a zip writer would never tell."""
    offsets = {"method": (10, "<H"), "compress_size": (20, "<I"), "file_size": (24, "<I"), "flags": (8, "<H")}
    local_offsets = {
        "method": (8, "<H"),
        "compress_size": (18, "<I"),
        "file_size": (22, "<I"),
        "flags": (6, "<H"),
    }
    out = bytearray(data)
    name = member.encode()
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46 : at + 46 + name_length] == name:
            header = struct.unpack_from("<I", out, at + 42)[0]
            for key, value in fields.items():
                if key == "header_offset":
                    struct.pack_into("<I", out, at + 42, value)
                    continue
                where, fmt = offsets[key]
                struct.pack_into(fmt, out, at + where, value)
                where, fmt = local_offsets[key]
                struct.pack_into(fmt, out, header + where, value)
            return bytes(out)
        at = out.find(b"PK\x01\x02", at + 4)
    raise KeyError(member)


def torch_zip(pickle: bytes, storages: dict[str, bytes] | None = None, compress: bool = False) -> bytes:
    """A torch >= 1.6 archive around a pickle, laid out as torch.save lays it out."""
    members = [("archive/data.pkl", pickle), ("archive/byteorder", b"little")]
    members += [(f"archive/data/{key}", data) for key, data in (storages or {}).items()]
    members += [("archive/version", b"3\n")]
    if not compress:
        return zip_bytes(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            method = zipfile.ZIP_DEFLATED if name.endswith("data.pkl") else zipfile.ZIP_STORED
            archive.writestr(name, data, compress_type=method)
    return buffer.getvalue()


def legacy_header() -> bytes:
    """The three pickles before a legacy file's object: magic number, protocol, sys info."""
    magic = b"\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")
    sizes = p_dict([(p_text("short"), p_int(2)), (p_text("int"), p_int(4)), (p_text("long"), p_int(4))])
    info = p_dict(
        [
            (p_text("protocol_version"), p_int(1001)),
            (p_text("little_endian"), NEWTRUE),
            (p_text("type_sizes"), sizes),
        ]
    )
    return pickled(magic) + pickled(p_int(1001)) + pickled(info)


def legacy_torch(
    pickle: bytes, storages: dict[str, bytes] | None = None, numels: dict | None = None
) -> bytes:
    """A pre-1.6 torch file: header, the object's pickle, the storage keys, then each storage
    as its element count (int64) and its bytes. ``numels`` overrides a stored count."""
    storages = storages or {}
    keys = pickled(p_list([p_text(key) for key in storages]))
    records = b"".join(
        struct.pack("<q", (numels or {}).get(key, len(data) // 4)) + data for key, data in storages.items()
    )
    return legacy_header() + pickle + keys + records


def float_bytes(count: int) -> bytes:
    return np.arange(count, dtype=np.float32).tobytes()


def noisy(unit: bytes, count: int, noise: Callable[[random.Random], bytes], every: int) -> bytes:
    """``unit`` repeated ``count`` times with a random ``noise`` every ``every`` units: data that
    deflate compresses about a hundredfold, under the zip-ratio cap that refuses plain bombs."""
    rng = random.Random(count)
    block = unit * every
    return b"".join(block + noise(rng) for _ in range(count // every))


# ----------------------------------------------------------------------------------------
# safetensors, .npy, GGUF and protobuf, by hand.
# ----------------------------------------------------------------------------------------


def safetensors_bytes(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def st_entry(dtype: str = "F32", shape=(2,), offsets=(0, 8)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def npy_bytes(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy file with this header text (padded as numpy pads it) and data."""
    size_format = "<H" if version == (1, 0) else "<I"
    prefix = 6 + 2 + struct.calcsize(size_format)
    text = header.encode("latin-1")
    padding = -(prefix + len(text) + 1) % 64
    body = text + b" " * padding + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(size_format, len(body)) + body + data


def npy_header(descr: str, shape: str, fortran: str = "False") -> str:
    return f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}"


GGUF_U8, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_U64 = 0, 4, 5, 6, 7, 8, 9, 10


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def g_string(data: bytes | str, length: int | None = None) -> bytes:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return struct.pack("<Q", len(raw) if length is None else length) + raw


def g_kv(key: bytes | str, value_type: int, value: bytes) -> bytes:
    return g_string(key) + struct.pack("<I", value_type) + value


def g_tensor(name: bytes | str, dims: list[int], ggml_type: int = 0, offset: int = 0, n_dims=None) -> bytes:
    count = len(dims) if n_dims is None else n_dims
    return (
        g_string(name)
        + struct.pack("<I", count)
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def gguf_bytes(
    kvs: list[bytes],
    tensors: list[bytes],
    data: bytes = b"",
    version: int = 3,
    counts: tuple[int, int] | None = None,
    alignment: int = 32,
) -> bytes:
    """A GGUF file: header, key/values, tensor infos, padding to ``alignment``, data."""
    n_tensors, n_kv = counts if counts is not None else (len(tensors), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + b"".join(kvs) + b"".join(tensors)
    return head + b"\0" * (-len(head) % alignment) + data


def gguf_model(names: list[str] | None = None, extra_kvs: list[bytes] | None = None, **kw) -> bytes:
    """A small, valid f32 GGUF file: one 4x2 tensor per name (the fastest axis first)."""
    names = names or ["token_embd.weight"]
    kvs = [g_kv("general.architecture", GGUF_STRING, g_string("llama")), *(extra_kvs or [])]
    tensors = [g_tensor(name, [4, 2], 0, 32 * i) for i, name in enumerate(names)]
    data = b"".join(float_bytes(8) for _ in names)
    return gguf_bytes(kvs, tensors, data, **kw)


def pb_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as protobuf writes it: ten bytes
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pb_field(number: int, payload: bytes | int) -> bytes:
    """A varint field (int payload) or a length-delimited one (bytes payload)."""
    if isinstance(payload, int):
        return pb_varint(number << 3) + pb_varint(payload)
    return pb_varint(number << 3 | 2) + pb_varint(len(payload)) + payload


def pb_tensor(
    name: bytes | str, dims: list[int], data_type: int = 1, raw: bytes | None = None, extra=b""
) -> bytes:
    """An ONNX TensorProto: dims (1), data_type (2), name (8), raw_data (9)."""
    raw_name = name.encode("utf-8", "surrogatepass") if isinstance(name, str) else name
    body = b"".join(pb_field(1, d) for d in dims) + pb_field(2, data_type) + pb_field(8, raw_name)
    if raw is not None:
        body += pb_field(9, raw)
    return body + extra


def pb_model(graph: bytes, ir_version: int = 8, opset: int = 17) -> bytes:
    """An ONNX ModelProto: ir_version (1), graph (7), opset_import (8)."""
    return pb_field(1, ir_version) + pb_field(7, graph) + pb_field(8, pb_field(2, opset))


def pb_graph(
    initializers: list[bytes], name: bytes = b"g", nodes: list[bytes] = (), extra: bytes = b""
) -> bytes:
    """A GraphProto: node (1), name (2), initializer (5)."""
    return (
        b"".join(pb_field(1, node) for node in nodes)
        + pb_field(2, name)
        + b"".join(pb_field(5, t) for t in initializers)
        + extra
    )


def pb_if_node(name: bytes, subgraph: bytes) -> bytes:
    """A NodeProto (name 3, op_type 4) with a graph attribute (name 1, g 6, type 20 = GRAPH)."""
    attribute = pb_field(1, b"then_branch") + pb_field(6, subgraph) + pb_field(20, 5)
    return pb_field(3, name) + pb_field(4, b"If") + pb_field(5, attribute)


def pb_fields(data: bytes) -> list[tuple[int, int, int]]:
    """(start, payload start, end) of each top-level field of a protobuf message."""
    fields, at = [], 0
    while at < len(data):
        start = at
        key, at = _pb_read_varint(data, at)
        wire = key & 7
        if wire == 0:
            _, at = _pb_read_varint(data, at)
            fields.append((start, at, at))
        elif wire == 2:
            length, payload = _pb_read_varint(data, at)
            at = payload + length
            fields.append((start, payload, at))
        else:
            at += {1: 8, 5: 4}[wire]
            fields.append((start, at, at))
    return fields


def _pb_read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


# ----------------------------------------------------------------------------------------
# torch: one table of pickle attacks, each written into a zip archive and a legacy file.
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PickleAttack:
    """A hostile state-dict pickle; ``build(legacy)`` gives the pickle and its storages."""

    name: str
    kind: str
    expect: str
    build: Callable[[bool], tuple[bytes, dict[str, bytes]]]
    note: str
    containers: tuple[str, ...] = ("zip", "legacy")
    compress: bool = False
    phrase: str = ""


def _valid_pairs(legacy: bool) -> list[tuple[bytes, bytes]]:
    return [
        (p_text("fc.weight"), p_tensor("0", (3, 2), legacy=legacy)),
        (p_text("fc.bias"), p_tensor("1", (3,), legacy=legacy)),
    ]


VALID_STORAGES = {"0": float_bytes(6), "1": float_bytes(3)}


def state_pickle(
    legacy: bool, *pairs: tuple[bytes, bytes], storages: dict | None = None
) -> tuple[bytes, dict]:
    """A valid two-tensor state dict plus ``pairs``."""
    return pickled(p_state_dict(_valid_pairs(legacy) + list(pairs))), {**VALID_STORAGES, **(storages or {})}


def _bad(**tensor: object) -> Callable[[bool], tuple[bytes, dict]]:
    """A state dict with one more tensor, ``bad.weight``, built from hostile integers."""
    tensor.setdefault("shape", (4,))
    tensor.setdefault("numel", 4)
    return lambda legacy: state_pickle(
        legacy, (p_text("bad.weight"), p_tensor("2", legacy=legacy, **tensor)), storages={"2": float_bytes(4)}
    )


OFFSET_0, SIZE_4, STRIDE_1 = b"K\x00", b"(K\x04t", b"(K\x01t"


def _bad_raw(offset=OFFSET_0, size=SIZE_4, stride=STRIDE_1, storage=None, grad=NEWFALSE):
    """Like :func:`_bad`, with the rebuild arguments given as opcodes."""

    def build(legacy: bool) -> tuple[bytes, dict]:
        store = p_storage("2", 4, legacy=legacy) if storage is None else storage(legacy)
        tensor = p_tensor_raw(store, offset, size, stride, grad)
        return state_pickle(legacy, (p_text("bad.weight"), tensor), storages={"2": float_bytes(4)})

    return build


def _beside(value: bytes) -> Callable[[bool], tuple[bytes, dict]]:
    """A valid state dict with ``value`` under the key ``extra``."""
    return lambda legacy: state_pickle(legacy, (p_text("extra"), value))


def _alone(body: bytes) -> Callable[[bool], tuple[bytes, dict]]:
    return lambda legacy: (pickled(body), {})


def _pid(*items: bytes) -> Callable[[bool], bytes]:
    return lambda legacy: p_tuple(*items) + BINPERSID


def tuple_dag(levels: int = 64, leaf: bytes = EMPTY_TUPLE) -> bytes:
    """``x = (x, x)`` 64 times: 130 opcodes, 2**64 paths to the leaf."""
    return leaf + (DUP + TUPLE2) * levels


def list_dag(levels: int = 64, leaf: bytes = EMPTY_LIST, base: int = 100) -> bytes:
    """``x = [x, x]`` through the memo (lists cannot be built with DUP alone): one item net."""
    out = leaf + p_put(base) + POP
    for level in range(levels):
        out += EMPTY_LIST + MARK + p_get(base + level) * 2 + APPENDS + p_put(base + level + 1) + POP
    return out + p_get(base + levels)


def dict_dag(levels: int = 64, base: int = 100) -> bytes:
    """``x = {"a": x, "b": x}`` through the memo: one item net."""
    out = EMPTY_DICT + p_put(base) + POP
    for level in range(levels):
        child = p_get(base + level)
        pairs = p_text("a") + child + p_text("b") + child
        out += EMPTY_DICT + MARK + pairs + SETITEMS + p_put(base + level + 1) + POP
    return out + p_get(base + levels)


def _many_names(count: int, same_key: bool = False) -> Callable[[bool], tuple[bytes, dict]]:
    """One tensor (memoized) under ``count`` names, or the same name ``count`` times."""

    def build(legacy: bool) -> tuple[bytes, dict]:
        tensor = p_tensor("0", (3, 2), legacy=legacy) + p_put(250)
        key = p_text("w") + p_put(251)
        pairs = [key + tensor]
        get, key_get = p_get(250), p_get(251)
        pairs += (
            [key_get + get] * (count - 1)
            if same_key
            else [p_short_text(f"t{i:x}") + get for i in range(1, count)]
        )
        ordered = p_call(p_global("collections", "OrderedDict"))
        return pickled(ordered + MARK + b"".join(pairs) + SETITEMS), {"0": float_bytes(6)}

    return build


def _opcode_stream(unit: bytes, count: int, noise: Callable[[random.Random], bytes]) -> Callable:
    """A valid state dict preceded by ``count`` repetitions of ``unit`` (with noise, so that
    the zip ratio stays under the cap) that leave the stack as they found it."""

    def build(legacy: bool) -> tuple[bytes, dict]:
        padding = noisy(unit, count, noise, every=400)
        body, storages = state_pickle(legacy)
        return b"\x80\x02" + padding + body[2:], storages

    return build


def _stack_of(count: int) -> Callable:
    """``count`` empty lists and dicts pushed and never popped: a stack, not nesting."""

    def build(legacy: bool) -> tuple[bytes, dict]:
        pushes = noisy(EMPTY_LIST + EMPTY_DICT, count // 2, lambda rng: p_int(rng.randrange(256)), every=200)
        body, storages = state_pickle(legacy)
        return b"\x80\x02" + pushes + body[2:], storages

    return build


def _memo_of(count: int) -> Callable:
    """``count`` memo entries (MEMOIZE, protocol 4) of one None."""

    def build(legacy: bool) -> tuple[bytes, dict]:
        memo = NONE + noisy(MEMOIZE, count, lambda rng: NONE + POP, every=300) + POP
        body, storages = state_pickle(legacy)
        return b"\x80\x04" + memo + body[2:], storages

    return build


def _nested_lists(depth: int) -> bytes:
    """A list nested ``depth`` deep, built without MARK: ``depth`` lists, then appends."""
    return EMPTY_LIST * depth + APPEND * (depth - 1)


def _os_system(command: str) -> bytes:
    return p_call(p_global("os", "system"), p_text(command))


def pickle_attacks(marker: Path) -> list[PickleAttack]:
    """Every pickle attack of the corpus, by class; each is written into both containers."""
    return [
        *_integer_attacks(),
        *_structure_attacks(),
        *_sharing_attacks(),
        *_caps_attacks(),
        *_output_attacks(),
        *_trojan_attacks(marker),
    ]


def _refused(name: str, kind: str, build, note: str, **kw) -> PickleAttack:
    return PickleAttack(name, kind, REFUSED, build, note, **kw)


def _integer_attacks() -> list[PickleAttack]:
    inf, nan = float("inf"), float("nan")
    integers = [
        ("dim-2pow64", _bad(shape=(2**64,)), "a dimension of 2**64"),
        ("dims-product-2pow124", _bad(shape=(2**62, 2**62)), "dimensions whose product is 2**124"),
        ("dim-negative", _bad(shape=(-1, 4), stride=(4, 1)), "a dimension of -1"),
        ("dim-4300-digits", _bad(shape=(10**4300,)), "a 4,301-digit dimension (LONG4)"),
        (
            "dim-4301-digits-text",
            _bad_raw(size=MARK + b"L" + b"9" * 4301 + b"L\n" + TUPLE),
            "a 4,301-digit decimal LONG",
        ),
        ("dims-65", _bad(shape=(1,) * 65), "65 dimensions"),
        ("dims-zero-and-2pow70", _bad(shape=(0, 2**70)), "an empty shape with a 2**70 dimension"),
        ("offset-negative", _bad(offset=-8), "a storage offset of -8"),
        ("offset-2pow63", _bad(offset=2**63), "a storage offset of 2**63"),
        ("offset-infinite", _bad_raw(offset=p_float(inf)), "a storage offset of float inf"),
        ("offset-nan", _bad_raw(offset=p_float(nan)), "a storage offset of float nan"),
        ("storage-numel-2pow64", _bad(numel=2**64), "a storage of 2**64 elements"),
        ("storage-numel-negative", _bad(numel=-1), "a storage of -1 elements"),
        ("storage-larger-than-file", _bad(shape=(10**6,), numel=10**6), "1e6 elements in a 16-byte storage"),
        ("stride-2pow62", _bad(stride=(2**62,)), "a stride of 2**62"),
        ("stride-negative", _bad(stride=(-1,)), "a stride of -1"),
        ("stride-length-mismatch", _bad(shape=(2, 2), stride=(1,)), "two dimensions, one stride"),
        ("view-past-storage", _bad(offset=2), "a 4-element view at offset 2 of a 4-element storage"),
    ]
    return [
        *(PickleAttack(name, "integers", REFUSED, build, note) for name, build, note in integers),
        PickleAttack(
            "dim-true", "integers", EITHER, _bad_raw(size=p_tuple(NEWTRUE, p_int(4))), "a dimension of True"
        ),
        PickleAttack(
            "expand-stride-zero-2pow40",
            "integers",
            EITHER,
            _bad(shape=(2**40,), stride=(0,), numel=1),
            "one stored float expanded (stride 0) to 2**40 elements: torch loads it, but no data",
        ),
    ]


def _structure_attacks() -> list[PickleAttack]:
    ordered = p_call(p_global("collections", "OrderedDict"))
    return [
        _refused("top-level-int", "structure", _alone(p_int(5)), "the pickle is the integer 5"),
        _refused("top-level-none", "structure", _alone(NONE), "the pickle is None"),
        PickleAttack(
            "top-level-list",
            "structure",
            READ,
            lambda legacy: (pickled(p_list([t for _, t in _valid_pairs(legacy)])), VALID_STORAGES),
            "a list of tensors, not a dict (torch.save([...]) writes this)",
        ),
        PickleAttack(
            "keys-not-text",
            "structure",
            EITHER,
            lambda legacy: (
                pickled(
                    p_dict([(k, t) for k, (_, t) in zip((p_int(7), NONE), _valid_pairs(legacy), strict=True)])
                ),
                VALID_STORAGES,
            ),
            "tensor names that are an int and None",
        ),
        _refused(
            "storage-type-list",
            "structure",
            _bad_raw(
                storage=_pid(p_text("storage"), p_list([p_int(1)]), p_text("2"), p_text("cpu"), p_int(4))
            ),
            "a storage type that is a list",
        ),
        _refused(
            "storage-type-text",
            "structure",
            _bad_raw(
                storage=_pid(p_text("storage"), p_text("FloatStorage"), p_text("2"), p_text("cpu"), p_int(4))
            ),
            "a storage type that is a string",
        ),
        _refused(
            "pid-dict",
            "structure",
            _bad_raw(storage=lambda legacy: p_dict([(p_text("storage"), p_int(1))]) + BINPERSID),
            "a persistent id that is a dict",
        ),
        _refused(
            "pid-short",
            "structure",
            _bad_raw(storage=_pid(p_text("storage"), p_global("torch", "FloatStorage"))),
            "a persistent id of two items",
        ),
        _refused(
            "pid-key-list",
            "structure",
            _bad_raw(
                storage=_pid(
                    p_text("storage"), p_global("torch", "FloatStorage"), p_list([]), p_text("cpu"), p_int(4)
                )
            ),
            "a storage key that is a list",
        ),
        _refused(
            "pid-key-traversal",
            "structure",
            _bad_raw(
                storage=_pid(
                    p_text("storage"),
                    p_global("torch", "FloatStorage"),
                    p_text("../../../../etc/passwd"),
                    p_text("cpu"),
                    p_int(4),
                )
            ),
            "a storage key that climbs out of the archive",
        ),
        _refused(
            "rebuild-two-args",
            "structure",
            _beside(p_call(p_global("torch._utils", "_rebuild_tensor_v2"), p_storage("0", 6), p_int(0))),
            "_rebuild_tensor_v2 with two arguments",
        ),
        _refused(
            "rebuild-args-list",
            "structure",
            _beside(p_global("torch._utils", "_rebuild_tensor_v2") + p_list([p_int(1)]) + REDUCE),
            "REDUCE with a list of arguments",
        ),
        _refused("rebuild-size-dict", "structure", _bad_raw(size=p_dict([])), "a tensor size that is a dict"),
        _refused("rebuild-stride-none", "structure", _bad_raw(stride=NONE), "a tensor stride of None"),
        _refused(
            "rebuild-storage-int",
            "structure",
            _bad_raw(storage=lambda legacy: p_int(3)),
            "a storage that is 3",
        ),
        _refused(
            "parameter-of-dict",
            "structure",
            _beside(p_call(p_global("torch._utils", "_rebuild_parameter"), p_dict([]), NEWTRUE, ordered)),
            "a Parameter rebuilt from a dict",
        ),
        _refused(
            "from-type-garbage",
            "structure",
            _beside(
                p_call(p_global("torch._tensor", "_rebuild_from_type_v2"), p_int(5), NONE, p_text("x"), NONE)
            ),
            "a tensor subclass record of garbage",
        ),
        _refused(
            "setitems-odd", "structure", _alone(EMPTY_DICT + MARK + p_text("k") + SETITEMS), "odd SETITEMS"
        ),
        _refused(
            "setitem-on-list",
            "structure",
            _alone(EMPTY_LIST + p_text("k") + p_int(1) + SETITEM),
            "SETITEM on a list",
        ),
        _refused("append-on-dict", "structure", _alone(EMPTY_DICT + p_int(1) + APPEND), "APPEND on a dict"),
        _refused("build-on-empty-stack", "structure", _alone(BUILD), "BUILD with nothing on the stack"),
        _refused(
            "stack-global-lists",
            "structure",
            _alone(EMPTY_LIST + EMPTY_LIST + b"\x93"),
            "STACK_GLOBAL whose module and class names are lists",
        ),
        _refused("global-empty-name", "structure", _alone(p_global("torch", "")), "GLOBAL torch.<empty>"),
        _refused("persid-text", "structure", _alone(b"P0\n"), "a text persistent id (PERSID)"),
        _refused("ext1", "structure", _alone(b"\x82\x01"), "an extension-registry opcode"),
        _refused("memo-missing", "structure", _alone(p_get(5)), "BINGET of a memo entry never stored"),
        PickleAttack(
            "requires-grad-list",
            "structure",
            EITHER,
            _bad_raw(grad=p_list([NEWTRUE])),
            "requires_grad that is a list",
        ),
        PickleAttack(
            "optimizer-garbage",
            "structure",
            READ,
            lambda legacy: (
                pickled(
                    p_dict(
                        [
                            (p_text("model"), p_state_dict(_valid_pairs(legacy))),
                            (
                                p_text("optimizer"),
                                p_dict([(p_text("state"), p_int(5)), (p_text("param_groups"), p_text("x"))]),
                            ),
                        ]
                    )
                ),
                VALID_STORAGES,
            ),
            "an optimizer entry whose state and param_groups are not containers",
        ),
        PickleAttack(
            "trailing-garbage",
            "structure",
            EITHER,
            lambda legacy: (state_pickle(legacy)[0] + b"\xffgarbage", VALID_STORAGES),
            "bytes after STOP",
            containers=("zip",),
        ),
    ]


def _sharing_attacks() -> list[PickleAttack]:
    return [
        _refused("tuple-dag-alone", "sharing", _alone(tuple_dag()), "x = (x, x), 64 levels: 130 opcodes"),
        PickleAttack(
            "tuple-dag", "sharing", EITHER, _beside(tuple_dag()), "a 64-level tuple DAG beside tensors"
        ),
        PickleAttack(
            "list-dag", "sharing", EITHER, _beside(list_dag()), "a 64-level list DAG beside tensors"
        ),
        PickleAttack(
            "dict-dag", "sharing", EITHER, _beside(dict_dag()), "a 64-level dict DAG beside tensors"
        ),
        PickleAttack(
            "tensor-dag",
            "sharing",
            EITHER,
            lambda legacy: state_pickle(
                legacy, (p_text("dag"), tuple_dag(leaf=p_tensor("0", (3, 2), legacy=legacy)))
            ),
            "2**64 paths to one tensor",
        ),
        PickleAttack(
            "dag-as-dict-key",
            "sharing",
            EITHER,
            _beside(EMPTY_DICT + list_dag() + p_int(1) + SETITEM),
            "a dict whose key is a 64-level list DAG (unhashable: repr walks it)",
        ),
        PickleAttack(
            "tuple-dag-as-dict-key",
            "sharing",
            EITHER,
            _beside(EMPTY_DICT + tuple_dag() + p_int(1) + SETITEM),
            "a dict whose key is a 64-level tuple DAG (hash walks it)",
        ),
        PickleAttack(
            "list-contains-itself",
            "sharing",
            EITHER,
            _beside(EMPTY_LIST + p_put(200) + p_get(200) + APPEND),
            "a list that contains itself",
        ),
        PickleAttack(
            "dict-contains-itself",
            "sharing",
            EITHER,
            _beside(EMPTY_DICT + p_put(200) + p_text("self") + p_get(200) + SETITEM),
            "a dict that contains itself",
        ),
        _refused("tensor-named-200k-times", "sharing", _many_names(200_000), "200,000 names of one tensor"),
        PickleAttack(
            "tensor-named-5k-times",
            "sharing",
            READ,
            _many_names(5_000),
            "5,000 names of one tensor (tied weights)",
        ),
        PickleAttack(
            "duplicate-key-100k",
            "sharing",
            READ,
            _many_names(100_000, same_key=True),
            "one key set 100,000 times",
        ),
        PickleAttack(
            "overlapping-views",
            "sharing",
            READ,
            lambda legacy: state_pickle(
                legacy,
                (p_text("view.a"), p_tensor("0", (4,), numel=6, legacy=legacy)),
                (p_text("view.b"), p_tensor("0", (4,), numel=6, offset=2, legacy=legacy)),
            ),
            "two views of one storage",
        ),
    ]


def _caps_attacks() -> list[PickleAttack]:
    big = {"containers": ("zip",), "compress": True}
    return [
        PickleAttack(
            "opcodes-10m",
            "caps",
            EITHER,
            _opcode_stream(NONE + POP, 5_000_000, lambda rng: p_int(rng.randrange(256)) + POP),
            "10M opcodes (None, POP) before the state dict, under the opcode cap",
            **big,
        ),
        PickleAttack(
            "stack-5m",
            "caps",
            EITHER,
            _stack_of(5_000_000),
            "5M empty lists and dicts left on the stack (no MARK: no nesting limit applies)",
            **big,
        ),
        PickleAttack("memo-5m", "caps", EITHER, _memo_of(5_000_000), "5M memo entries", **big),
        PickleAttack(
            "nested-100k",
            "caps",
            EITHER,
            _beside(_nested_lists(100_000)),
            "a list nested 100,000 deep, built without MARK",
        ),
        _refused(
            "marks-300",
            "caps",
            _alone(MARK * 300 + TUPLE * 300),
            "tuples nested 300 deep (MARK)",
        ),
        _refused(
            "binbytes8-2pow40",
            "caps",
            _alone(b"\x8e" + struct.pack("<Q", 2**40) + b"tiny"),
            "BINBYTES8 declaring 1 TB, holding 4 bytes",
        ),
        _refused(
            "binunicode-4gb",
            "caps",
            _alone(b"X" + struct.pack("<I", 2**32 - 1) + b"tiny"),
            "BINUNICODE declaring 4 GB, holding 4 bytes",
        ),
    ]


def _output_attacks() -> list[PickleAttack]:
    named = [
        PickleAttack(f"name-{key}", "output", EITHER, _named(name), f"a tensor name with {key}")
        for key, name in HOSTILE_NAMES.items()
    ]
    return [
        *named,
        PickleAttack(
            "name-invalid-utf8",
            "output",
            EITHER,
            lambda legacy: state_pickle(
                legacy, (p_raw_text(b"layer\xff\xfe.weight"), p_tensor("0", (3, 2), legacy=legacy))
            ),
            "a BINUNICODE name that is not UTF-8",
        ),
        PickleAttack(
            "name-binstring-escape",
            "output",
            EITHER,
            lambda legacy: state_pickle(
                legacy, (b"U\x0bl\x1b[31mred.w", p_tensor("0", (3, 2), legacy=legacy))
            ),
            "a SHORT_BINSTRING name with an escape sequence (decoded as latin-1)",
        ),
        PickleAttack(
            "name-3000-levels",
            "output",
            EITHER,
            _named(".".join(["a"] * 3000)),
            "a dotted name 3,000 levels deep",
        ),
        PickleAttack(
            "name-2000-levels",
            "output",
            EITHER,
            _named(".".join(["a"] * 2000)),
            "a dotted name 2,000 levels deep (under the name-length cap)",
        ),
        PickleAttack("name-100kb", "output", EITHER, _named("a" * 100_000 + ".weight"), "a 100 KB name"),
        PickleAttack("name-dots", "output", EITHER, _named("." * 50), "a name of 50 dots"),
        PickleAttack(
            "names-collide-escaped",
            "output",
            EITHER,
            lambda legacy: state_pickle(
                legacy,
                (p_text("x\n.w"), p_tensor("0", (3, 2), legacy=legacy)),
                (p_text("x\\x0a.w"), p_tensor("1", (3,), legacy=legacy)),
            ),
            "two names equal once escaped",
        ),
        PickleAttack(
            "name-prefix-of-another",
            "output",
            READ,
            lambda legacy: state_pickle(legacy, (p_text("fc"), p_tensor("0", (3, 2), legacy=legacy))),
            "a tensor named like the module of another",
        ),
    ]


def _trojan_attacks(marker: Path) -> list[PickleAttack]:
    """Payloads beside real tensors are read with a malicious verdict; those without tensors,
    or in place of a storage type, are refused, the refusal naming what they reach."""
    touch = f"touch {marker}"
    trojans = [
        ("os-system-beside-tensors", MALICIOUS, _beside(_os_system(touch)), "os.system"),
        ("os-system-top-level", MALICIOUS, _alone(_os_system(touch)), "os.system"),
        (
            "os-system-stack-global",
            REFUSED,  # it leaves the names on the stack: a malformed pickle
            lambda legacy: (
                b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93" + p_text(touch) + b"\x85R.",
                {},
            ),
            "os.system",
        ),
        (
            "os-system-from-memo",
            MALICIOUS,
            _beside(
                p_global("os", "system") + p_put(250) + POP + p_get(250) + p_tuple(p_text(touch)) + REDUCE
            ),
            "os.system",
        ),
        (
            "os-system-storage-type",
            REFUSED,
            _bad_raw(
                storage=_pid(
                    p_text("storage"), p_global("os", "system"), p_text("2"), p_text("cpu"), p_int(4)
                )
            ),
            "os.system",
        ),
        (
            "os-system-inst",
            MALICIOUS,
            _alone(MARK + f"S'{touch}'\n".encode() + b"ios\nsystem\n"),
            "os.system",
        ),
        (
            "eval-in-optimizer",
            MALICIOUS,
            lambda legacy: (
                pickled(
                    p_dict(
                        [
                            (p_text("model"), p_state_dict(_valid_pairs(legacy))),
                            (
                                p_text("optimizer"),
                                p_dict(
                                    [(p_text("state"), p_call(p_global("builtins", "eval"), p_text("1")))]
                                ),
                            ),
                        ]
                    )
                ),
                VALID_STORAGES,
            ),
            "builtins.eval",
        ),
    ]
    return [
        PickleAttack(name, "trojan", expect, build, f"{phrase} hidden in a checkpoint", phrase=phrase)
        for name, expect, build, phrase in trojans
    ]


def _named(name: str) -> Callable[[bool], tuple[bytes, dict]]:
    return lambda legacy: state_pickle(legacy, (p_text(name), p_tensor("0", (3, 2), legacy=legacy)))


def torch_pickle_cases(marker: Path) -> Iterator[Case]:
    for attack in pickle_attacks(marker):
        for container in attack.containers:
            legacy = container == "legacy"
            pickle, storages = attack.build(legacy)
            data = legacy_torch(pickle, storages) if legacy else torch_zip(pickle, storages, attack.compress)
            yield Case(
                f"torch-{container}-{attack.name}",
                attack.kind,
                f"torch-{container}",
                attack.expect,
                "model.pt",
                {"model.pt": data},
                phrase=attack.phrase,
                note=attack.note,
            )


def torch_container_cases() -> Iterator[Case]:
    """Attacks on the containers themselves: zip members, legacy storage records."""
    yield from _torch_zip_container_cases()
    yield from _torch_legacy_container_cases()


def _torch_zip_container_cases() -> Iterator[Case]:
    """Zip members that lie: nested or duplicate pickles, bombs, sizes past the file."""
    pickle, storages = state_pickle(False)

    def zip_case(name: str, kind: str, expect: str, data: bytes, note: str) -> Case:
        return Case(f"torch-zip-{name}", kind, "torch-zip", expect, "model.pt", {"model.pt": data}, note=note)

    base = torch_zip(pickle, storages)
    yield zip_case(
        "two-data-pkl",
        "structure",
        REFUSED,
        zip_bytes([*zip_members(base), ("other/data.pkl", pickle)]),
        "two */data.pkl",
    )
    yield zip_case(
        "data-pkl-nested",
        "structure",
        REFUSED,
        zip_bytes([("a/b/data.pkl", pickle), *((f"a/b/data/{k}", v) for k, v in storages.items())]),
        "data.pkl two folders deep",
    )
    yield zip_case(
        "storage-is-folder",
        "structure",
        REFUSED,
        zip_bytes(
            [("archive/data.pkl", pickle), ("archive/data/0/", b""), ("archive/data/1", storages["1"])]
        ),
        "a storage member that is a folder entry",
    )
    yield zip_case("json-data-pkl", "structure", REFUSED, torch_zip(b'{"a": 1}'), "data.pkl holding JSON")
    yield zip_case(
        "version-999",
        "structure",
        EITHER,
        zip_bytes([(n, b"999\n" if n.endswith("version") else d) for n, d in zip_members(base)]),
        "a format version from the future",
    )
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * 30_000_000)
    yield zip_case("data-pkl-bomb", "caps", REFUSED, bomb.getvalue(), "30 MB of zeros deflated 1000x")
    yield zip_case(
        "data-pkl-declares-300mb",
        "caps",
        REFUSED,
        patch_central(base, "archive/data.pkl", file_size=300 * MiB),
        "data.pkl's directory entry declares 300 MB",
    )
    yield zip_case(
        "data-pkl-size-lie",
        "structure",
        REFUSED,
        patch_central(base, "archive/data.pkl", file_size=1),
        "data.pkl's directory entry declares 1 byte (the CRC of what is read then fails)",
    )
    zeros = io.BytesIO()
    with zipfile.ZipFile(zeros, "w") as archive:
        archive.writestr("archive/data.pkl", pickled(p_state_dict([(p_text("w"), p_tensor("0", (2**20,)))])))
        archive.writestr("archive/data/0", b"\0" * 4 * 2**20, compress_type=zipfile.ZIP_DEFLATED)
    yield zip_case(
        "storage-deflated-1000x",
        "caps",
        EITHER,
        zeros.getvalue(),
        "a 4 MB storage of zeros deflated to 4 KB (torch writes storages stored)",
    )
    lie = torch_zip(
        pickled(p_state_dict([(p_text("w"), p_tensor("0", (2**30 - 1,)))])), {"0": float_bytes(4)}
    )
    yield zip_case(
        "storage-size-lie",
        "integers",
        REFUSED,
        patch_central(lie, "archive/data/0", file_size=2**32 - 4, compress_size=2**32 - 4),
        "a 16-byte storage whose directory entry declares 4 GB",
    )
    yield zip_case(
        "members-10k",
        "caps",
        EITHER,
        zip_bytes([*zip_members(base), *((f"archive/x/{i}", b"") for i in range(10_000))]),
        "10,000 empty members beside a valid checkpoint",
    )


def _torch_legacy_container_cases() -> Iterator[Case]:
    """Storage records that lie: counts past the end, missing records, a bad magic number."""
    _, storages = state_pickle(False)

    def legacy_case(name: str, kind: str, expect: str, data: bytes, note: str) -> Case:
        return Case(
            f"torch-legacy-{name}", kind, "torch-legacy", expect, "model.pt", {"model.pt": data}, note=note
        )

    legacy_pickle, _ = state_pickle(True)
    yield legacy_case(
        "record-2pow62-elements",
        "integers",
        REFUSED,
        legacy_torch(legacy_pickle, storages, numels={"0": 2**62}),
        "a storage record declaring 2**62 elements",
    )
    yield legacy_case(
        "record-negative",
        "integers",
        REFUSED,
        legacy_torch(legacy_pickle, storages, numels={"0": -1}),
        "a storage record declaring -1 elements",
    )
    yield legacy_case(
        "storages-past-the-end",
        "integers",
        REFUSED,
        legacy_torch(legacy_pickle, storages)[:-20],
        "the last storage record ends past the end of the file",
    )
    yield legacy_case(
        "storage-record-missing",
        "structure",
        REFUSED,
        legacy_torch(legacy_pickle, {"0": storages["0"]}),
        "a tensor whose storage has no record",
    )
    yield legacy_case(
        "keys-not-a-list",
        "structure",
        REFUSED,
        legacy_header() + legacy_pickle + pickled(p_dict([(p_text("0"), p_int(1))])),
        "the storage keys pickle is a dict",
    )
    yield legacy_case(
        "keys-50k",
        "caps",
        REFUSED,
        legacy_header() + legacy_pickle + pickled(p_list([p_text(str(i)) for i in range(50_000)])),
        "50,000 storage keys and no records",
    )
    yield legacy_case(
        "bad-magic",
        "structure",
        REFUSED,
        pickled(b"\x8a\x0a" + (LEGACY_MAGIC + 1).to_bytes(10, "little"))
        + legacy_torch(legacy_pickle, storages)[16:],
        "the magic number plus one",
    )


class _SystemCall:
    """Pickles as ``os.system(command)``: what a trojaned checkpoint carries."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def torch_saved_cases(marker: Path) -> Iterator[Case]:
    """Files torch.save writes: controls, a trojaned checkpoint, and truncations of both layouts."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    state = model.state_dict()

    def saved(obj, legacy: bool = False) -> bytes:
        buffer = io.BytesIO()
        torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
        return buffer.getvalue()

    moments = {
        i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p)}
        for i, p in enumerate(model.parameters())
    }
    optimizer = {"state": moments, "param_groups": [{"lr": 0.001, "params": list(moments)}]}  # Adam's layout
    controls = {
        "torch-zip-state-dict": saved(state),
        "torch-legacy-state-dict": saved(state, legacy=True),
        "torch-zip-checkpoint": saved({"model": state, "optimizer": optimizer, "epoch": 3}),
        "torch-zip-handmade": torch_zip(*state_pickle(False)),
        "torch-legacy-handmade": legacy_torch(*state_pickle(True)),
    }
    for name, data in controls.items():
        fmt = "torch-legacy" if "legacy" in name else "torch-zip"
        yield Case(name, "control", fmt, READ, "model.pt", {"model.pt": data}, note="a valid checkpoint")
    payload = {"model": state, "on_load": _SystemCall(f"touch {marker}")}
    trojan_zip = zip_bytes(
        [(n, d.replace(b"cposix\nsystem\n", b"cos\nsystem\n")) for n, d in zip_members(saved(payload))]
    )
    trojan_legacy = saved(payload, legacy=True).replace(b"cposix\nsystem\n", b"cos\nsystem\n")
    for fmt, data in (("torch-zip", trojan_zip), ("torch-legacy", trojan_legacy)):
        yield Case(
            f"{fmt}-trojaned-checkpoint",
            "trojan",
            fmt,
            MALICIOUS,
            "model.pt",
            {"model.pt": data},
            phrase="os.system",
            note="real tensors saved by torch plus an os.system global",
        )
    yield from truncations("torch-zip", "model.pt", controls["torch-zip-state-dict"], zip_boundaries)
    yield from truncations("torch-legacy", "model.pt", controls["torch-legacy-state-dict"], legacy_boundaries)


# ----------------------------------------------------------------------------------------
# Truncations at structural boundaries.
# ----------------------------------------------------------------------------------------


def truncations(
    fmt: str,
    target: str,
    data: bytes,
    boundaries: Callable[[bytes], list[tuple[str, int]]],
    expect: str = REFUSED,
    companions: dict[str, bytes] | None = None,
) -> Iterator[Case]:
    """``data`` cut at each of its structural boundaries (a point named once, cuts < len)."""
    seen: set[int] = set()
    for label, cut in boundaries(data):
        if not 0 <= cut < len(data) or cut in seen:
            continue
        seen.add(cut)
        yield Case(
            f"{fmt}-cut-{label}",
            "truncation",
            fmt,
            expect,
            target,
            {target: data[:cut], **(companions or {})},
            note=f"cut at byte {cut:,} of {len(data):,} ({label})",
        )


def zip_boundaries(data: bytes) -> list[tuple[str, int]]:
    """Each member's local header and data, the central directory, each entry, the end record."""
    points = [("empty", 0), ("magic", 4)]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    for i, info in enumerate(infos):
        name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_length + extra_length
        points += [(f"member{i}-header", info.header_offset), (f"member{i}-data", start)]
        if i == 0:
            points += [("member0-mid-header", info.header_offset + 15), ("member0-mid-data", start + 3)]
    end = data.rfind(b"PK\x05\x06")
    directory = struct.unpack_from("<I", data, end + 16)[0]
    points.append(("directory", directory))
    at, entry = directory, 0
    while data[at : at + 4] == b"PK\x01\x02":
        points.append((f"entry{entry}", at))
        lengths = struct.unpack_from("<HHH", data, at + 28)
        at, entry = at + 46 + sum(lengths), entry + 1
    return [*points, ("end-record", end), ("end-record-mid", end + 11), ("last-byte", len(data) - 1)]


def legacy_boundaries(data: bytes) -> list[tuple[str, int]]:
    """Between the pickles, at a few opcodes of the object's pickle, inside the storage records."""
    import pickletools

    stream, points, ends = io.BytesIO(data), [("empty", 0)], []
    for index in range(5):
        start = stream.tell()
        positions = [pos for _, _, pos in pickletools.genops(stream)]
        ends.append(stream.tell())
        points.append((f"pickle{index}", start))
        if index == 3:  # the object: a handful of opcode boundaries inside it
            step = max(1, len(positions) // 6)
            points += [(f"pickle3-opcode{i}", start + p) for i, p in enumerate(positions[1::step])]
    records = ends[-1]  # element count (int64) and bytes of each storage, in turn
    points += [("records", records), ("record-count", records + 4), ("record-data", records + 8)]
    points.append(("records-middle", (records + len(data)) // 2))
    return [*points, ("last-byte", len(data) - 1)]


# ----------------------------------------------------------------------------------------
# safetensors and sharded indexes.
# ----------------------------------------------------------------------------------------

F32_PAIR = st_entry()  # F32 [2] at [0, 8]
EIGHT_BYTES = b"\0" * 8


def _st_case(name: str, kind: str, expect: str, data: bytes, note: str, target="model.safetensors") -> Case:
    return Case(f"safetensors-{name}", kind, "safetensors", expect, target, {target: data}, note=note)


def _st_one(entry: dict | str, data: bytes = EIGHT_BYTES, name: str = "w") -> bytes:
    """A header of one tensor; a str entry is spliced in as raw JSON."""
    if isinstance(entry, str):
        return safetensors_bytes(f'{{"{name}": {entry}}}'.encode(), data)
    return safetensors_bytes({name: entry}, data)


def _json_of_empty_objects(count: int) -> str:
    return "[" + ",".join(["{}"] * count) + "]"


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def safetensors_cases() -> Iterator[Case]:
    from safetensors.numpy import save

    valid = save({"embed.weight": np.ones((4, 3), np.float32), "embed.bias": np.zeros(4, np.float16)})
    yield _st_case("valid", "control", READ, valid, "written by safetensors")
    yield from _safetensors_field_cases()
    yield from _safetensors_sharing_and_caps_cases()
    yield from _safetensors_output_cases(valid)
    yield from truncations("safetensors", "model.safetensors", valid, safetensors_boundaries)


def _safetensors_field_cases() -> Iterator[Case]:
    """Every field of the header with a hostile value."""
    header = _st_one(F32_PAIR)[8:-8]
    integers = {
        "header-length-2pow64-1": (
            safetensors_bytes(header, EIGHT_BYTES, 2**64 - 1),
            "a header length of 2**64-1",
        ),
        "header-length-2pow63": (safetensors_bytes(header, EIGHT_BYTES, 2**63), "a header length of 2**63"),
        "header-length-past-end": (
            safetensors_bytes(header, EIGHT_BYTES, len(header) + 1000),
            "a header length past the end",
        ),
        "header-length-zero": (safetensors_bytes(header, EIGHT_BYTES, 0), "a header length of 0"),
        "shape-2pow64": (_st_one(st_entry(shape=[2**64])), "a dimension of 2**64"),
        "shape-product-2pow124": (_st_one(st_entry(shape=[2**62, 2**62])), "a shape of 2**124 elements"),
        "shape-negative": (_st_one(st_entry(shape=[-2])), "a dimension of -2"),
        "shape-negative-pair": (_st_one(st_entry(shape=[-1, -2])), "dimensions -1 and -2 (product 2)"),
        "shape-4301-digits": (
            _st_one('{"dtype": "F32", "shape": [' + "9" * 4301 + '], "data_offsets": [0, 8]}'),
            "a 4,301-digit dimension",
        ),
        "shape-1e400": (
            _st_one('{"dtype": "F32", "shape": [1e400], "data_offsets": [0, 8]}'),
            "a dimension of 1e400 (inf)",
        ),
        "shape-float": (
            _st_one('{"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}'),
            "a dimension 2.0",
        ),
        "shape-true": (
            _st_one('{"dtype": "F32", "shape": [true, 2], "data_offsets": [0, 8]}'),
            "a dimension true",
        ),
        "shape-65-dims": (_st_one(st_entry(shape=[1] * 64 + [2])), "65 dimensions"),
        "shape-zero-and-2pow70": (_st_one(st_entry(shape=[0, 2**70], offsets=(0, 0)), b""), "[0, 2**70]"),
        "offsets-2pow64": (_st_one(st_entry(offsets=(2**64, 2**64 + 8))), "offsets past 2**64"),
        "offsets-negative": (_st_one(st_entry(offsets=(-8, 0))), "offsets [-8, 0]"),
        "offsets-float": (
            _st_one('{"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8.0]}'),
            "float offsets",
        ),
        "offsets-reversed": (_st_one(st_entry(offsets=(8, 0))), "offsets [8, 0]"),
        "offsets-one": (_st_one('{"dtype": "F32", "shape": [2], "data_offsets": [0]}'), "one offset"),
        "offsets-text": (
            _st_one('{"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}'),
            "text offsets",
        ),
        "data-past-the-end": (
            _st_one(st_entry(shape=[2**61], offsets=(0, 2**63))),
            "8 EiB of data in 8 bytes",
        ),
    }
    for name, (data, note) in integers.items():
        yield _st_case(name, "integers", REFUSED, data, note)
    structure = {
        "header-list": (safetensors_bytes(b"[]"), REFUSED, "a header that is a list"),
        "entry-list": (_st_one("[1, 2]"), REFUSED, "an entry that is a list"),
        "entry-text": (_st_one('"F32"'), REFUSED, "an entry that is a string"),
        "dtype-list": (
            _st_one('{"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}'),
            REFUSED,
            "dtype list",
        ),
        "dtype-null": (
            _st_one('{"dtype": null, "shape": [2], "data_offsets": [0, 8]}'),
            REFUSED,
            "dtype null",
        ),
        "shape-dict": (
            _st_one('{"dtype": "F32", "shape": {"0": 2}, "data_offsets": [0, 8]}'),
            REFUSED,
            "shape dict",
        ),
        "shape-text": (
            _st_one('{"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}'),
            REFUSED,
            "shape text",
        ),
        "shape-missing": (_st_one('{"dtype": "F32", "data_offsets": [0, 8]}'), REFUSED, "no shape"),
        "offsets-dict": (
            _st_one('{"dtype": "F32", "shape": [2], "data_offsets": {}}'),
            REFUSED,
            "offsets dict",
        ),
        "extra-key": (_st_one({**F32_PAIR, "extra": 1}), EITHER, "an unknown key in an entry"),
        "metadata-list": (
            safetensors_bytes({"__metadata__": [1], "w": F32_PAIR}, EIGHT_BYTES),
            REFUSED,
            "__metadata__ that is a list",
        ),
        "metadata-nested": (
            safetensors_bytes({"__metadata__": {"a": {"b": 1}}, "w": F32_PAIR}, EIGHT_BYTES),
            REFUSED,
            "a __metadata__ value that is an object",
        ),
        "header-not-utf8": (
            safetensors_bytes(b'{"w\xff": ' + json.dumps(F32_PAIR).encode() + b"}", EIGHT_BYTES),
            REFUSED,
            "a name that is not UTF-8",
        ),
        "header-padded": (
            safetensors_bytes(json.dumps({"w": F32_PAIR}).encode() + b"       ", EIGHT_BYTES),
            READ,
            "a header padded with spaces, as the reference writer pads it",
        ),
        "duplicate-key": (
            safetensors_bytes(
                b'{"w": ' + json.dumps(F32_PAIR).encode() + b', "w": ' + json.dumps(F32_PAIR).encode() + b"}",
                EIGHT_BYTES,
            ),
            REFUSED,
            "the same name twice",
        ),
    }
    for name, (data, expect, note) in structure.items():
        yield _st_case(name, "structure", expect, data, note)
    for name in ("", ".", "..", "a..b", "a.", ".a"):
        label = {"": "empty", ".": "dot", "..": "dotdot"}.get(name, name.replace(".", "dot"))
        yield _st_case(
            f"name-{label}", "structure", EITHER, _st_one(F32_PAIR, name=name), f"the name {name!r}"
        )
    yield _st_case(
        "name-and-prefix",
        "structure",
        READ,
        safetensors_bytes({"fc": F32_PAIR, "fc.weight": st_entry(offsets=(8, 16))}, EIGHT_BYTES * 2),
        "a tensor named like the module of another",
    )


def _safetensors_sharing_and_caps_cases() -> Iterator[Case]:
    """Names repeated, bytes shared, JSON that costs more than its size, a 64 GB hole."""
    entry = b'"x":{"dtype":"U8","shape":[],"data_offsets":[0,1]}'
    yield _st_case(
        "duplicate-names-100k",
        "sharing",
        REFUSED,
        safetensors_bytes(b"{" + b",".join([entry] * 100_000) + b"}", b"\0"),
        "one name 100,000 times",
    )
    same = b",".join(b'"%x":{"dtype":"U8","shape":[],"data_offsets":[0,1]}' % i for i in range(20_000))
    yield _st_case(
        "same-offsets-20k",
        "sharing",
        REFUSED,
        safetensors_bytes(b"{" + same + b"}", b"\0"),
        "20,000 names, one byte",
    )
    for count, expect in ((1_900_000, EITHER), (2_100_000, REFUSED)):
        shape = _json_of_empty_objects(count)
        yield _st_case(
            f"json-{count // 100_000 / 10:g}m-empty-objects",
            "caps",
            expect,
            _st_one('{"dtype": "F32", "shape": ' + shape + ', "data_offsets": [0, 8]}'),
            f"a shape of {count:,} empty objects",
        )
    yield _st_case(
        "json-nested-100k",
        "caps",
        REFUSED,
        _st_one('{"dtype": "F32", "shape": ' + _deep_json(100_000) + ', "data_offsets": [0, 8]}'),
        "a shape nested 100,000 deep",
    )
    sparse_header = safetensors_bytes({"w": st_entry(shape=[2**34], offsets=(0, 2**36))})
    yield Case(
        "safetensors-sparse-64gb",
        "caps",
        "safetensors",
        READ,
        "model.safetensors",
        {"model.safetensors": sparse_header},
        sparse={"model.safetensors": len(sparse_header) + 2**36},
        note="a valid 64 GB file (a hole on disk): read without reading its data",
    )


def _safetensors_output_cases(valid: bytes) -> Iterator[Case]:
    """Names and file names that would forge the terminal."""
    for key, name in HOSTILE_NAMES.items():
        yield _st_case(f"name-{key}", "output", EITHER, _st_one(F32_PAIR, name=name), f"a name with {key}")
    long_names = {
        "name-3000-levels": ".".join(["a"] * 3000),
        "name-2000-levels": ".".join(["a"] * 2000),
        "name-100kb": "a" * 100_000,
    }
    for label, name in long_names.items():
        yield _st_case(label, "output", EITHER, _st_one(F32_PAIR, name=name), label.replace("-", " "))
    yield _st_case(
        "names-collide-escaped",
        "output",
        EITHER,
        safetensors_bytes({"x\n.w": F32_PAIR, "x\\x0a.w": st_entry(offsets=(8, 16))}, EIGHT_BYTES * 2),
        "two names equal once escaped",
    )
    yield _st_case(
        "metadata-escapes",
        "output",
        READ,
        safetensors_bytes({"__metadata__": {"\x1b[2J": "\x1b]0;pwned\x07"}, "w": F32_PAIR}, EIGHT_BYTES),
        "metadata with escape sequences",
    )
    for label, filename in (
        ("filename-escape", "model\x1b[2J.safetensors"),
        ("filename-newline", "a\nINJECTED.safetensors"),
    ):
        yield _st_case(label, "output", READ, valid, f"a valid file named {filename!r}", target=filename)


def safetensors_boundaries(data: bytes) -> list[tuple[str, int]]:
    length = struct.unpack_from("<Q", data)[0]
    end = 8 + length
    points = [("empty", 0), ("length", 4), ("header", 8), ("header-first-byte", 9)]
    points += [("header-middle", 8 + length // 2), ("header-last-byte", end - 1), ("data", end)]
    header = json.loads(data[8:end])
    ends = sorted(entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__")
    points += [(f"tensor{i}-end", end + offset) for i, offset in enumerate(ends[:-1])]
    return [*points, ("last-byte", len(data) - 1)]


SHARD = safetensors_bytes({"a": F32_PAIR, "b": st_entry(offsets=(8, 16))}, EIGHT_BYTES * 2)
INDEX = "model.safetensors.index.json"


def _index_case(
    name: str, kind: str, expect: str, index: dict | bytes, note: str, shards: dict | None = None, **kw
) -> Case:
    raw = index if isinstance(index, bytes) else json.dumps(index).encode()
    files = {INDEX: raw, **({"s.safetensors": SHARD} if shards is None else shards)}
    return Case(f"index-{name}", kind, "safetensors-index", expect, INDEX, files, note=note, **kw)


def weight_map(shard: object, names=("a", "b"), **extra) -> dict:
    return {**extra, "weight_map": dict.fromkeys(names, shard)}


def index_cases() -> Iterator[Case]:
    yield _index_case("valid", "control", READ, weight_map("s.safetensors"), "a one-shard index")
    yield Case(
        "index-folder",
        "control",
        "safetensors-index",
        READ,
        "checkpoint",
        {
            f"checkpoint/{INDEX}": json.dumps(weight_map("s.safetensors")).encode(),
            "checkpoint/s.safetensors": SHARD,
        },
        note="the folder of an index, given as the path",
    )
    yield from _index_shard_name_cases()
    yield from _index_content_cases()
    valid = json.dumps(weight_map("s.safetensors")).encode()
    yield from truncations(
        "safetensors-index", INDEX, valid, json_boundaries, companions={"s.safetensors": SHARD}
    )
    yield _index_case(
        "shard-truncated",
        "truncation",
        REFUSED,
        weight_map("s.safetensors"),
        "a shard cut in its header",
        {"s.safetensors": SHARD[:20]},
    )


def _index_shard_name_cases() -> Iterator[Case]:
    """Shard names that are not bare file names, and shards that are not regular files."""
    bad_names = {
        "shard-int": (5, "a shard name that is 5"),
        "shard-null": (None, "a shard name that is null"),
        "shard-list": (["s.safetensors"], "a shard name that is a list"),
        "shard-empty": ("", "an empty shard name"),
        "shard-dot": (".", "the shard name '.'"),
        "shard-dotdot": ("..", "the shard name '..'"),
        "shard-subfolder": ("sub/s.safetensors", "a shard in a subfolder"),
        "shard-absolute": ("/etc/passwd", "an absolute shard path"),
        "shard-nul": ("s\0.safetensors", "a shard name with NUL"),
        "shard-lone-surrogate": ("\ud800.safetensors", "a shard name with a lone surrogate"),
        "shard-100kb-name": ("a" * 100_000, "a 100 KB shard name"),
        "shard-missing": ("nope.safetensors", "a shard that does not exist"),
    }
    for name, (shard, note) in bad_names.items():
        shards = {"s.safetensors": SHARD, "sub/s.safetensors": SHARD}
        yield _index_case(name, "structure", REFUSED, weight_map(shard), note, shards)
    yield _index_case(
        "weight-map-list", "structure", REFUSED, {"weight_map": ["a"]}, "a weight map that is a list"
    )
    yield _index_case(
        "index-not-object",
        "structure",
        REFUSED,
        b'{"weight_map": {"a": "s.safetensors"}',
        "unterminated JSON",
    )
    yield _index_case(
        "shard-is-folder",
        "special",
        REFUSED,
        weight_map("d.safetensors"),
        "a shard that is a folder",
        {"d.safetensors/keep": b""},
    )
    yield _index_case(
        "shard-fifo",
        "special",
        REFUSED,
        weight_map("f.safetensors"),
        "a shard that is a FIFO",
        {},
        specials={"f.safetensors": "fifo"},
    )
    yield _index_case(
        "shard-dev-zero",
        "special",
        REFUSED,
        weight_map("z.safetensors"),
        "a shard linked to /dev/zero",
        {},
        links={"z.safetensors": "/dev/zero"},
    )
    yield _index_case(
        "shard-bad-header",
        "integers",
        REFUSED,
        weight_map("s.safetensors"),
        "a shard whose header length is 2**64-1",
        {"s.safetensors": safetensors_bytes(b"{}", b"", 2**64 - 1)},
    )


def _index_content_cases() -> Iterator[Case]:
    """Sizes, names, shared shards and JSON costs of the index itself."""
    for label, total in (("2pow70", 2**70), ("negative", -5)):
        yield _index_case(
            f"total-size-{label}",
            "integers",
            EITHER,
            weight_map("s.safetensors", metadata={"total_size": total}),
            f"a total_size of {total}",
        )
    yield _index_case(
        "total-size-4301-digits",
        "integers",
        EITHER,
        b'{"metadata": {"total_size": ' + b"9" * 4301 + b'}, "weight_map": {"a": "s.safetensors"}}',
        "a 4,301-digit total_size",
    )
    yield _index_case(
        "metadata-list",
        "structure",
        EITHER,
        weight_map("s.safetensors", metadata=[1]),
        "metadata that is a list",
    )
    yield _index_case(
        "name-not-in-shard",
        "structure",
        REFUSED,
        weight_map("s.safetensors", names=("a", "c")),
        "a name the shard lacks",
    )
    yield _index_case(
        "tensor-in-two-shards",
        "sharing",
        EITHER,
        {"weight_map": {"a": "s.safetensors", "b": "t.safetensors"}},
        "both shards hold both tensors",
        {"s.safetensors": SHARD, "t.safetensors": SHARD},
    )
    yield _index_case(
        "names-50k-one-shard",
        "caps",
        REFUSED,
        weight_map("s.safetensors", names=[f"t{i}" for i in range(50_000)]),
        "50,000 names the one shard lacks",
    )
    yield _index_case(
        "shards-20k-missing",
        "caps",
        REFUSED,
        {"weight_map": {f"t{i}": f"{i}.safetensors" for i in range(20_000)}},
        "20,000 shards that do not exist",
    )
    count = 2_000
    many = safetensors_bytes({f"t{i}": st_entry("U8", [], (i, i + 1)) for i in range(count)}, b"\0" * count)
    yield _index_case(
        "one-shard-2k-links",
        "sharing",
        EITHER,
        {"weight_map": {f"t{i}": f"{i}.safetensors" for i in range(count)}},
        "2,000 shard names, each a link to one shard of 2,000 tensors: its header parsed 2,000 times",
        {"all.safetensors": many},
        links={f"{i}.safetensors": "all.safetensors" for i in range(count)},
    )
    yield _index_case(
        "json-nested-100k",
        "caps",
        REFUSED,
        ('{"weight_map": ' + _deep_json(100_000) + "}").encode(),
        "a weight map nested 100,000 deep",
    )
    yield _index_case(
        "json-1.9m-empty-objects",
        "caps",
        EITHER,
        (
            '{"metadata": {"x": '
            + _json_of_empty_objects(1_900_000)
            + '}, "weight_map": {"a": "s.safetensors"}}'
        ).encode(),
        "1.9M empty objects in the metadata",
    )
    yield _index_case(
        "name-escape",
        "output",
        EITHER,
        {"weight_map": {"a\x1b[2J": "s.safetensors"}},
        "an escape sequence in a name the shard lacks",
    )


def json_boundaries(data: bytes) -> list[tuple[str, int]]:
    return [("empty", 0), ("first-byte", 1), ("middle", len(data) // 2), ("last-byte", len(data) - 1)]


# ----------------------------------------------------------------------------------------
# NumPy .npy and .npz.
# ----------------------------------------------------------------------------------------


def _npy_case(
    name: str, kind: str, expect: str, data: bytes, note: str, target: str = "array.npy", **kw
) -> Case:
    return Case(f"npy-{name}", kind, "npy", expect, target, {target: data}, note=note, **kw)


def _npy(shape: str, descr: str = "'<f4'", data: bytes = EIGHT_BYTES, **kw) -> bytes:
    return npy_bytes(npy_header(descr, shape), data, **kw)


def saved_npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_cases(marker: Path) -> Iterator[Case]:
    valid = saved_npy(np.ones((2, 3, 4), np.float16))
    yield _npy_case("valid", "control", READ, valid, "written by numpy")
    integers = {
        "shape-2pow64": (_npy("(18446744073709551616,)"), "a dimension of 2**64"),
        "shape-product-2pow124": (_npy("(4611686018427387904, 4611686018427387904)"), "2**124 elements"),
        "shape-negative": (_npy("(-1,)"), "a dimension of -1"),
        "shape-negative-pair": (_npy("(-1, -2)"), "dimensions -1 and -2 (product 2)"),
        "shape-4301-digits": (_npy("(" + "9" * 4301 + ",)"), "a 4,301-digit dimension"),
        "shape-past-the-end": (_npy("(1000000000000000000,)"), "1e18 floats in 8 bytes"),
        "data-missing": (_npy("()", "'<f8'", b""), "a scalar without its 8 bytes"),
        "data-short": (_npy("(100,)", data=b"\0" * 40), "100 floats in 40 bytes"),
        "header-length-4gb": (
            b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + npy_header("'<f4'", "(2,)").encode(),
            "a version 2 header length of 4 GB",
        ),
        "header-length-65535": (
            b"\x93NUMPY\x01\x00" + struct.pack("<H", 65535) + npy_header("'<f4'", "(2,)").encode(),
            "a header length past the end",
        ),
        "version-9": (b"\x93NUMPY\x09\x09" + _npy("(2,)")[8:], "format version 9.9"),
        "dtype-void-2gb": (_npy("(4,)", "'|V2147483648'"), "4 items of a 2 GB void dtype"),
        "dtype-subarray-2pow40": (
            _npy("(1,)", "('<f4', (1099511627776,))"),
            "a 2**40-element subarray dtype",
        ),
        "dtype-unicode-1g": (_npy("(2,)", "'<U1073741824'"), "2 strings of 1G characters"),
    }
    for name, (data, note) in integers.items():
        yield _npy_case(name, "integers", REFUSED, data, note)
    nested = "'<f4'"
    for _ in range(150):
        nested = f"[('a', {nested})]"
    structure = {
        "header-list": (npy_bytes("[1, 2]", EIGHT_BYTES), REFUSED, "a header that is a list"),
        "header-missing-descr": (
            npy_bytes("{'fortran_order': False, 'shape': (2,), }", EIGHT_BYTES),
            REFUSED,
            "no descr",
        ),
        "shape-list": (_npy("[2]"), EITHER, "a shape that is a list"),
        "fortran-order-text": (
            npy_bytes(npy_header("'<f4'", "(2,)", "'yes'"), EIGHT_BYTES),
            REFUSED,
            "'yes'",
        ),
        "header-nested-parens": (_npy("(" * 5000 + ")" * 5000), REFUSED, "5,000 nested parentheses"),
        "dtype-nested-150": (_npy("()", nested, b"\0" * 4), EITHER, "a structured dtype nested 150 deep"),
        "header-100kb": (
            npy_bytes(npy_header("'<f4'", "(2,)") + " " * 100_000, EIGHT_BYTES, (2, 0)),
            EITHER,
            "a version 2 header of 100 KB",
        ),
    }
    for name, (data, expect, note) in structure.items():
        yield _npy_case(name, "structure", expect, data, note)
    yield _npy_case(
        "header-calls-os-system",
        "trojan",
        REFUSED,
        npy_bytes(f"__import__('os').system('touch {marker}')", EIGHT_BYTES),
        "a header that is a call, not a literal",
    )
    yield _npy_case(
        "object-array-os-system",
        "trojan",
        MALICIOUS,
        saved_npy(np.array([_SystemCall(f"touch {marker}")], dtype=object), allow_pickle=True),
        "an object array whose pickle calls os.system",
        phrase=f"{os.system.__module__}.system",
    )
    header = _npy("(17179869184,)", data=b"")
    yield Case(
        "npy-sparse-64gb",
        "caps",
        "npy",
        READ,
        "array.npy",
        {"array.npy": header},
        sparse={"array.npy": len(header) + 2**36},
        note="a valid 64 GB array (a hole on disk): read without reading its data",
    )
    for label, filename in (
        ("filename-escape", "a\x1b[2J\x1b]0;pwned\x07.npy"),
        ("filename-newline", "a\nINJECTED.npy"),
    ):
        yield _npy_case(label, "output", READ, valid, f"a valid file named {filename!r}", target=filename)
    yield from truncations("npy", "array.npy", valid, npy_boundaries)


def npy_boundaries(data: bytes) -> list[tuple[str, int]]:
    length = struct.unpack_from("<H", data, 8)[0]
    end = 10 + length
    points = [("empty", 0), ("magic", 6), ("version", 8), ("header", 10), ("header-middle", 10 + length // 2)]
    return [
        *points,
        ("header-end", end - 1),
        ("data", end),
        ("data-middle", (end + len(data)) // 2),
        ("last-byte", len(data) - 1),
    ]


def _npz_case(name: str, kind: str, expect: str, data: bytes, note: str, **kw) -> Case:
    return Case(f"npz-{name}", kind, "npz", expect, "arrays.npz", {"arrays.npz": data}, note=note, **kw)


def rename_member(data: bytes, old: str, new: bytes) -> bytes:
    """A member's name replaced by raw bytes of the same length (no UTF-8 flag: not UTF-8)."""
    assert len(old.encode()) == len(new)
    return data.replace(old.encode(), new)


def zip64_claim(data: bytes, entries: int) -> bytes:
    """A zip whose end records claim ``entries`` members through a zip64 record."""
    end = data.rfind(b"PK\x05\x06")
    size, offset = struct.unpack_from("<II", data, end + 12)
    record = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, end, 1)
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, size, offset, 0)
    return data[:end] + record + locator + eocd


def npz_cases(marker: Path) -> Iterator[Case]:
    buffer = io.BytesIO()
    np.savez(buffer, weight=np.zeros((3, 4), np.float32), steps=np.arange(5))
    valid = buffer.getvalue()
    yield _npz_case("valid", "control", READ, valid, "written by numpy")
    members = zip_members(valid)

    def with_member(name: str, data: bytes) -> bytes:
        return zip_bytes([*members, (name, data)])

    yield _npz_case(
        "shape-2pow64", "integers", REFUSED, with_member("x.npy", _npy("(18446744073709551616,)")), "2**64"
    )
    yield _npz_case(
        "shape-negative", "integers", REFUSED, with_member("x.npy", _npy("(-4,)")), "a dimension of -4"
    )
    yield _npz_case(
        "member-too-short",
        "integers",
        REFUSED,
        with_member("x.npy", _npy("(1000000,)")),
        "1e6 floats in 8 bytes",
    )
    yield _npz_case(
        "object-member-os-system",
        "trojan",
        MALICIOUS,
        with_member("x.npy", saved_npy(np.array([_SystemCall(f"touch {marker}")], dtype=object), True)),
        "an object array whose pickle calls os.system",
        phrase=f"{os.system.__module__}.system",
    )
    names = {
        "member-traversal": ("../evil.npy", REFUSED, "structure"),
        "member-absolute": ("/abs.npy", REFUSED, "structure"),
        "member-empty-name": (".npy", EITHER, "structure"),
        "member-escape": ("a\x1b[2J\x1b]0;pwned\x07.npy", EITHER, "output"),
        "member-newline": ("a\nINJECTED.npy", EITHER, "output"),
        "member-3000-levels": ("/".join(["a"] * 3000) + ".npy", EITHER, "output"),
        "member-60kb-name": ("a" * 60_000 + ".npy", EITHER, "output"),
    }
    for label, (name, expect, kind) in names.items():
        yield _npz_case(label, kind, expect, with_member(name, _npy("(2,)")), f"a member named {name[:40]!r}")
    yield _npz_case(
        "member-invalid-utf8",
        "output",
        EITHER,
        rename_member(with_member("xx.npy", _npy("(2,)")), "xx.npy", b"\xff\x1b.npy"),
        "a member name of raw bytes (cp437 by the zip rules)",
    )
    yield _npz_case(
        "member-folder-entry",
        "structure",
        EITHER,
        with_member("x.npy/", b""),
        "a folder entry ending in .npy/",
    )
    yield _npz_case(
        "duplicate-members-20k",
        "sharing",
        REFUSED,
        zip_bytes([*members, *(("x.npy", b"") for _ in range(20_000))]),
        "one member name 20,000 times",
    )
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("big.npy", "w") as member:
        member.write(_npy("(16777216,)", data=b""))
        zeros = b"\0" * MiB
        for _ in range(64):
            member.write(zeros)
    yield _npz_case(
        "member-deflated-1000x", "caps", EITHER, bomb.getvalue(), "64 MB of float32 zeros deflated to 64 KB"
    )
    yield _npz_case(
        "zip64-2pow60-entries", "integers", REFUSED, zip64_claim(valid, 2**60), "2**60 members claimed"
    )
    end = valid.rfind(b"PK\x05\x06")
    lie = bytearray(valid)
    struct.pack_into("<HH", lie, end + 8, 1, 1)
    yield _npz_case(
        "end-record-count-lie", "structure", EITHER, bytes(lie), "the end record counts 1 of 2 members"
    )
    yield _npz_case(
        "member-offset-past-end",
        "integers",
        REFUSED,
        patch_central(valid, "weight.npy", header_offset=2**31),
        "a member whose local header lies at 2 GB",
    )
    yield _npz_case(
        "method-99", "structure", REFUSED, patch_central(valid, "weight.npy", method=99), "method 99"
    )
    yield _npz_case(
        "encrypted", "structure", REFUSED, patch_central(valid, "weight.npy", flags=1), "encrypted flag"
    )
    for label, method in (("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA)):
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w", method) as archive:
            for name, data in members:
                archive.writestr(name, data)
        yield _npz_case(
            f"{label}-members", "structure", READ, packed.getvalue(), f"members compressed with {label}"
        )
    commented = valid[:-2] + struct.pack("<H", 26) + b"PK\x05\x06" + b"\xff" * 22
    yield _npz_case(
        "comment-fake-end-record", "structure", EITHER, commented, "a comment holding a fake end record"
    )
    yield from truncations("npz", "arrays.npz", valid, zip_boundaries)


# ----------------------------------------------------------------------------------------
# GGUF.
# ----------------------------------------------------------------------------------------


def _gguf_case(name: str, kind: str, expect: str, data: bytes, note: str, target="model.gguf", **kw) -> Case:
    return Case(f"gguf-{name}", kind, "gguf", expect, target, {target: data}, note=note, **kw)


def _gguf_kv(key: str, value_type: int, value: bytes) -> bytes:
    """A valid model with one more key/value."""
    return gguf_model(extra_kvs=[g_kv(key, value_type, value)])


def _gguf_tensor(name: bytes | str = "w", dims=(4, 2), ggml_type: int = 0, offset: int = 0, **kw) -> bytes:
    """A model of one tensor with these (hostile) fields and 32 bytes of data."""
    kvs = [g_kv("general.architecture", GGUF_STRING, g_string("llama"))]
    return gguf_bytes(kvs, [g_tensor(name, list(dims), ggml_type, offset, **kw)], float_bytes(8))


def gguf_cases() -> Iterator[Case]:
    from tests.files.onnx_gguf import write_gguf

    with tempfile.TemporaryDirectory() as folder:
        write_gguf(Path(folder) / "m.gguf")
        written = (Path(folder) / "m.gguf").read_bytes()
    yield _gguf_case("valid", "control", READ, written, "written by gguf.GGUFWriter")
    yield _gguf_case("handmade", "control", READ, gguf_model(["a.weight", "b.weight"]), "assembled here")
    yield from _gguf_field_cases()
    yield from _gguf_count_and_file_cases()
    yield from _gguf_output_cases()
    yield from truncations("gguf", "model.gguf", written, gguf_boundaries)


def _gguf_field_cases() -> Iterator[Case]:
    """Every header field, key/value and tensor info with a hostile value."""
    one = gguf_model()
    integers = {
        "tensor-count-2pow64-1": (gguf_model(counts=(2**64 - 1, 1)), "2**64-1 tensors declared"),
        "kv-count-2pow63": (gguf_model(counts=(1, 2**63)), "2**63 key/values declared"),
        "tensor-count-999999": (gguf_model(counts=(999_999, 1)), "999,999 tensors declared in 200 bytes"),
        "kv-count-999999": (gguf_model(counts=(1, 999_999)), "999,999 key/values declared in 200 bytes"),
        "key-length-2pow64-1": (
            gguf_model(extra_kvs=[g_string(b"k", 2**64 - 1) + u32(GGUF_U8) + b"\0"]),
            "a key of 2**64-1 bytes",
        ),
        "key-length-2pow40": (
            gguf_model(extra_kvs=[g_string(b"k", 2**40) + u32(GGUF_U8) + b"\0"]),
            "a 1 TB key",
        ),
        "string-length-2pow62": (_gguf_kv("x", GGUF_STRING, g_string(b"v", 2**62)), "a 2**62-byte string"),
        "array-2pow62-u8": (_gguf_kv("x", GGUF_ARRAY, u32(GGUF_U8) + u64(2**62) + b"\0" * 8), "2**62 bytes"),
        "array-2pow62-strings": (_gguf_kv("x", GGUF_ARRAY, u32(GGUF_STRING) + u64(2**62)), "2**62 strings"),
        "n-dims-2pow32-1": (_gguf_tensor(n_dims=2**32 - 1), "a tensor of 2**32-1 dimensions"),
        "n-dims-65": (_gguf_tensor(dims=[1] * 65), "65 dimensions"),
        "dim-2pow64-1": (_gguf_tensor(dims=[2**64 - 1]), "a dimension of 2**64-1"),
        "dims-product-2pow64": (_gguf_tensor(dims=[2**32, 2**32]), "2**64 elements (0 in uint64)"),
        "dims-product-2pow80": (_gguf_tensor(dims=[2**40, 2**40]), "2**80 elements"),
        "dims-past-the-end": (_gguf_tensor(dims=[2**30, 2]), "8 GB of floats in 32 bytes"),
        "offset-2pow63": (_gguf_tensor(offset=2**63), "data at 2**63"),
        "offset-past-end": (_gguf_tensor(offset=4096), "data past the end"),
        "offset-unaligned": (_gguf_tensor(offset=4), "data at offset 4 (alignment 32)"),
        "type-2pow32-1": (_gguf_tensor(ggml_type=2**32 - 1), "GGML type 2**32-1"),
        "type-removed": (_gguf_tensor(ggml_type=4), "GGML type 4 (Q4_2, removed)"),
        "value-type-13": (_gguf_kv("x", 13, b"\0" * 8), "key/value type 13"),
        "value-type-2pow32-1": (_gguf_kv("x", 2**32 - 1, b"\0" * 8), "key/value type 2**32-1"),
        "alignment-zero": (_gguf_kv("general.alignment", GGUF_U32, u32(0)), "an alignment of 0 (a divisor)"),
        "alignment-3": (_gguf_kv("general.alignment", GGUF_U32, u32(3)), "an alignment of 3"),
        "alignment-2pow31": (_gguf_kv("general.alignment", GGUF_U32, u32(2**31)), "an alignment of 2**31"),
        "version-1": (b"GGUF" + struct.pack("<I", 1) + one[8:], "version 1"),
        "version-2pow32-1": (b"GGUF" + struct.pack("<I", 2**32 - 1) + one[8:], "version 2**32-1"),
    }
    for name, (data, note) in integers.items():
        yield _gguf_case(name, "integers", REFUSED, data, note)
    nested_100 = u32(GGUF_ARRAY) + u64(1)
    structure = {
        "alignment-string": (
            _gguf_kv("general.alignment", GGUF_STRING, g_string("32")),
            EITHER,
            "text alignment",
        ),
        "alignment-negative": (
            _gguf_kv("general.alignment", GGUF_I32, struct.pack("<i", -32)),
            REFUSED,
            "-32",
        ),
        "bool-5": (_gguf_kv("x", GGUF_BOOL, b"\x05"), EITHER, "a boolean of 5"),
        "arrays-nested-100": (
            _gguf_kv("x", GGUF_ARRAY, nested_100 * 100 + u32(GGUF_U8) + u64(1) + b"\0"),
            EITHER,
            "arrays nested 100 deep",
        ),
        "arrays-nested-20k": (
            _gguf_kv("x", GGUF_ARRAY, nested_100 * 20_000 + u32(GGUF_U8) + u64(1) + b"\0"),
            EITHER,
            "arrays nested 20,000 deep",
        ),
        "duplicate-key": (
            gguf_model(extra_kvs=[g_kv("general.architecture", GGUF_STRING, g_string("llama"))]),
            REFUSED,
            "one key twice",
        ),
        "duplicate-tensor": (gguf_model(["w", "w"]), REFUSED, "one tensor name twice"),
        "overlapping-tensors": (
            gguf_bytes([], [g_tensor("a", [4, 2]), g_tensor("b", [4, 2])], float_bytes(16)),
            REFUSED,
            "two tensors at offset 0",
        ),
        "tensor-name-invalid-utf8": (_gguf_tensor(name=b"w\xff\xfe"), EITHER, "a name that is not UTF-8"),
        "key-invalid-utf8": (
            gguf_model(extra_kvs=[g_kv(b"k\xff", GGUF_U8, b"\0")]),
            EITHER,
            "a key not UTF-8",
        ),
    }
    for name, (data, expect, note) in structure.items():
        yield _gguf_case(name, "structure", expect, data, note)


def _gguf_count_and_file_cases() -> Iterator[Case]:
    """Many tensors or keys, a 64 GB hole, split files that are missing or FIFOs."""
    one = gguf_model()
    infos = [g_tensor(f"t{i}", [8], 0, 0) for i in range(50_000)]
    yield _gguf_case(
        "tensors-50k-one-offset",
        "sharing",
        REFUSED,
        gguf_bytes([], infos, float_bytes(8)),
        "50,000 tensors at the same 32 bytes",
    )
    kvs = [g_kv(f"k{i:x}", GGUF_U8, b"\0") for i in range(100_000)]
    yield _gguf_case(
        "kv-100k", "caps", EITHER, gguf_bytes(kvs, [g_tensor("w", [4, 2])], float_bytes(8)), "100k keys"
    )
    strings = u32(GGUF_STRING) + u64(300_000) + g_string(b"") * 300_000
    yield _gguf_case(
        "string-array-300k", "caps", EITHER, _gguf_kv("x", GGUF_ARRAY, strings), "300,000 strings"
    )
    sparse = gguf_bytes([], [g_tensor("w", [2**34], 0, 0)])
    yield _gguf_case(
        "sparse-64gb",
        "caps",
        READ,
        sparse,
        "a valid 64 GB file (a hole on disk): read without reading its data",
        sparse={"model.gguf": len(sparse) + 2**36},
    )
    first = "model-00001-of-00002.gguf"
    yield _gguf_case(
        "split-part-fifo",
        "special",
        REFUSED,
        one,
        "split part 2 is a FIFO",
        first,
        specials={"model-00002-of-00002.gguf": "fifo"},
    )
    yield _gguf_case("split-part-missing", "structure", REFUSED, one, "split part 2 is missing", first)
    yield _gguf_case("split-of-zero", "structure", REFUSED, one, "part 1 of 0", "model-00001-of-00000.gguf")
    yield _gguf_case("split-of-99999", "caps", REFUSED, one, "part 1 of 99,999", "model-00001-of-99999.gguf")


def _gguf_output_cases() -> Iterator[Case]:
    """Names that would forge the terminal, in reports and in refusals."""
    for key, name in HOSTILE_NAMES.items():
        yield _gguf_case(f"name-{key}", "output", EITHER, gguf_model([name]), f"a tensor name with {key}")
    architecture = g_kv("general.architecture", GGUF_STRING, g_string("\x1b[2Jllama\nINJECTED"))
    yield _gguf_case(
        "architecture-escape",
        "output",
        EITHER,
        gguf_bytes([architecture], [g_tensor("w", [4, 2])], float_bytes(8)),
        "general.architecture with escape sequences",
    )
    yield _gguf_case(
        "duplicate-tensor-escape",
        "output",
        REFUSED,
        gguf_model(["\n\x1b[2J\x1b]0;pwned\x07", "\n\x1b[2J\x1b]0;pwned\x07"]),
        "a duplicate tensor name with escape sequences (quoted by the refusal?)",
    )
    yield _gguf_case(
        "duplicate-key-escape",
        "output",
        REFUSED,
        gguf_model(extra_kvs=[g_kv("x\n\x1b[2J", GGUF_U8, b"\0")] * 2),
        "a duplicate key with escape sequences",
    )
    for label, name in (("name-3000-levels", ".".join(["a"] * 3000)), ("name-100kb", "a" * 100_000)):
        yield _gguf_case(label, "output", EITHER, gguf_model([name]), label.replace("-", " "))


def gguf_boundaries(data: bytes) -> list[tuple[str, int]]:
    """The header, each key/value, each tensor info, the data section and each tensor's data."""
    import gguf

    with tempfile.NamedTemporaryFile(suffix=".gguf") as handle:
        handle.write(data)
        handle.flush()
        reader = gguf.GGUFReader(handle.name)
        points = [("empty", 0), ("magic", 4), ("counts", 8)]
        points += [(f"kv-{name}", int(f.offset)) for name, f in reader.fields.items() if f.offset > 8]
        points += [(f"tensor-info{i}", int(t.field.offset)) for i, t in enumerate(reader.tensors)]
        points += [("data", int(reader.data_offset))]
        points += [
            (f"tensor{i}-data-middle", int(t.data_offset) + int(t.n_bytes) // 2)
            for i, t in enumerate(reader.tensors)
        ]
    return [*points, ("last-byte", len(data) - 1)]


# ----------------------------------------------------------------------------------------
# ONNX: valid files from onnx.helper, hostile ones as protobuf fields.
# ----------------------------------------------------------------------------------------


def _onnx_case(name: str, kind: str, expect: str, data: bytes, note: str, **kw) -> Case:
    files = {"model.onnx": data, **kw.pop("files", {})}
    return Case(f"onnx-{name}", kind, "onnx", expect, "model.onnx", files, note=note, **kw)


def onnx_model(*initializers: bytes, **graph) -> bytes:
    return pb_model(pb_graph(list(initializers), **graph))


def _external(location: bytes, length: int | None = None) -> bytes:
    """data_location = EXTERNAL (14) and its external_data entries (13: key 1, value 2)."""
    entries = pb_field(13, pb_field(1, b"location") + pb_field(2, location))
    if length is not None:
        entries += pb_field(13, pb_field(1, b"length") + pb_field(2, str(length).encode()))
    return entries + pb_field(14, 1)


def _nested_graphs(levels: int, name_length: int, leaves: list[bytes]) -> bytes:
    """Graphs nested ``levels`` deep through If nodes with long names; ``leaves`` innermost."""
    graph = pb_graph(leaves)
    for level in range(levels):
        graph = pb_graph([], nodes=[pb_if_node(f"n{level}".encode() + b"x" * name_length, graph)])
    return pb_model(graph)


def onnx_cases() -> Iterator[Case]:
    from tests.files.onnx_gguf import write_onnx

    with tempfile.TemporaryDirectory() as folder:
        write_onnx(Path(folder) / "m.onnx")
        written = (Path(folder) / "m.onnx").read_bytes()
    yield _onnx_case("valid", "control", READ, written, "written by onnx.helper")
    w = pb_tensor("w", [3, 2], raw=float_bytes(6))
    yield _onnx_case("handmade", "control", READ, onnx_model(w), "assembled here")
    integers = {
        "dims-2pow63-squared": (pb_tensor("w", [2**63 - 1, 2**63 - 1]), "2**126 elements"),
        "dims-negative": (pb_tensor("w", [-1], raw=float_bytes(1)), "a dimension of -1"),
        "dims-min-int64": (pb_tensor("w", [-(2**63)]), "a dimension of -2**63"),
        "dims-65": (pb_tensor("w", [1] * 65, raw=float_bytes(1)), "65 dimensions"),
        "raw-data-short": (pb_tensor("w", [10**9], raw=float_bytes(1)), "1e9 floats in 4 bytes"),
        "no-data-2pow31": (pb_tensor("w", [2**31]), "2**31 floats and no data"),
        "float-data-short": (
            pb_tensor("w", [100], extra=pb_field(4, struct.pack("<2f", 1, 2))),
            "100 floats, 2 given",
        ),
    }
    for name, (tensor, note) in integers.items():
        yield _onnx_case(name, "integers", REFUSED, onnx_model(tensor), note)
    sparse = pb_field(1, pb_tensor("v", [1], raw=float_bytes(1))) + pb_field(
        2, pb_tensor("i", [1], 7, raw=b"\0" * 8)
    )
    sparse += pb_field(3, 2**40) * 2
    either = {
        "data-type-9999": (onnx_model(pb_tensor("w", [2], 9999, raw=EIGHT_BYTES)), "data type 9999"),
        "sparse-2pow80": (
            pb_model(pb_graph([], extra=pb_field(15, sparse))),
            "a sparse 2**40 x 2**40 tensor",
        ),
        "external-1tb": (
            onnx_model(pb_tensor("w", [2**38], extra=_external(b"w.bin", 2**40))),
            "1 TB of external data that is not there",
        ),
        "ir-version-2pow63": (pb_model(pb_graph([w]), ir_version=2**63), "an ir_version of 2**63"),
    }
    for name, (data, note) in either.items():
        yield _onnx_case(name, "integers", EITHER, data, note)
    attribute = pb_field(1, b"branches") + b"".join(pb_field(11, pb_graph([])) for _ in range(10_000))
    structure = {
        "graph-garbage": (pb_field(1, 8) + pb_field(7, b"\xff\xff\xff\xff"), REFUSED, "a graph of garbage"),
        "no-graph": (pb_field(1, 8) + pb_field(8, pb_field(2, 17)), REFUSED, "no graph"),
        "raw-and-float-data": (
            onnx_model(pb_tensor("w", [2], raw=EIGHT_BYTES, extra=pb_field(4, struct.pack("<2f", 1, 2)))),
            EITHER,
            "raw_data and float_data both",
        ),
        "external-no-location": (
            onnx_model(pb_tensor("w", [2], extra=pb_field(14, 1))),
            REFUSED,
            "no location",
        ),
        "external-nul": (
            onnx_model(pb_tensor("w", [2], extra=_external(b"w\0.bin"))),
            EITHER,
            "NUL in location",
        ),
        "external-traversal": (
            onnx_model(pb_tensor("w", [2], extra=_external(b"../../../../etc/passwd"))),
            REFUSED,
            "a location outside the folder",
        ),
        "subgraphs-10k": (
            pb_model(pb_graph([w], nodes=[pb_field(4, b"Loop") + pb_field(5, attribute)])),
            EITHER,
            "one attribute holding 10,000 graphs",
        ),
        "subgraphs-nested-40": (_nested_graphs(40, 1, [w]), EITHER, "graphs nested 40 deep"),
        "initializer-name-invalid-utf8": (
            onnx_model(pb_tensor(b"w\xff\xfe", [2], raw=EIGHT_BYTES)),
            EITHER,
            "not UTF-8",
        ),
    }
    for name, (data, expect, note) in structure.items():
        yield _onnx_case(name, "structure", expect, data, note)
    yield _onnx_case(
        "external-fifo",
        "special",
        EITHER,
        onnx_model(pb_tensor("w", [2], extra=_external(b"w.bin", 8))),
        "external data in a FIFO",
        specials={"w.bin": "fifo"},
    )
    same = pb_tensor("w", [2], raw=EIGHT_BYTES)
    yield _onnx_case(
        "initializers-100k-one-name", "sharing", EITHER, onnx_model(*[same] * 100_000), "100k x 'w'"
    )
    yield _onnx_case(
        "subgraph-prefix-blowup",
        "sharing",
        EITHER,
        _nested_graphs(30, 4000, [pb_tensor(f"w{i}", [1]) for i in range(20_000)]),
        "30 nested graphs under 4,000-character node names, 20,000 initializers inside",
    )
    tail = pb_field(1, 1) + pb_field(2, 1) + pb_field(9, b"\0" * 4)
    names = (f"w{i:x}".encode() for i in range(150_000))
    many = b"".join(pb_field(5, b"\x42" + bytes([len(name)]) + name + tail) for name in names)
    yield _onnx_case(
        "initializers-150k", "caps", EITHER, pb_model(pb_graph([], extra=many)), "150,000 initializers"
    )
    for key, name in HOSTILE_NAMES.items():
        tensor = pb_tensor(name, [2], raw=EIGHT_BYTES)
        yield _onnx_case(
            f"name-{key}", "output", EITHER, onnx_model(tensor), f"an initializer name with {key}"
        )
    yield _onnx_case(
        "graph-name-escape",
        "output",
        EITHER,
        onnx_model(w, name=b"\x1b[2J\x1b]0;pwned\x07g\nINJECTED"),
        "graph name",
    )
    yield _onnx_case(
        "node-name-escape",
        "output",
        EITHER,
        pb_model(pb_graph([], nodes=[pb_if_node(b"\x1b[2Jnode\nINJECTED", pb_graph([w]))])),
        "a subgraph under a node named with escape sequences",
    )
    for label, name in (("name-3000-levels", ".".join(["a"] * 3000)), ("name-100kb", "a" * 100_000)):
        yield _onnx_case(label, "output", EITHER, onnx_model(pb_tensor(name, [2], raw=EIGHT_BYTES)), label)
    yield from truncations("onnx", "model.onnx", written, onnx_boundaries(True), EITHER)
    yield from truncations("onnx", "model.onnx", written, onnx_boundaries(False), REFUSED)


def onnx_boundaries(between: bool) -> Callable[[bytes], list[tuple[str, int]]]:
    """Cuts between top-level fields (a shorter valid message: either outcome is right) or
    inside a field, at the top level or in the graph (a damaged message: refused)."""

    def points(data: bytes) -> list[tuple[str, int]]:
        fields = pb_fields(data)
        if between:
            return [(f"field{i}-start", start) for i, (start, _, _) in enumerate(fields) if start > 0]
        found = [
            (f"field{i}-inside", (payload + end) // 2)
            for i, (_, payload, end) in enumerate(fields)
            if end > payload
        ]
        graph = next((field for field in fields if data[field[0]] == 0x3A), None)
        if graph is not None:
            base = graph[1]
            for i, (start, payload, end) in enumerate(pb_fields(data[base : graph[2]])):
                found += [
                    (f"graph-field{i}-start", base + start),
                    (f"graph-field{i}-inside", base + (payload + end) // 2),
                ]
        return found

    return points


# ----------------------------------------------------------------------------------------
# Keras: .keras archives (HDF5 or npz weights), sharded weights, legacy .h5.
# ----------------------------------------------------------------------------------------

KERAS_LAYERS = [  # config.json's layers as Keras 3.15 writes them, initializers and dtypes left out
    {
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 6], "name": "input_layer"},
        "name": "input_layer",
    },
    {
        "class_name": "Dense",
        "config": {"name": "hidden", "trainable": True, "units": 5, "activation": "linear", "use_bias": True},
        "build_config": {"input_shape": [None, 6]},
        "name": "hidden",
    },
    {
        "class_name": "BatchNormalization",
        "config": {"name": "bn", "trainable": True, "axis": -1, "center": True, "scale": True},
        "build_config": {"input_shape": [None, 5]},
        "name": "bn",
    },
    {
        "class_name": "Reshape",
        "config": {"name": "reshape", "trainable": True, "target_shape": [5, 1]},
        "name": "reshape",
    },
    {
        "class_name": "Conv1D",
        "config": {
            "name": "conv",
            "trainable": True,
            "filters": 4,
            "kernel_size": [1],
            "groups": 1,
            "use_bias": True,
        },
        "build_config": {"input_shape": [None, 5, 1]},
        "name": "conv",
    },
    {
        "class_name": "Flatten",
        "config": {"name": "flatten", "trainable": True},
        "build_config": {"input_shape": [None, 5, 4]},
        "name": "flatten",
    },
    {
        "class_name": "Dense",
        "config": {"name": "head", "trainable": True, "units": 2, "activation": "linear", "use_bias": True},
        "build_config": {"input_shape": [None, 20]},
        "name": "head",
    },
]
KERAS_GROUPS = {  # weights-file group -> (layer name, variable shapes)
    "input_layer": ("input_layer", []),
    "dense": ("hidden", [(6, 5), (5,)]),
    "batch_normalization": ("bn", [(5,)] * 4),
    "reshape": ("reshape", []),
    "conv1d": ("conv", [(1, 1, 4), (4,)]),
    "flatten": ("flatten", []),
    "dense_1": ("head", [(20, 2), (2,)]),
}
KERAS_METADATA = {"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}


def keras_config(changes: dict[str, dict] | None = None, name: object = "functional") -> dict:
    """config.json, with some layers changed: ``{"hidden": {"units": 7, "class_name": [...]}}``
    (``class_name``, ``name`` and ``build_config`` are the layer entry's; the rest its config's)."""
    layers = json.loads(json.dumps(KERAS_LAYERS))
    for layer in layers:
        for key, value in (changes or {}).get(layer["name"], {}).items():
            if key in ("class_name", "build_config", "name"):
                layer[key] = value
            else:
                layer["config"][key] = value
    config = {"name": name, "trainable": True, "layers": layers, "input_layers": ["input_layer", 0, 0]}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": config}


def h5_bytes(write: Callable, libver: str | None = None) -> bytes:
    """An HDF5 file written by h5py: ``write(handle)`` fills it."""
    import h5py

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.h5"
        with h5py.File(path, "w", libver=libver) as handle:
            write(handle)
        return path.read_bytes()


def write_keras_weights(handle, groups: dict = KERAS_GROUPS) -> None:
    """Keras 3's weights layout: ``layers/<attribute>/vars/<i>``, each vars group named."""
    for segment, (name, shapes) in groups.items():
        group = handle.create_group(f"layers/{segment}/vars")
        group.attrs["name"] = name
        for index, shape in enumerate(shapes):
            group.create_dataset(str(index), data=np.zeros(shape, np.float32))
    handle.create_group("vars").attrs["name"] = "functional"


def keras_weights(extra: Callable | None = None, groups: dict = KERAS_GROUPS, libver=None) -> bytes:
    def write(handle) -> None:
        write_keras_weights(handle, groups)
        if extra is not None:
            extra(handle)

    return h5_bytes(write, libver)


def keras_archive(
    config: dict | bytes | None = None,
    weights: bytes | None = None,
    metadata: dict | bytes | None = None,
    weights_member: str = "model.weights.h5",
    compressed: tuple[str, ...] = (),
) -> bytes:
    """A .keras archive as Keras writes it: metadata.json, config.json, the weights (stored)."""

    def raw(value, default) -> bytes:
        value = default if value is None else value
        return value if isinstance(value, bytes) else json.dumps(value).encode()

    members = {
        "metadata.json": raw(metadata, KERAS_METADATA),
        "config.json": raw(config, keras_config()),
        weights_member: keras_weights() if weights is None else weights,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            method = zipfile.ZIP_DEFLATED if name in compressed else zipfile.ZIP_STORED
            archive.writestr(name, data, compress_type=method)
    return buffer.getvalue()


def streamed_member(name: str, pieces: Iterator[bytes], others: dict[str, bytes]) -> bytes:
    """A zip whose ``name`` member is deflated from ``pieces`` without holding it whole."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for other, data in others.items():
            archive.writestr(other, data)
        with archive.open(_deflating(name), "w", force_zip64=True) as member:
            for piece in pieces:
                member.write(piece)
    return buffer.getvalue()


def _deflating(info_name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(info_name)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def bomb_member(name: str, prefix: bytes, size: int, others: dict[str, bytes]) -> bytes:
    """``prefix`` then ``size`` bytes of spaces, deflated about 1000x, beside ``others``."""
    buffer = io.BytesIO()
    block = b" " * MiB
    with zipfile.ZipFile(buffer, "w") as archive:
        for other, data in others.items():
            archive.writestr(other, data)
        with archive.open(_deflating(name), "w", force_zip64=True) as member:
            member.write(prefix)
            for _ in range(size // MiB):
                member.write(block)
    return buffer.getvalue()


def vlen_bomb(write: Callable, where: str, attribute: str, count: int = 400, size: int = 1_000_003) -> bytes:
    """An HDF5 file with a variable-length string attribute of ``count`` elements that all
    point at one ``size``-byte heap object: 1 MB on disk, ``count`` MB once read. ``count``
    empty groups beside it, so that the names cannot be refused for outnumbering the objects.

    h5py writes one large and ``count - 1`` tiny strings; each element is stored as (length,
    heap collection, index), and we copy the large one's record over the others.
    """
    import h5py

    def fill(handle) -> None:
        write(handle)
        for index in range(count):
            handle.create_group(f"padding/{index}")
        values = ["x" * size] + ["abc"] * (count - 1)
        handle[where].attrs.create(attribute, values, dtype=h5py.string_dtype())

    data = bytearray(h5_bytes(fill))
    first, small = struct.pack("<I", size), struct.pack("<I", 3)
    at = data.find(first)
    while at >= 0 and data[at + 16 : at + 20] != small:
        at = data.find(first, at + 1)
    record = bytes(data[at : at + 16])
    for index in range(1, count):
        data[at + 16 * index : at + 16 * index + 16] = record
    return bytes(data)


def heap_free_space_cut(data: bytes) -> bytes:
    """An HDF5 file whose global heap's free-space object (index 0) is given the low byte of
    its size only: libhdf5 then never finishes reading the heap (found by Atheris).

    A collection is "GCOL", version, 3 reserved bytes and its size (8), then objects of
    (index 2, references 2, reserved 4, size 8) and their data padded to 8 bytes.
    """
    at = data.index(b"GCOL") + 16
    while True:
        index, _, _, size = struct.unpack_from("<HHIQ", data, at)
        if index == 0:
            return data[: at + 8] + struct.pack("<Q", size & 0xFF) + data[at + 16 :]
        at += 16 + (size + 7) // 8 * 8


def _keras_case(name: str, kind: str, expect: str, data: bytes, note: str, **kw) -> Case:
    return Case(f"keras-{name}", kind, "keras", expect, "model.keras", {"model.keras": data}, note=note, **kw)


WRONG_TYPES = {"list": [], "object": {}, "text": "x", "null": None}
RETYPED = {  # layer -> config keys replaced by a value of each wrong type
    "hidden": ("units", "use_bias", "trainable", "build_config"),
    "conv": ("filters", "kernel_size", "groups"),
    "bn": ("axis", "center"),
    "input_layer": ("batch_shape",),
}


def keras_cases() -> Iterator[Case]:
    valid = keras_archive()
    yield _keras_case("valid", "control", READ, valid, "config.json as Keras writes it, weights by h5py")
    yield from _keras_config_value_cases()
    yield from _keras_structure_cases()
    yield from _keras_sharing_cases()
    yield from _keras_caps_cases()
    yield from _keras_output_cases()
    yield from truncations("keras", "model.keras", valid, zip_boundaries)
    weights = keras_weights()
    for label, cut in hdf5_boundaries(weights):
        yield _keras_case(
            f"weights-cut-{label}",
            "truncation",
            REFUSED,
            keras_archive(weights=weights[:cut]),
            f"model.weights.h5 cut at byte {cut:,} of {len(weights):,}",
        )


def _keras_config_value_cases() -> Iterator[Case]:
    """Config values that are huge, negative, zero divisors or of the wrong JSON type."""
    config_integers = {
        "units-2pow70": ({"hidden": {"units": 2**70}}, "units 2**70 (contradicts the weights)"),
        "units-negative": ({"hidden": {"units": -5}}, "units -5"),
        "input-shape-2pow64": (
            {"hidden": {"build_config": {"input_shape": [None, 2**64]}}},
            "an input of 2**64",
        ),
        "filters-2pow64": ({"conv": {"filters": 2**64}}, "2**64 filters"),
        "kernel-size-2pow64": ({"conv": {"kernel_size": [2**64]}}, "a kernel of 2**64"),
        "groups-zero": ({"conv": {"groups": 0}}, "groups 0 (a divisor)"),
        "groups-negative": ({"conv": {"groups": -1}}, "groups -1"),
        "groups-2pow70": ({"conv": {"groups": 2**70}}, "groups 2**70"),
        "normalization-no-axes": (
            {"bn": {"class_name": "Normalization", "build_config": {"input_shape": []}}},
            "a Normalization built on a shape of no axes (a modulo by zero)",
        ),
        "einsum-equation-list": (
            {"hidden": {"class_name": "EinsumDense", "equation": ["ab,bc->ac"], "output_shape": 5}},
            "an EinsumDense whose equation is a list",
        ),
    }
    for name, (changes, note) in config_integers.items():
        yield _keras_case(name, "integers", EITHER, keras_archive(keras_config(changes)), note)
    yield _keras_case(
        "units-4301-digits",
        "integers",
        EITHER,
        keras_archive(json.dumps(keras_config()).replace('"units": 5', '"units": ' + "9" * 4301).encode()),
        "units of 4,301 digits",
    )

    def big_dataset(shape: tuple) -> Callable:
        return lambda handle: handle.create_dataset(
            "layers/dense/vars/2", shape=shape, dtype="f4", chunks=(16,) * len(shape)
        )

    yield _keras_case(
        "dataset-2pow47",
        "integers",
        EITHER,
        keras_archive(weights=keras_weights(big_dataset((2**47,)))),
        "a 512 TB dataset never written (chunks unallocated)",
    )
    yield _keras_case(
        "dataset-2pow80",
        "integers",
        REFUSED,
        keras_archive(weights=keras_weights(big_dataset((2**40, 2**40)))),
        "a dataset of 2**80 elements",
    )
    for layer, keys in RETYPED.items():
        for key in keys:
            for label, value in WRONG_TYPES.items():
                yield _keras_case(
                    f"{layer}-{key}-{label}".replace("_", "-"),
                    "structure",
                    EITHER,
                    keras_archive(keras_config({layer: {key: value}})),
                    f"{layer}'s {key} is {label}",
                )


def _keras_structure_cases() -> Iterator[Case]:
    """A config and weights whose structure is not what Keras writes."""
    structure = {
        "config-list": (keras_archive(b"[]"), REFUSED, "config.json is a list"),
        "config-config-list": (
            keras_archive({"class_name": "Functional", "config": []}),
            EITHER,
            "config is a list",
        ),
        "layers-object": (
            keras_archive({"class_name": "Functional", "config": {"name": "m", "layers": {}}}),
            EITHER,
            "layers is an object",
        ),
        "layer-entry-text": (
            keras_archive({"class_name": "Functional", "config": {"name": "m", "layers": ["x", 5, None]}}),
            EITHER,
            "layer entries that are not objects",
        ),
        "class-name-list": (
            keras_archive(keras_config({"hidden": {"class_name": ["Dense"]}})),
            EITHER,
            "a list",
        ),
        "class-name-object": (
            keras_archive(keras_config({"hidden": {"class_name": {}}})),
            EITHER,
            "an object",
        ),
        "layer-name-int": (keras_archive(keras_config({"hidden": {"name": 5}})), EITHER, "a layer named 5"),
        "layer-name-list": (
            keras_archive(keras_config({"hidden": {"name": ["x"]}})),
            EITHER,
            "a layer named []",
        ),
        "model-name-object": (keras_archive(keras_config(name={"a": 1})), EITHER, "the model named {}"),
        "trainable-text": (
            keras_archive(keras_config({"hidden": {"trainable": "false"}})),
            EITHER,
            "'false'",
        ),
        "wrapper-layer-list": (
            keras_archive(keras_config({"hidden": {"class_name": "Bidirectional", "layer": []}})),
            EITHER,
            "a Bidirectional wrapping a list",
        ),
        "metadata-list": (keras_archive(metadata=b"[]"), EITHER, "metadata.json is a list"),
        "metadata-version-list": (
            keras_archive(metadata={"keras_version": [3]}),
            EITHER,
            "keras_version is a list",
        ),
        "config-contradicts-weights": (
            keras_archive(keras_config({"hidden": {"units": 7}})),
            READ,
            "units 7 for a (6, 5) kernel",
        ),
        "weights-missing-layer": (
            keras_archive(
                weights=keras_weights(groups={k: v for k, v in KERAS_GROUPS.items() if k != "dense"})
            ),
            READ,
            "a configured layer without weights",
        ),
        "vars-subgroup": (
            keras_archive(weights=keras_weights(lambda h: h.create_group("layers/dense/vars/2"))),
            EITHER,
            "a group where a variable belongs",
        ),
        "vars-index-huge": (
            keras_archive(
                weights=keras_weights(lambda h: h.create_dataset("layers/dense/vars/" + "9" * 30, data=[1.0]))
            ),
            EITHER,
            "a variable index of 30 digits",
        ),
        "vars-name-array": (
            keras_archive(
                weights=keras_weights(lambda h: h["layers/dense/vars"].attrs.create("name", [1, 2]))
            ),
            EITHER,
            "a vars group whose name is an array",
        ),
        "weights-not-hdf5": (keras_archive(weights=b"garbage"), REFUSED, "model.weights.h5 is not HDF5"),
        "weights-deflated": (
            keras_archive(compressed=("model.weights.h5",)),
            READ,
            "weights deflated in the zip",
        ),
        "no-weights": (
            zip_bytes({"config.json": json.dumps(keras_config()).encode(), "model.weights.txt": b""}),
            REFUSED,
            "no weights member",
        ),
    }
    for name, (data, expect, note) in structure.items():
        yield _keras_case(name, "structure", expect, data, note)


def _keras_output_cases() -> Iterator[Case]:
    """Names, class names and versions that would forge the terminal."""
    hostile = "hid\x1b[2J\x1b]0;pwned\x07den\nINJECTED"
    output = {
        "layer-name-escape": keras_archive(
            keras_config({"hidden": {"name": hostile}}),
            keras_weights(groups={**KERAS_GROUPS, "dense": (hostile, [(6, 5), (5,)])}),
        ),
        "class-name-escape": keras_archive(
            keras_config({"hidden": {"class_name": "Dense\x1b[2J\nINJECTED"}})
        ),
        "keras-version-escape": keras_archive(metadata={"keras_version": "\x1b]0;pwned\x07\n3.15"}),
        "model-name-newline": keras_archive(keras_config(name="model\nINJECTED: line")),
        "group-name-escape": keras_archive(
            weights=keras_weights(groups={**KERAS_GROUPS, "de\x1b[2Jnse": ("x\x1b[31m", [(3,)])})
        ),
    }
    for name, data in output.items():
        yield _keras_case(name, "output", EITHER, data, name.replace("-", " "))


def hdf5_boundaries(data: bytes) -> list[tuple[str, int]]:
    """HDF5 has no linear layout: the signature, the superblock, and fractions of the file."""
    points = [("empty", 0), ("signature", 8), ("superblock", 48), ("root", 96)]
    points += [(f"{n}-eighths", len(data) * n // 8) for n in range(1, 8)]
    return [*points, ("last-byte", len(data) - 1)]


def _keras_sharing_cases() -> Iterator[Case]:
    def links(handle) -> None:
        group = handle["layers/dense/vars"].id
        for index in range(2, 100_000):
            group.links.create_hard(str(index).encode(), group, b"0")

    yield _keras_case(
        "hard-links-100k",
        "sharing",
        EITHER,
        keras_archive(weights=keras_weights(links, libver="latest")),
        "100,000 hard links to one dataset",
    )
    # 2,000, not more: libhdf5 costs ~0.25 ms per group, so 3,000 groups take 1.5-2 s of CPU
    # even in linear time, at the edge of the 2 s this corpus allows.
    many = {f"l{i}": (f"layer{i}", []) for i in range(2000)}
    yield _keras_case(
        "layer-groups-2000",
        "sharing",
        EITHER,
        keras_archive(weights=keras_weights(groups={**KERAS_GROUPS, **many}, libver="latest")),
        "2,000 layer groups (a walk over all groups per group is 8M steps)",
    )

    def dag(handle) -> None:
        below = handle.create_group("layers/dag0")
        for level in range(1, 41):
            group = handle.create_group(f"layers/dag{level}")
            group["a"], group["b"] = below, below
            below = group

    yield _keras_case(
        "group-dag-40",
        "sharing",
        EITHER,
        keras_archive(weights=keras_weights(dag)),
        "groups linked as a 40-level DAG",
    )
    yield _keras_case(
        "group-cycle",
        "sharing",
        EITHER,
        keras_archive(
            weights=keras_weights(lambda h: h["layers/dense/vars"].__setitem__("loop", h["layers"]))
        ),
        "a vars group linking back to layers/",
    )


def _keras_caps_cases() -> Iterator[Case]:
    config = json.dumps(keras_config()).encode()
    others = {"metadata.json": json.dumps(KERAS_METADATA).encode()}
    weights = keras_weights()
    yield _keras_case(
        "config-bomb",
        "caps",
        REFUSED,
        bomb_member("config.json", config[:-1], 60 * MiB, {**others, "model.weights.h5": weights}),
        "config.json padded with 60 MB of spaces, deflated 1000x",
    )
    yield _keras_case(
        "metadata-bomb",
        "caps",
        REFUSED,
        bomb_member("metadata.json", b"{", 60 * MiB, {"config.json": config, "model.weights.h5": weights}),
        "metadata.json of 60 MB of spaces, deflated 1000x",
    )
    rng = random.Random(1)
    block = b"".join(b" " * 300 + bytes(rng.choice(b" \t\r\n") for _ in range(6)) for _ in range(MiB // 306))
    padding = block * 90  # blocks repeat beyond deflate's 32 KB window: the ratio stays near 150
    yield _keras_case(
        "config-90mb-whitespace",
        "caps",
        EITHER,
        keras_archive(config[:-1] + padding + b"}", weights, compressed=("config.json",)),
        "config.json of 90 MB (whitespace), deflated about 150x: under the ratio and size caps",
    )
    values = b",".join(rng.choice((b"{}", b"[]")) for _ in range(100_000))
    objects = b"[" + b",".join([values] * 19) + b"]"
    yield _keras_case(
        "metadata-1.9m-values",
        "caps",
        EITHER,
        keras_archive(
            metadata=b'{"keras_version": "3.15.1", "x": ' + objects + b"}", compressed=("metadata.json",)
        ),
        "1.9M empty containers in metadata.json",
    )
    yield _keras_case(
        "config-1.9m-layers",
        "caps",
        EITHER,
        keras_archive(
            b'{"class_name": "Functional", "config": {"name": "m", "layers": ' + objects + b"}}",
            compressed=("config.json",),
        ),
        "1.9M empty layers",
    )
    yield _keras_case(
        "config-nested-100k",
        "caps",
        REFUSED,
        keras_archive(('{"class_name": "Functional", "config": ' + _deep_json(100_000) + "}").encode()),
        "config nested 100,000 deep",
    )
    for count in (400, 95):
        yield _keras_case(
            f"vlen-name-{count}mb",
            "caps",
            EITHER,
            keras_archive(weights=vlen_bomb(write_keras_weights, "layers/dense/vars", "name", count)),
            f"a vars group named by {count} references to one 1 MB string: {count} MB once read",
        )

    def zeros(handle) -> None:
        handle.create_dataset("layers/dense/vars/9", data=np.zeros(25 * MiB, np.float32))

    yield _keras_case(
        "weights-deflated-100mb",
        "caps",
        EITHER,
        keras_archive(weights=keras_weights(zeros), compressed=("model.weights.h5",)),
        "model.weights.h5 of 100 MB deflated 1000x (HDF5 seeks: zipfile re-inflates from the start)",
    )


# Keras npz weights: 0-d object arrays pickling {"0": Variable, ...}.

NPZ_OBJECT_HEADER = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"


def keras_variable(shape: bytes, dtype: bytes = b"", extra: list | None = None) -> bytes:
    """A Keras Variable as its pickle records it: NEWOBJ, then BUILD with ``_shape``/``_dtype``."""
    state = [(p_text("_shape"), shape), (p_text("_dtype"), dtype or p_text("float32")), *(extra or [])]
    return p_global("keras.src.backend", "Variable") + EMPTY_TUPLE + b"\x81" + p_dict(state) + BUILD


def npz_layer(variables: list[bytes], store: bytes | None = None) -> bytes:
    """One layer's .npy member: numpy's reconstruct of a 0-d object array holding the store."""
    store = p_dict([(p_text(str(i)), v) for i, v in enumerate(variables)]) if store is None else store
    array = p_call(
        p_global("numpy._core.multiarray", "_reconstruct"),
        p_global("numpy", "ndarray"),
        p_ints((0,)),
        b"C\x01b",
    )
    dtype = p_call(p_global("numpy", "dtype"), p_text("O8"), NEWFALSE, NEWTRUE)
    state = p_tuple(p_int(1), EMPTY_TUPLE, dtype, NEWFALSE, p_list([store]))
    return npy_bytes(NPZ_OBJECT_HEADER) + pickled(array + state + BUILD)


def npz_weights(overrides: dict[str, bytes] | None = None) -> bytes:
    members = {"__root__.npy": npz_layer([])}
    for segment, (_, shapes) in KERAS_GROUPS.items():
        members[f"layers/{segment}.npy"] = npz_layer([keras_variable(p_ints(s)) for s in shapes])
    members.update(overrides or {})
    return zip_bytes(members)


def _npz_keras(name: str, kind: str, expect: str, weights: bytes, note: str, phrase: str = "") -> Case:
    data = keras_archive(weights=weights, weights_member="model.weights.npz")
    return Case(
        f"keras-npz-{name}",
        kind,
        "keras-npz",
        expect,
        "model.keras",
        {"model.keras": data},
        phrase=phrase,
        note=note,
    )


def keras_npz_cases(marker: Path) -> Iterator[Case]:
    yield _npz_keras("valid", "control", READ, npz_weights(), "npz weights as Keras pickles them")

    def dense(*variables: bytes, store: bytes | None = None) -> bytes:
        return npz_weights({"layers/dense.npy": npz_layer(list(variables), store)})

    integers = {
        "shape-2pow64": dense(keras_variable(p_ints((2**64,)))),
        "shape-negative": dense(keras_variable(p_ints((-1, 5)))),
        "shape-4301-digits": dense(keras_variable(p_tuple(p_int(10**4300)))),
        "shape-product-2pow124": dense(keras_variable(p_ints((2**62, 2**62)))),
    }
    for name, weights in integers.items():
        yield _npz_keras(name, "integers", REFUSED, weights, name.replace("-", " "))
    structure = {
        "shape-dict": dense(keras_variable(p_dict([]))),
        "dtype-list": dense(keras_variable(p_ints((6, 5)), p_list([]))),
        "store-list": dense(store=p_list([])),
        "persistent-id": dense(p_tuple(p_text("storage")) + BINPERSID),
        "member-traversal": npz_weights({"../layers/dense.npy": npz_layer([])}),
    }
    for name, weights in structure.items():
        yield _npz_keras(name, "structure", REFUSED, weights, name.replace("-", " "))
    yield _npz_keras(
        "tuple-dag-attribute",
        "sharing",
        EITHER,
        dense(keras_variable(p_ints((6, 5)), extra=[(p_text("_dag"), tuple_dag())])),
        "a Variable with a 64-level tuple DAG among its attributes",
    )
    yield _npz_keras(
        "variables-20k",
        "caps",
        EITHER,
        dense(*[keras_variable(p_ints((1,)))] * 20_000),
        "a layer of 20,000 variables",
    )
    yield _npz_keras(
        "os-system",
        "trojan",
        REFUSED,
        npz_weights(
            {"layers/dense.npy": npy_bytes(NPZ_OBJECT_HEADER) + pickled(_os_system(f"touch {marker}"))}
        ),
        "os.system in a layer's pickle",
        phrase="os.system",
    )
    others = {name: data for name, data in zip_members(npz_weights()) if name != "layers/dense.npy"}
    layer = npz_layer([keras_variable(p_ints((6, 5)))])
    inner = streamed_member("layers/dense.npy", iter([layer, b"\0" * 50 * MiB]), others)
    yield _npz_keras(
        "member-padded-50mb", "caps", EITHER, inner, "a layer member padded with 50 MB of zeros after STOP"
    )
    valid = npz_weights()
    for label, cut in (("middle", len(valid) // 2), ("end-record", valid.rfind(b"PK\x05\x06"))):
        yield _npz_keras(
            f"weights-cut-{label}", "truncation", REFUSED, valid[:cut], f"model.weights.npz cut at {label}"
        )


SHARDS_INDEX = "model.weights.json"
SHARD_NAME = "model_00000.weights.h5"


def _shards_case(
    name: str, kind: str, expect: str, index: dict | bytes, note: str, shards=None, **kw
) -> Case:
    raw = index if isinstance(index, bytes) else json.dumps(index).encode()
    files = {SHARDS_INDEX: raw, **({SHARD_NAME: keras_weights()} if shards is None else shards)}
    return Case(f"keras-shards-{name}", kind, "keras-shards", expect, SHARDS_INDEX, files, note=note, **kw)


def shard_map(shard: object) -> dict:
    return {
        "metadata": {"total_size": 420},
        "weight_map": {f"/layers/{segment}/vars": [shard] for segment in KERAS_GROUPS},
    }


def keras_shard_cases() -> Iterator[Case]:
    yield _shards_case("valid", "control", READ, shard_map(SHARD_NAME), "an index and one shard")
    refused = {
        "weight-map-list": ({"weight_map": [SHARD_NAME]}, "a weight map that is a list"),
        "shard-int": (shard_map(5), "a shard name that is 5"),
        "shard-absolute": (shard_map("/etc/passwd"), "an absolute shard"),
        "shard-parent": (shard_map("../" + SHARD_NAME), "a shard in the parent folder"),
        "shard-nul": (shard_map("a\0.h5"), "NUL in a shard name"),
        "shard-lone-surrogate": (shard_map("\ud800.h5"), "a lone surrogate in a shard name"),
        "shard-100kb-name": (shard_map("a" * 100_000), "a 100 KB shard name"),
        "shard-not-hdf5": (shard_map("junk.h5"), "a shard that is not HDF5"),
        "index-nested-100k": (
            ('{"weight_map": ' + _deep_json(100_000) + "}").encode(),
            "nested 100,000 deep",
        ),
    }
    for name, (index, note) in refused.items():
        kind = "caps" if "nested" in name else "structure"
        yield _shards_case(
            name, kind, REFUSED, index, note, {SHARD_NAME: keras_weights(), "junk.h5": b"junk"}
        )
    yield _shards_case(
        "index-4301-digits",
        "integers",
        EITHER,
        b'{"metadata": {"total_size": '
        + b"9" * 4301
        + b"}, "
        + json.dumps(shard_map(SHARD_NAME))[1:].encode(),
        "a 4,301-digit total_size",
    )
    yield _shards_case(
        "index-1.9m-empty-objects",
        "caps",
        EITHER,
        b'{"x": '
        + _json_of_empty_objects(1_900_000).encode()
        + b", "
        + json.dumps(shard_map(SHARD_NAME))[1:].encode(),
        "1.9M empty objects beside the weight map",
    )
    yield _shards_case(
        "shard-fifo",
        "special",
        REFUSED,
        shard_map("f.h5"),
        "a shard that is a FIFO",
        {},
        specials={"f.h5": "fifo"},
    )
    yield _shards_case(
        "shard-dev-zero",
        "special",
        REFUSED,
        shard_map("z.h5"),
        "a shard linked to /dev/zero",
        {},
        links={"z.h5": "/dev/zero"},
    )
    keys = {f"/layers/x{i}/vars": [SHARD_NAME] for i in range(10_000)}
    yield _shards_case(
        "one-shard-10k-keys", "sharing", EITHER, {"weight_map": keys}, "one shard under 10,000 keys"
    )
    names = {f"/layers/x{i}/vars": [f"s{i}.h5"] for i in range(2_000)}
    yield _shards_case(
        "one-shard-2k-links",
        "sharing",
        EITHER,
        {"weight_map": names},
        "2,000 shard names, each a link to one shard: parsed 2,000 times",
        links={f"s{i}.h5": SHARD_NAME for i in range(2_000)},
    )
    yield _shards_case(
        "shard-truncated",
        "truncation",
        REFUSED,
        shard_map(SHARD_NAME),
        "a shard cut in half",
        {SHARD_NAME: keras_weights()[:2000]},
    )
    valid = json.dumps(shard_map(SHARD_NAME)).encode()
    yield from truncations(
        "keras-shards", SHARDS_INDEX, valid, json_boundaries, companions={SHARD_NAME: keras_weights()}
    )


LEGACY_WEIGHTS = {  # layer -> {weight: shape}, as Keras 3 saves a model to .h5
    "input_layer": {},
    "hidden": {"kernel": (6, 5), "bias": (5,)},
    "bn": {"gamma": (5,), "beta": (5,), "moving_mean": (5,), "moving_variance": (5,)},
    "reshape": {},
    "conv": {"kernel": (1, 1, 4), "bias": (4,)},
    "flatten": {},
    "head": {"kernel": (20, 2), "bias": (2,)},
}


def write_legacy_h5(
    handle, config: str | None = None, weight_names: dict | None = None, layers: dict = LEGACY_WEIGHTS
) -> None:
    """Keras's legacy .h5 layout: model_config, model_weights/<layer>/<layer>/<weight>."""
    import h5py

    strings = h5py.string_dtype()
    handle.attrs["keras_version"] = "3.15.1"
    handle.attrs["backend"] = "torch"
    handle.attrs["model_config"] = json.dumps(keras_config()) if config is None else config
    weights = handle.create_group("model_weights")
    weights.attrs.create("layer_names", list(layers), dtype=strings)
    for layer, variables in layers.items():
        group = weights.create_group(layer)
        names = (weight_names or {}).get(layer, [f"{layer}/{v}" for v in variables])
        if isinstance(names, np.ndarray):  # fixed-length strings, as Keras 2 wrote them
            group.attrs.create("weight_names", names)
        elif names:
            group.attrs.create("weight_names", names, dtype=strings)
        else:
            group.attrs.create("weight_names", np.zeros(0))
        for variable, shape in variables.items():
            group.create_dataset(f"{layer}/{variable}", data=np.zeros(shape, np.float32))


def legacy_h5(extra: Callable | None = None, libver: str | None = None, **kw) -> bytes:
    def write(handle) -> None:
        write_legacy_h5(handle, **kw)
        if extra is not None:
            extra(handle)

    return h5_bytes(write, libver)


def _h5_case(name: str, kind: str, expect: str, data: bytes, note: str) -> Case:
    return Case(f"h5-{name}", kind, "h5", expect, "model.h5", {"model.h5": data}, note=note)


def h5_cases() -> Iterator[Case]:
    import h5py

    valid = legacy_h5()
    yield _h5_case("valid", "control", READ, valid, "Keras's legacy layout, written by h5py")

    def attr(path: str, key: str, value) -> Callable:
        return lambda handle: handle[path].attrs.__setitem__(key, value)

    def dataset(path: str, shape: tuple) -> Callable:
        return lambda handle: handle.create_dataset(path, shape=shape, dtype="f4", chunks=(16,) * len(shape))

    cases = {
        "layer-names-int": (
            legacy_h5(attr("model_weights", "layer_names", 5)),
            "structure",
            EITHER,
            "an int",
        ),
        "layer-names-2d": (
            legacy_h5(attr("model_weights", "layer_names", np.array([[b"a", b"b"], [b"c", b"d"]]))),
            "structure",
            EITHER,
            "a 2-D array of names",
        ),
        "weight-names-missing": (
            legacy_h5(weight_names={"hidden": ["hidden/nothing"]}),
            "structure",
            REFUSED,
            "a weight that is not stored",
        ),
        "model-config-not-json": (legacy_h5(config="{not json"), "structure", REFUSED, "not JSON"),
        "model-config-list": (legacy_h5(config="[1, 2]"), "structure", EITHER, "a list"),
        "model-config-groups-zero": (
            legacy_h5(config=json.dumps(keras_config({"conv": {"groups": 0}}))),
            "structure",
            EITHER,
            "groups 0",
        ),
        "model-config-nested-100k": (
            legacy_h5(config=_deep_json(100_000)),
            "caps",
            REFUSED,
            "nested 100,000 deep",
        ),
        "model-config-4301-digits": (
            legacy_h5(config='{"class_name": "Functional", "config": {"x": ' + "9" * 4301 + "}}"),
            "integers",
            EITHER,
            "a 4,301-digit number",
        ),
        "dataset-2pow47": (
            legacy_h5(
                dataset("model_weights/hidden/hidden/extra", (2**47,)),
                weight_names={"hidden": ["hidden/extra"]},
            ),
            "integers",
            EITHER,
            "a 512 TB dataset never written",
        ),
        "dataset-2pow80": (
            legacy_h5(
                dataset("model_weights/hidden/hidden/extra", (2**40, 2**40)),
                weight_names={"hidden": ["hidden/extra"]},
            ),
            "integers",
            REFUSED,
            "2**80 elements",
        ),
        "weight-names-100k": (
            legacy_h5(weight_names={"hidden": np.array([b"hidden/kernel"] * 100_000)}, libver="latest"),
            "sharing",
            EITHER,
            "one dataset listed 100,000 times",
        ),
        "vlen-layer-names-400mb": (
            vlen_bomb(write_legacy_h5, "model_weights", "layer_names"),
            "caps",
            EITHER,
            "layer_names: 400 references to one 1 MB string",
        ),
        "vlen-layer-names-95mb": (
            vlen_bomb(write_legacy_h5, "model_weights", "layer_names", 95),
            "caps",
            EITHER,
            "layer_names: 95 references to one 1 MB string (under the 100 MB header cap)",
        ),
        "external-link": (
            legacy_h5(
                lambda h: h["model_weights/hidden/hidden"].__setitem__(
                    "x", h5py.ExternalLink("/etc/passwd", "/")
                )
            ),
            "special",
            REFUSED,
            "an external link",
        ),
        "soft-link": (
            legacy_h5(lambda h: h["model_weights/hidden/hidden"].__setitem__("x", h5py.SoftLink("/nowhere"))),
            "special",
            REFUSED,
            "a soft link",
        ),
        "external-storage": (
            legacy_h5(
                lambda h: h.create_dataset(
                    "model_weights/hidden/hidden/x", shape=(4,), dtype="f4", external=[("/dev/zero", 0, 16)]
                )
            ),
            "special",
            REFUSED,
            "a dataset stored in /dev/zero",
        ),
        "layer-names-escape": (
            legacy_h5(layers={**LEGACY_WEIGHTS, "hid\x1b[2Jden\nINJECTED": {"kernel": (6, 5)}}),
            "output",
            EITHER,
            "a layer (its group and its entry in layer_names) named with escape sequences",
        ),
        "keras-version-escape": (
            legacy_h5(attr("/", "keras_version", "\x1b]0;pwned\x07\n2.15")),
            "output",
            EITHER,
            "a keras_version attribute with escape sequences",
        ),
    }
    for name, (data, kind, expect, note) in cases.items():
        yield _h5_case(name, kind, expect, data, note)
    yield from truncations("h5", "model.h5", valid, hdf5_boundaries)


# ----------------------------------------------------------------------------------------
# Special files: made by the harness (FIFOs, sockets) or linked here.
# ----------------------------------------------------------------------------------------


def special_cases() -> Iterator[Case]:
    def special(name: str, target: str, note: str, **kw) -> Case:
        return Case(f"special-{name}", "special", "any", REFUSED, target, note=note, **kw)

    yield special(
        "fifo", "model.pt", "a FIFO named model.pt (opening it blocks)", specials={"model.pt": "fifo"}
    )
    yield special("socket", "model.pt", "a socket named model.pt", specials={"model.pt": "socket"})
    for label, name in (
        ("escape", "evil\x1b]0;pwned\x07\x1b[2J\nINJECTED.pt"),
        ("invalid-utf8", "model\udcff\udcfe.pt"),  # the bytes 0xff 0xfe in the file's name
    ):
        yield Case(
            f"special-filename-{label}",
            "output",
            "any",
            REFUSED,
            name,
            {name: b"\x01garbage"},
            note=f"an unreadable file named {name!r}: the refusal quotes its name",
        )
    for name, target in (
        ("dev-zero", "/dev/zero"),
        ("dev-urandom", "/dev/urandom"),
        ("proc-self-mem", "/proc/self/mem"),
        ("proc-self-maps", "/proc/self/maps"),
        ("loop", "model.safetensors"),
        ("dangling", "missing.safetensors"),
    ):
        yield special(
            f"link-{name}",
            "model.safetensors",
            f"model.safetensors linked to {target}",
            links={"model.safetensors": target},
        )
    yield special("empty-folder", "model.pt", "a folder named model.pt", files={"model.pt/": b""})
    yield special(
        "folder-with-fifo",
        "checkpoint",
        "a folder whose model.safetensors is a FIFO",
        files={"checkpoint/": b""},
        specials={"checkpoint/model.safetensors": "fifo"},
    )
    yield Case(
        "special-folder-two-indexes",
        "special",
        "any",
        EITHER,
        "checkpoint",
        {
            f"checkpoint/a.{INDEX}": json.dumps(weight_map("s.safetensors")).encode(),
            f"checkpoint/b.{INDEX}": json.dumps(weight_map("s.safetensors")).encode(),
            "checkpoint/s.safetensors": SHARD,
        },
        note="a folder holding two indexes",
    )


def third_party_loop_cases() -> Iterator[Case]:
    """One flipped byte that sends libhdf5 into an endless loop, in each HDF5-based format."""
    note = "the global heap's free-space object cut to the low byte of its size: libhdf5 loops"
    looping = heap_free_space_cut(keras_weights())
    yield _h5_case("heap-loop", "special", REFUSED, heap_free_space_cut(legacy_h5()), note)
    yield _keras_case("heap-loop", "special", REFUSED, keras_archive(weights=looping), note)
    yield _shards_case("heap-loop", "special", REFUSED, shard_map(SHARD_NAME), note, {SHARD_NAME: looping})


# ----------------------------------------------------------------------------------------
# The corpus.
# ----------------------------------------------------------------------------------------


def corpus(marker: Path) -> list[Case]:
    """Every case; ``marker`` is the file the trojans' payloads would create if they ran."""
    cases = [
        *torch_pickle_cases(marker),
        *torch_container_cases(),
        *torch_saved_cases(marker),
        *safetensors_cases(),
        *index_cases(),
        *npy_cases(marker),
        *npz_cases(marker),
        *gguf_cases(),
        *onnx_cases(),
        *keras_cases(),
        *keras_npz_cases(marker),
        *keras_shard_cases(),
        *h5_cases(),
        *third_party_loop_cases(),
        *special_cases(),
    ]
    names = [case.name for case in cases]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"duplicate case names: {sorted(duplicates)}"
    return cases


def write_case(folder: Path, case: Case) -> None:
    """The case's files, links and holes in its own folder (specials are the harness's)."""
    folder.mkdir(parents=True)
    for name, data in case.files.items():
        path = folder / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for name, size in case.sparse.items():
        os.truncate(folder / name, size)
    for name, target in case.links.items():
        os.symlink(target, folder / name)


def write_corpus(folder: Path, marker: Path) -> list[Case]:
    """Write every case under ``folder`` (one folder each) and ``folder/manifest.json``."""
    cases = corpus(marker)
    for case in cases:
        write_case(folder / case.name, case)
    manifest = {"marker": str(marker), "cases": [case.manifest() for case in cases]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return cases


if __name__ == "__main__":
    import sys

    written = write_corpus(
        Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path(sys.argv[1]) / "PWNED"
    )
    print(f"{len(written)} cases in {sys.argv[1]}")
