"""Fuzzers: whatever the bytes, only InputError escapes ``paramscope.inspect``.

Structure-aware where it pays, so that random input gets past the first check of each reader:
pickle opcode streams built from pickletools' own opcode table (each argument encoded as its
descriptor says, torch's globals and storage records mixed in), safetensors headers of random
JSON, zip archives of random members, protobuf field soups shaped like ONNX's messages, GGUF
key/value soups, Keras configs with random JSON in their fields, and byte flips and cuts of a
valid file of every format. Each example is read by the corpus harness in a forked child
(``hostile_runner.read_in_child``: inspect, then the JSON and text renderers, with
``PARAMSCOPE_STRICT=1`` from conftest), so that a reader exception, a crash or a hang fails the
example and Hypothesis shrinks it, instead of hanging the suite.

``PARAMSCOPE_FUZZ_EXAMPLES`` sets the examples per target (default 20, and 50 in ``make
test-full``: Hypothesis draws new examples every run, so CI's runs add up); ``benchmarks/fuzz.py``
runs the same targets far longer, and coverage-guided with Atheris.
"""

from __future__ import annotations

import io
import json
import os
import pickletools
import random
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backend_suites import FULL
from tests.files import hostile_corpus as hc
from tests.files.hostile_runner import preload, read_in_child

EXAMPLES = int(os.environ.get("PARAMSCOPE_FUZZ_EXAMPLES", "50" if FULL else "20"))
WALL_LIMIT_S = 15.0  # a hang guard: fuzzed files are small
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))

preload()  # the readers imported once here, not in every forked child


def read_fuzzed(files: dict[str, bytes], target: str) -> None:
    """Write ``files`` to a fresh folder and read ``target`` as the CLI does, in a child."""
    with tempfile.TemporaryDirectory(prefix="paramscope-fuzz-") as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        result = read_in_child(Path(folder) / target, WALL_LIMIT_S)
    assert result["outcome"] in ("report", "refused"), (
        f"{result['outcome']}: {result.get('error_type', '')} {result.get('message', '')!r:.300} "
        f"at {result.get('where', '?')}"
    )


# --- pickle: opcodes from pickletools' table ---------------------------------------------

texts = st.text(max_size=12)
names = st.text(st.characters(codec="ascii", exclude_characters="\n"), min_size=1, max_size=12)


def _sized(prefix: str) -> Callable[[bytes], bytes]:
    return lambda data: struct.pack(prefix, len(data)) + data


GLOBALS = [  # what torch files name, and names that must be refused (harmless if ever called)
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("collections", "OrderedDict"),
    ("torch", "FloatStorage"),
    ("torch", "Size"),
    ("builtins", "set"),
    ("numpy", "dtype"),
    ("os", "getcwd"),
    ("builtins", "len"),
]
ARGUMENTS = {  # pickletools argument descriptor -> its encoded bytes
    "uint1": st.integers(0, 255).map(lambda n: bytes([n])),
    "uint2": st.integers(0, 2**16 - 1).map(lambda n: struct.pack("<H", n)),
    "uint4": st.integers(0, 2**32 - 1).map(lambda n: struct.pack("<I", n)),
    "uint8": st.integers(0, 2**64 - 1).map(lambda n: struct.pack("<Q", n)),
    "int4": st.integers(-(2**31), 2**31 - 1).map(lambda n: struct.pack("<i", n)),
    "long1": st.binary(max_size=12).map(lambda b: bytes([len(b)]) + b),
    "long4": st.binary(max_size=24).map(_sized("<i")),
    "decimalnl_short": st.integers(-(10**6), 10**6).map(lambda n: f"{n}\n".encode()),
    "decimalnl_long": st.integers(-(2**80), 2**80).map(lambda n: f"{n}L\n".encode()),
    "floatnl": st.floats().map(lambda f: f"{f!r}\n".encode()),
    "float8": st.floats().map(lambda f: struct.pack(">d", f)),
    "stringnl": texts.map(lambda t: ascii(t).encode() + b"\n"),
    "stringnl_noescape": names.map(lambda t: t.encode() + b"\n"),
    "stringnl_noescape_pair": (st.sampled_from(GLOBALS) | st.tuples(names, names)).map(
        lambda pair: f"{pair[0]}\n{pair[1]}\n".encode()
    ),
    "string1": st.binary(max_size=20).map(lambda b: bytes([len(b)]) + b),
    "string4": st.binary(max_size=20).map(_sized("<i")),
    "bytes1": st.binary(max_size=20).map(lambda b: bytes([len(b)]) + b),
    "bytes4": st.binary(max_size=20).map(_sized("<I")),
    "bytes8": st.binary(max_size=20).map(_sized("<Q")),
    "bytearray8": st.binary(max_size=20).map(_sized("<Q")),
    "unicodestringnl": texts.map(lambda t: t.encode("raw-unicode-escape") + b"\n"),
    "unicodestring1": texts.map(lambda t: t.encode("utf-8", "surrogatepass")).map(
        lambda b: bytes([len(b)]) + b
    ),
    "unicodestring4": texts.map(lambda t: t.encode("utf-8", "surrogatepass")).map(_sized("<I")),
    "unicodestring8": texts.map(lambda t: t.encode("utf-8", "surrogatepass")).map(_sized("<Q")),
}


def _opcode(op: pickletools.OpcodeInfo) -> st.SearchStrategy[bytes]:
    code = op.code.encode("latin-1")
    return ARGUMENTS[op.arg.name].map(lambda arg: code + arg) if op.arg else st.just(code)


opcodes = st.sampled_from(pickletools.opcodes).flatmap(_opcode)
chunks = st.sampled_from(  # pieces of real checkpoints, so that random streams reach the tensor code
    [
        hc.p_tensor("0", (3, 2)),
        hc.p_storage("0", 6),
        hc.p_call(hc.p_global("collections", "OrderedDict")),
        hc.p_text("weight"),
        hc.p_ints((3, 2)),
        hc.MARK,
        hc.EMPTY_DICT,
        hc.SETITEMS,
        hc.BINPERSID,
        hc.p_put(0),
        hc.p_get(0),
    ]
)
pickle_bodies = st.lists(st.one_of(opcodes, chunks), max_size=40).map(b"".join)


def torch_file(pickle: bytes, legacy: bool) -> tuple[dict[str, bytes], str]:
    storages = {"0": hc.float_bytes(6)}
    data = hc.legacy_torch(pickle, storages) if legacy else hc.torch_zip(pickle, storages)
    return {"model.pt": data}, "model.pt"


@st.composite
def opcode_streams(draw) -> tuple[dict[str, bytes], str]:
    """Any opcodes: what the walker's stack discipline and argument parsing face."""
    pickle = b"\x80\x02" + draw(pickle_bodies) + (b"." if draw(st.booleans()) else b"")
    return torch_file(pickle, draw(st.booleans()))


integers = st.integers(-2, 8) | st.integers(-(2**70), 2**70)
leaves = st.one_of(
    integers.map(hc.p_int),
    st.floats().map(hc.p_float),
    texts.map(hc.p_text),
    st.sampled_from([hc.NONE, hc.NEWTRUE, hc.NEWFALSE, hc.EMPTY_TUPLE, hc.p_get(0)]),
    st.lists(integers, max_size=4).map(hc.p_ints),
)


def _tensor(parts: tuple) -> bytes:
    key, numel, offset, shape, stride, storage_type = parts
    storage = hc.p_tuple(
        hc.p_text("storage"), hc.p_global("torch", storage_type), key, hc.p_text("cpu"), numel
    )
    return hc.p_tensor_raw(storage + hc.BINPERSID, offset, shape, stride)


def _values(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    pairs = st.lists(st.tuples(inner, inner), max_size=3)
    return st.one_of(
        st.lists(inner, max_size=3).map(lambda items: hc.p_tuple(*items)),
        st.lists(inner, max_size=3).map(hc.p_list),
        pairs.map(hc.p_dict),
        pairs.map(hc.p_state_dict),
        st.tuples(st.sampled_from(GLOBALS), st.lists(inner, max_size=3)).map(
            lambda t: hc.p_call(hc.p_global(*t[0]), *t[1])
        ),
        inner.map(lambda value: value + hc.p_put(0)),
        st.tuples(
            inner, inner, inner, inner, inner, st.sampled_from(["FloatStorage", "HalfStorage", "X"])
        ).map(_tensor),
        inner.map(lambda value: hc.tuple_dag(6, value)),
    )


@st.composite
def state_dicts(draw) -> tuple[dict[str, bytes], str]:
    """Well-formed pickles of random nested values and tensors with random arguments: what the
    code behind the opcode loop (tensor records, containers, sharing) faces."""
    values = st.recursive(leaves, _values, max_leaves=16)
    tensor = st.tuples(integers.map(hc.p_int), integers, st.lists(integers, max_size=3)).map(
        lambda t: (
            hc.p_tensor_raw(hc.p_storage("0", 6), t[0], hc.p_ints(t[2]), hc.p_ints(t[2][::-1]))
            if t[1] % 2
            else hc.p_tensor("0", (3, 2))
        )
    )
    pairs = draw(st.lists(st.tuples(texts.map(hc.p_text), tensor | values), min_size=1, max_size=5))
    return torch_file(hc.pickled(hc.p_state_dict(pairs)), draw(st.booleans()))


# --- safetensors: headers of random JSON ---------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
dimensions = st.lists(st.integers(-2, 2**65) | st.integers(0, 4), max_size=5)
offsets = st.lists(st.integers(0, 64) | st.integers(-(2**64), 2**65), min_size=2, max_size=2)
entries = json_values | st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F4", "F8_E4M3", "X"])
        | json_values,
        "shape": dimensions | json_values,
        "data_offsets": offsets | json_values,
    }
)
headers = st.dictionaries(texts, entries, max_size=5) | json_values


def _data_size(header: object) -> int:
    """The data buffer a header's integer offsets ask for, within reason."""
    ends = [
        entry["data_offsets"][-1]
        for entry in (header.values() if isinstance(header, dict) else [])
        if isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list) and entry["data_offsets"]
    ]
    return max([0, *(end for end in ends if type(end) is int and 0 <= end <= 4096)])


@st.composite
def safetensors_files(draw) -> tuple[dict[str, bytes], str]:
    objects = st.dictionaries(texts, entries, max_size=5)
    header = draw(st.one_of(objects, objects, objects, headers))
    raw = json.dumps(header).encode()
    length = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 2**64 - 1)))
    size = draw(st.one_of(st.just(_data_size(header)), st.just(_data_size(header)), st.integers(0, 128)))
    return {"model.safetensors": hc.safetensors_bytes(raw, b"\0" * size, length)}, "model.safetensors"


# --- zip archives: random members, names, sizes and compression -----------------------------

MEMBER_NAMES = [
    "archive/data.pkl",
    "archive/data/0",
    "archive/version",
    "config.json",
    "metadata.json",
    "model.weights.h5",
    "model.weights.npz",
    "w.npy",
    "layers/dense.npy",
    "a/b/data.pkl",
    "../evil.npy",
    "/abs.npy",
    "x.npy/",
]
MEMBER_CONTENTS = [
    hc.pickled(hc.p_state_dict([(hc.p_text("w"), hc.p_tensor("0", (3, 2)))])),
    hc.float_bytes(6),
    hc.npy_bytes(hc.npy_header("'<f4'", "(2,)"), hc.EIGHT_BYTES),
    json.dumps(hc.keras_config()).encode(),
    json.dumps(hc.KERAS_METADATA).encode(),
    hc.keras_weights(),
    hc.npz_weights(),
    b"",
]
COMPRESSION = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
member_names = texts.filter(lambda t: t.split("\0", 1)[0].strip("/"))  # zipfile cuts names at NUL
members = st.tuples(
    st.sampled_from(MEMBER_NAMES) | member_names,
    st.sampled_from(MEMBER_CONTENTS) | st.binary(max_size=64),
    st.sampled_from(COMPRESSION),
)


LAYOUTS = [  # the members each zip-based format needs, so that random archives get past detection
    ["archive/data.pkl", "archive/data/0", "archive/version"],
    ["config.json", "metadata.json", "model.weights.h5"],
    ["config.json", "metadata.json", "model.weights.npz"],
    ["w.npy", "layers/dense.npy"],
]


@st.composite
def zip_files(draw) -> tuple[dict[str, bytes], str]:
    layout = [(name, draw(members)[1:]) for name in draw(st.sampled_from(LAYOUTS))]
    extra = draw(st.lists(members.map(lambda m: (m[0], m[1:])), max_size=3))
    chosen = (
        layout + extra if draw(st.booleans()) else list(dict(layout + extra).items())
    )  # duplicates or not
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # duplicate names are part of the attack
        for name, (data, method) in chosen:
            archive.writestr(name, data, compress_type=method)
    data = buffer.getvalue()
    if draw(st.booleans()):  # a declared size that lies
        name = archive.infolist()[0].filename
        data = hc.patch_central(data, name, file_size=draw(st.integers(0, 2**32 - 1)))
    return {"model.bin": data}, "model.bin"


# --- ONNX: protobuf field soups shaped like its messages ------------------------------------

TENSOR = {
    1: "varint",
    2: "varint",
    4: "bytes",
    7: "varint",
    8: "text",
    9: "bytes",
    13: {1: "text", 2: "text"},
    14: "varint",
}
SPARSE = {1: TENSOR, 2: TENSOR, 3: "varint"}
ATTRIBUTE = {1: "text", 20: "varint", 5: TENSOR, 6: "graph", 11: "graph"}
NODE = {1: "text", 2: "text", 3: "text", 4: "text", 5: ATTRIBUTE}
GRAPH = {1: NODE, 2: "text", 5: TENSOR, 15: SPARSE}
varints = st.integers(-(2**63), 2**64 - 1) | st.integers(0, 20)
field_texts = st.sampled_from([b"w", b"location", b"Constant", b"value", b"w.bin", b"../x"]) | st.binary(
    max_size=8
)


def message(schema: dict, depth: int) -> st.SearchStrategy[bytes]:
    """A protobuf message of fields from ``schema`` (and unknown ones), nested ``depth`` deep."""

    def payload(kind) -> st.SearchStrategy:
        if kind == "varint":
            return varints
        if kind in ("text", "bytes"):
            return field_texts
        if depth == 0:
            return st.just(b"")
        return message(GRAPH if kind == "graph" else kind, depth - 1)

    known = st.sampled_from(sorted(schema)).flatmap(
        lambda number: payload(schema[number]).map(lambda value: hc.pb_field(number, value))
    )
    unknown = st.tuples(st.integers(1, 30), varints | st.binary(max_size=8)).map(lambda f: hc.pb_field(*f))
    return st.lists(known | unknown, max_size=6).map(b"".join)


@st.composite
def onnx_files(draw) -> tuple[dict[str, bytes], str]:
    graph = draw(message(GRAPH, 3))
    extra = draw(message({8: {1: "text", 2: "varint"}}, 1))
    data = hc.pb_field(1, draw(st.integers(1, 30))) + hc.pb_field(7, graph) + extra
    return {"model.onnx": data}, "model.onnx"


# --- GGUF: key/value soups --------------------------------------------------------------------

GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<B",
    10: "<Q",
    11: "<q",
    12: "<d",
}


def gguf_value(value_type: int, depth: int = 2) -> st.SearchStrategy[bytes]:
    if value_type in GGUF_SCALARS:
        return st.binary(
            min_size=struct.calcsize(GGUF_SCALARS[value_type]),
            max_size=struct.calcsize(GGUF_SCALARS[value_type]),
        )
    if value_type == hc.GGUF_STRING:
        return st.binary(max_size=12).map(hc.g_string) | st.tuples(
            st.binary(max_size=4), st.integers(0, 2**64 - 1)
        ).map(lambda t: hc.g_string(*t))
    if value_type == hc.GGUF_ARRAY and depth:
        return st.integers(0, 12).flatmap(
            lambda element: st.tuples(
                st.integers(0, 4) | st.integers(0, 2**64 - 1),
                st.lists(gguf_value(element, depth - 1), max_size=4),
            ).map(lambda t: struct.pack("<IQ", element, t[0]) + b"".join(t[1]))
        )
    return st.binary(max_size=8)


gguf_kvs = st.tuples(st.binary(max_size=12), st.integers(0, 12) | st.integers(0, 2**32 - 1)).flatmap(
    lambda kv: gguf_value(kv[1]).map(lambda value: hc.g_kv(kv[0], kv[1], value))
)
gguf_tensors = st.builds(
    hc.g_tensor,
    st.binary(max_size=8),
    st.lists(st.integers(1, 8) | st.integers(0, 2**64 - 1), max_size=4),
    st.integers(0, 40) | st.integers(0, 2**32 - 1),
    st.integers(0, 4).map(lambda n: 32 * n) | st.integers(0, 2**64 - 1),
)


@st.composite
def gguf_files(draw) -> tuple[dict[str, bytes], str]:
    kvs, tensors = draw(st.lists(gguf_kvs, max_size=5)), draw(st.lists(gguf_tensors, max_size=3))
    counts = draw(
        st.one_of(st.none(), st.none(), st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)))
    )
    version = draw(st.just(3) | st.sampled_from([2, 1, 4]))
    data = hc.gguf_bytes(kvs, tensors, b"\0" * draw(st.integers(0, 256)), version=version, counts=counts)
    return {"model.gguf": data}, "model.gguf"


# --- Keras: random JSON in config.json's fields -----------------------------------------------

KERAS_FIELDS = [
    (layer["name"], key)
    for layer in hc.KERAS_LAYERS
    for key in ("class_name", "build_config", *layer["config"])
]


@st.composite
def keras_files(draw) -> tuple[dict[str, bytes], str]:
    changes: dict[str, dict] = {}
    for layer, key in draw(st.lists(st.sampled_from(KERAS_FIELDS), min_size=1, max_size=3)):
        changes.setdefault(layer, {})[key] = draw(json_values)
    return {"model.keras": hc.keras_archive(hc.keras_config(changes))}, "model.keras"


# --- byte flips and cuts of a valid file of every format ---------------------------------------


def _valid_files() -> dict[str, tuple[dict[str, bytes], str]]:
    """A small valid file of every format (multi-file ones: the file flipped is the target)."""
    import numpy as np
    from safetensors.numpy import save

    buffer = io.BytesIO()
    np.savez(buffer, weight=np.zeros((3, 4), np.float32), steps=np.arange(5))
    shards_index = json.dumps(hc.shard_map(hc.SHARD_NAME)).encode()
    return {
        "torch-zip": ({"model.pt": hc.torch_zip(*hc.state_pickle(False))}, "model.pt"),
        "torch-legacy": ({"model.pt": hc.legacy_torch(*hc.state_pickle(True))}, "model.pt"),
        "safetensors": (
            {"m.safetensors": save({"w": np.ones((4, 3), np.float32), "b": np.zeros(4, np.float16)})},
            "m.safetensors",
        ),
        "safetensors-index": (
            {hc.INDEX: json.dumps(hc.weight_map("s.safetensors")).encode(), "s.safetensors": hc.SHARD},
            hc.INDEX,
        ),
        "npy": ({"a.npy": hc.saved_npy(np.ones((2, 3), np.float16))}, "a.npy"),
        "npz": ({"a.npz": buffer.getvalue()}, "a.npz"),
        "gguf": ({"m.gguf": hc.gguf_model(["a.weight", "b.weight"])}, "m.gguf"),
        "onnx": ({"m.onnx": hc.onnx_model(hc.pb_tensor("w", [3, 2], raw=hc.float_bytes(6)))}, "m.onnx"),
        "keras": ({"m.keras": hc.keras_archive()}, "m.keras"),
        "keras-npz": (
            {"m.keras": hc.keras_archive(weights=hc.npz_weights(), weights_member="model.weights.npz")},
            "m.keras",
        ),
        "keras-shards": ({hc.SHARDS_INDEX: shards_index, hc.SHARD_NAME: hc.keras_weights()}, hc.SHARDS_INDEX),
        "h5": ({"m.h5": hc.legacy_h5()}, "m.h5"),
    }


VALID = _valid_files()


def flipped(fmt: str) -> st.SearchStrategy[tuple[dict[str, bytes], str]]:
    """1 to 8 bytes of a valid file overwritten, and sometimes a cut. Positions come from a
    seeded generator: Hypothesis favours small integers, which would keep every flip in the
    first header instead of spreading them over the file."""
    files, target = VALID[fmt]
    original = files[target]

    def damage(change: tuple[int, int, int | None]) -> tuple[dict[str, bytes], str]:
        seed, count, cut = change
        rng, data = random.Random(seed), bytearray(original)
        for _ in range(count):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return {**files, target: bytes(data[:cut])}, target

    cuts = st.one_of(st.none(), st.none(), st.integers(1, len(original)))
    return st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 8), cuts).map(damage)


TARGETS: dict[str, st.SearchStrategy[tuple[dict[str, bytes], str]]] = {
    "pickle-opcodes": opcode_streams(),
    "pickle-state-dicts": state_dicts(),
    "safetensors-json": safetensors_files(),
    "zip-members": zip_files(),
    "onnx-protobuf": onnx_files(),
    "gguf-key-values": gguf_files(),
    "keras-config-json": keras_files(),
    **{f"flips-{fmt}": flipped(fmt) for fmt in VALID},
}


def check(case: tuple[dict[str, bytes], str]) -> None:
    read_fuzzed(*case)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_only_input_errors_escape(target: str) -> None:
    FUZZ(given(TARGETS[target])(check))()
