"""ONNX models read from the protobuf wire format: the tensors ``onnx.load`` sees, in bounded
memory, without the onnx package, and one clean InputError for every malformed or hostile file."""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import paramscope
from paramscope import InputError
from paramscope.core.printable import visible
from tests.files.onnx_gguf import write_onnx

MiB = 1024 * 1024


# The wire format, written by hand only where no library writes the bytes a test needs.
def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def field(number: int, payload: bytes | int) -> bytes:
    """A varint field for an int, a length-delimited one for bytes."""
    if isinstance(payload, int):
        return key(number, 0) + varint(payload)
    return key(number, 2) + varint(len(payload)) + payload


HEAD = field(1, 8) + field(2, b"test")  # ir_version and producer_name: what detection sniffs


def dtype_name(data_type: int) -> str:
    if data_type == TensorProto.STRING:
        return "string"
    return helper.tensor_dtype_to_np_dtype(data_type).name  # ml_dtypes names: bfloat16, int4…


def onnx_says(path: Path) -> tuple[dict, dict, dict]:
    """What onnx.load finds, by the reader's rules: parameters and constants as
    {name: (shape, dtype)}, and the byte count of every parameter stored as raw_data. Each
    dense tensor is decoded, so its data really has the shape its dims declare."""
    model = onnx.load(path)
    parameters, constants, raw = {}, {}, {}

    def graph_walk(graph: onnx.GraphProto, prefix: str) -> None:
        for tensor in graph.initializer:
            assert numpy_helper.to_array(tensor).shape == tuple(tensor.dims)
            parameters[prefix + tensor.name] = (tuple(tensor.dims), dtype_name(tensor.data_type))
            if tensor.HasField("raw_data"):
                raw[prefix + tensor.name] = len(tensor.raw_data)
        for sparse in graph.sparse_initializer:
            parameters[prefix + sparse.values.name] = (
                tuple(sparse.dims),
                dtype_name(sparse.values.data_type),
            )
        for node in graph.node:
            constant(prefix, node)
            for attribute in node.attribute:
                label = f"{prefix}{node.name or node.op_type}.{attribute.name}"
                if attribute.HasField("g"):
                    graph_walk(attribute.g, label + ".")
                for i, sub in enumerate(attribute.graphs):
                    graph_walk(sub, f"{label}.{i}.")

    def constant(prefix: str, node: onnx.NodeProto) -> None:
        for attribute in node.attribute:
            if node.op_type == "Constant" and attribute.name == "value" and attribute.HasField("t"):
                value = numpy_helper.to_array(attribute.t)
                assert value.shape == tuple(attribute.t.dims)
                constants[prefix + node.output[0]] = (
                    tuple(attribute.t.dims),
                    dtype_name(attribute.t.data_type),
                )

    graph_walk(model.graph, "")
    for function in model.functions:
        for node in function.node:
            constant(f"{function.name}.", node)
    return parameters, constants, raw


def assert_same_as_onnx(path: Path) -> paramscope.Report:
    parameters, constants, raw = onnx_says(path)
    report = paramscope.inspect(path)
    ours = {t.path: (t.shape, t.dtype) for t in report.tensors()}
    assert ours == {name.replace(".", "/"): value for name, value in parameters.items()}
    ours_constants = (
        {t.name: (t.shape, t.dtype) for t in report.constants.tensors} if report.constants else {}
    )
    assert ours_constants == constants
    assert report.totals["all"].tensors == len(parameters)
    assert report.totals["all"].params == sum(math.prod(shape) for shape, _ in parameters.values())
    stored = {t.path: t.bytes for t in report.tensors()}
    assert {name.replace(".", "/"): stored[name.replace(".", "/")] for name in raw} == {
        name.replace(".", "/"): size for name, size in raw.items()
    }
    assert report.source.kind == "onnx"
    return report


def typed(name: str, data_type: int, dims: list[int], values: list) -> TensorProto:
    """A tensor whose data sits in its typed field (float_data, int32_data…), not raw_data."""
    tensor = helper.make_tensor(name, data_type, dims, values, raw=False)
    assert not tensor.HasField("raw_data")
    return tensor


def branch(name: str, weight: str) -> onnx.GraphProto:
    scale = numpy_helper.from_array(np.ones((2, 2), np.float32), weight)
    value = numpy_helper.from_array(np.full(3, 2, np.int64), f"{name}_c")
    nodes = [
        helper.make_node("Constant", [], [f"{name}_const"], value=value),
        helper.make_node("Identity", [weight], [f"{name}_out"]),
    ]
    out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2, 2])
    return helper.make_graph(nodes, name, [], [out], [scale])


def rich_model() -> onnx.ModelProto:
    """Subgraphs in If and Loop (an If inside a Loop body), a list-of-graphs attribute, sparse
    initializers, Constant nodes in graphs, subgraphs and a function; raw and typed data of many
    types, negative int64 values (10-byte varints), unpacked dims as onnx writes them."""
    initializers = [
        numpy_helper.from_array(np.ones((3, 2), np.float16), "raw.half"),
        numpy_helper.from_array(np.ones((2, 3), ml_dtypes.bfloat16), "raw.bf16"),
        numpy_helper.from_array(np.ones(5, ml_dtypes.int4), "raw.int4"),
        numpy_helper.from_array(np.ones(4, ml_dtypes.float8_e4m3fn), "raw.fp8"),
        numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3), "raw.long"),
        numpy_helper.from_array(np.array([True, False]), "raw.flags"),
        typed("typed.float", TensorProto.FLOAT, [2, 3], [1.5] * 6),
        typed("typed.long", TensorProto.INT64, [4], [-1, -(2**40), 3, 2**62]),
        typed("typed.half", TensorProto.FLOAT16, [3], [1.0, 2.0, 3.0]),
        typed("typed.bf16", TensorProto.BFLOAT16, [2], [1.0, -2.0]),
        typed("typed.int4", TensorProto.INT4, [5], [1, -2, 3, -4, 5]),
        typed("typed.uint2", TensorProto.UINT2, [7], [1, 2, 3, 0, 1, 2, 3]),
        typed("typed.complex", TensorProto.COMPLEX64, [2], [1 + 2j, 3 - 4j]),
        typed("typed.double", TensorProto.DOUBLE, [3], [1.0, 2.0, 3.0]),
        typed("typed.uint32", TensorProto.UINT32, [2], [7, 2**32 - 1]),
        typed("typed.flags", TensorProto.BOOL, [3], [True, False, True]),
        typed("typed.words", TensorProto.STRING, [2], [b"alpha", b"beta"]),
        typed("typed.int8", TensorProto.INT8, [2, 2], [-1, -128, 127, 0]),
        typed("typed.empty", TensorProto.FLOAT, [0, 4], []),
    ]
    sparse = [
        helper.make_sparse_tensor(
            numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "sparse.linear"),
            numpy_helper.from_array(np.array([0, 5, 9], np.int64), "sparse.linear_idx"),
            [4, 3],
        ),
        helper.make_sparse_tensor(
            numpy_helper.from_array(np.array([4.0, 5.0], np.float32), "sparse.coo"),
            numpy_helper.from_array(np.array([[0, 1], [2, 2]], np.int64), "sparse.coo_idx"),
            [3, 3],
        ),
    ]
    loop_body = helper.make_graph(
        [
            helper.make_node(
                "If",
                ["cond"],
                ["z"],
                then_branch=branch("inner_then", "deep.w"),
                else_branch=branch("inner_else", "deep.w"),
            ),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])],
        [numpy_helper.from_array(np.ones(5, np.float32), "body.bias")],
    )
    nodes = [
        helper.make_node(
            "Constant", [], ["top_const"], value=numpy_helper.from_array(np.ones((2, 5), np.float32))
        ),
        helper.make_node("Gemm", ["x", "typed.float"], ["y"], transB=1),
        helper.make_node(
            "If",
            ["flag"],
            ["w"],
            name="gate",
            then_branch=branch("then", "branch.w"),
            else_branch=branch("else", "branch.w"),
        ),
        helper.make_node("Loop", ["", "flag"], ["v"], body=loop_body),
        helper.make_node(
            "Custom",
            ["x"],
            ["u"],
            domain="custom",
            bodies=[branch("first", "list.w"), branch("second", "list.v")],
        ),
        helper.make_node("Scaled", ["x"], ["s"], domain="local"),
    ]
    graph = helper.make_graph(
        nodes,
        "rich",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializers,
        sparse_initializer=sparse,
    )
    function = helper.make_function(
        "local",
        "Scaled",
        ["X"],
        ["Y"],
        [
            helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.full(4, 3, np.int32))),
            helper.make_node("Mul", ["X", "k"], ["Y"]),
        ],
        [helper.make_opsetid("", 18)],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("local", 1), helper.make_opsetid("custom", 1)]
    return helper.make_model(graph, functions=[function], opset_imports=opsets)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def written(path: Path) -> Path:
    write_onnx(path)
    return path


def test_write_onnx_model_matches_onnx(tmp_path: Path) -> None:
    report = assert_same_as_onnx(written(tmp_path / "model.onnx"))
    assert report.source.framework_version == f"opset {onnx.defs.onnx_opset_version()}"
    assert report.root.name == "net"


def test_rich_model_matches_onnx(tmp_path: Path) -> None:
    report = assert_same_as_onnx(save(rich_model(), tmp_path / "rich.onnx"))
    paths = {t.path for t in report.tensors()}
    assert {"Loop/body/If/then_branch/deep/w", "gate/then_branch/branch/w", "Custom/bodies/1/list/v"} <= paths
    assert {
        "Loop.body.If.then_branch.inner_then_const",
        "gate.then_branch.then_const",
        "Scaled.k",
        "top_const",
    } <= {t.name for t in report.constants.tensors}
    by_path = {t.path: t for t in report.tensors()}
    assert by_path["typed/words"].bytes is None  # strings have no fixed size
    assert by_path["typed/int4"].bytes == 3 and by_path["typed/uint2"].bytes == 2  # packed sub-byte types
    assert report.source.framework_version == "opset 18"


def test_packed_dims_match_onnx(tmp_path: Path) -> None:
    """onnx writes dims unpacked; protobuf readers accept them packed too, and so do we."""
    model = rich_model()
    tensor = numpy_helper.from_array(np.ones((3, 300, 2), np.float32), "packed.w")
    dims = list(tensor.dims)
    del tensor.dims[:]
    packed = tensor.SerializeToString() + field(1, b"".join(varint(d) for d in dims))
    graph = model.graph.SerializeToString() + field(5, packed)
    model.ClearField("graph")
    path = tmp_path / "packed.onnx"
    path.write_bytes(model.SerializeToString() + field(7, graph))
    assert tuple(onnx.load(path).graph.initializer[-1].dims) == (3, 300, 2)
    report = assert_same_as_onnx(path)
    assert {t.path: t.shape for t in report.tensors()}["packed/w"] == (3, 300, 2)


def test_torch_export_matches_onnx(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(144, 5),
    ).eval()
    path = tmp_path / "torch.onnx"
    with warnings.catch_warnings():  # the legacy exporter, which works offline, says it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False)
    report = assert_same_as_onnx(path)
    assert report.totals["all"].params == 4 * 3 * 3 * 3 + 4 + 144 * 5 + 5  # BatchNorm folded into the Conv


def test_external_data_matches_onnx(tmp_path: Path) -> None:
    path = tmp_path / "external.onnx"
    onnx.save_model(
        rich_model(),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
        convert_attribute=True,
    )
    graph = onnx.load(path, load_external_data=False).graph
    assert any(t.data_location == TensorProto.EXTERNAL for t in graph.initializer)
    constants = [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute]
    assert any(t.data_location == TensorProto.EXTERNAL for t in constants)
    report = assert_same_as_onnx(path)
    assert any("weights.bin" in w for w in report.warnings)


@pytest.fixture
def external_model(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    onnx.save_model(rich_model(), path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    return path


def test_missing_external_file_is_named(external_model: Path) -> None:
    (external_model.parent / "weights.bin").unlink()
    with pytest.raises(InputError, match=r"external data file 'weights\.bin': cannot be read \(No such file"):
        paramscope.inspect(external_model)


def test_truncated_external_file_refused(external_model: Path) -> None:
    weights = external_model.parent / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:-3])
    with pytest.raises(InputError, match=re.escape("runs past the end of 'weights.bin'")):
        paramscope.inspect(external_model)


def test_external_file_must_be_regular(external_model: Path) -> None:
    weights = external_model.parent / "weights.bin"
    weights.unlink()
    os.mkfifo(weights)
    with pytest.raises(InputError, match="a FIFO, not a regular file"):
        paramscope.inspect(external_model)


@pytest.mark.parametrize(
    ("key_name", "value", "message"),
    [
        ("location", "../outside.bin", "outside the model's folder"),
        ("location", "/etc/passwd", "outside the model's folder"),
        ("location", "~/weights.bin", "outside the model's folder"),
        ("length", "4000000000000000", "its external data runs past the end of 'weights.bin'"),
        ("length", "12", "int64 [2, 3] needs 48 bytes, its external data length is 12"),
        ("offset", "-4", "external data offset '-4' is not a byte count"),
        ("offset", "9" * 40, "is not a byte count"),
    ],
)
def test_external_entries_validated(external_model: Path, key_name: str, value: str, message: str) -> None:
    model = onnx.load(external_model, load_external_data=False)
    tensor = next(
        t for t in model.graph.initializer if t.name == "raw.long"
    )  # int64 [2, 3], raw: stored outside
    entry = next((e for e in tensor.external_data if e.key == key_name), None) or tensor.external_data.add(
        key=key_name
    )
    entry.value = value
    onnx.save(model, external_model)
    with pytest.raises(InputError, match=re.escape(message)):
        paramscope.inspect(external_model)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_header_only_memory(tmp_path: Path) -> None:
    """A 200 MB initializer is counted without reading it: the reader's peak memory grows by a
    few MB. Measured in a child process by its VmHWM, which (unlike ru_maxrss) does not start
    from the peak of the process that forked it."""
    small, big = tmp_path / "small.onnx", tmp_path / "big.onnx"
    write_onnx(small)
    writer = (
        "import sys, numpy as np, onnx\n"
        "from onnx import helper, numpy_helper\n"
        "big = numpy_helper.from_array(np.zeros(50_000_000, np.float32), 'big.weight')\n"
        "node = helper.make_node('Identity', ['big.weight'], ['y'])\n"
        "out = helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [50_000_000])\n"
        "onnx.save(helper.make_model(helper.make_graph([node], 'big', [], [out], [big])), sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", writer, str(big)], check=True, timeout=300)
    assert big.stat().st_size > 200_000_000
    measure = (
        "import re, sys, paramscope\n"
        "def peak():\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]) * 1024\n"
        "paramscope.inspect(sys.argv[1])\n"  # imports done before measuring
        "before = peak()\n"
        "report = paramscope.inspect(sys.argv[2])\n"
        "print(report.totals['all'].params, peak() - before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", measure, str(small), str(big)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    params, grown = map(int, result.stdout.split())
    assert params == 50_000_000
    assert grown < 50 * MiB


def test_onnx_not_imported_at_run_time(tmp_path: Path) -> None:
    path = save(rich_model(), tmp_path / "rich.onnx")
    code = "import sys, paramscope; paramscope.inspect(sys.argv[1]); print('onnx' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# Hostile and malformed files: each a clean, one-line InputError.
def refused(path: Path, data: bytes, match: str) -> str:
    path.write_bytes(data)
    with pytest.raises(InputError, match=match) as caught:
        paramscope.inspect(path)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300 + len(str(path))
    return message


def test_every_prefix_of_a_model_fails_cleanly(tmp_path: Path) -> None:
    full = written(tmp_path / "full.onnx")
    data = full.read_bytes()
    without_opsets = onnx.load(full)
    del without_opsets.opset_import[:]
    graph_end = len(without_opsets.SerializeToString())  # ir_version, graph, then opset_import
    assert data.startswith(without_opsets.SerializeToString())
    path = tmp_path / "cut.onnx"
    for cut in range(1, len(data)):
        path.write_bytes(data[:cut])
        if cut < graph_end:  # the graph is cut
            with pytest.raises(InputError):
                paramscope.inspect(path)
        else:  # a whole graph, its opsets cut: a model, or a clean refusal
            with contextlib.suppress(InputError):
                paramscope.inspect(path)


def nested_graphs(levels: int) -> bytes:
    """A model whose graph has a node whose attribute ``g`` holds a graph… ``levels`` deep.
    Written outside in (each message's bytes end with the one it holds), so it costs O(levels)."""
    prefixes, size = [], 0  # the innermost graph is empty
    for _ in range(levels):
        for head in (field(1, b"g") + key(6, 2), key(5, 2), key(1, 2)):  # attribute g, node, graph
            prefix = head + varint(size)
            prefixes.append(prefix)
            size += len(prefix)
    return HEAD + key(7, 2) + varint(size) + b"".join(reversed(prefixes))


def test_deep_nesting_refused(tmp_path: Path) -> None:
    refused(
        tmp_path / "deep.onnx",
        nested_graphs(100_000),
        r"exceeds 256 levels of nesting \(raise with --limit depth",
    )
    with paramscope.limits(depth=2000):
        refused(tmp_path / "deep.onnx", nested_graphs(100_000), "levels of nesting")
    assert paramscope.inspect(_saved_nested(tmp_path, 20)).totals["all"].params == 2


def _saved_nested(tmp_path: Path, levels: int) -> Path:
    """Twenty real If nodes inside each other's branches, written by onnx: within the limits."""
    graph = helper.make_graph([], "leaf", [], [], [numpy_helper.from_array(np.ones(2, np.float32), "leaf.w")])
    empty = helper.make_graph([], "empty", [], [])
    for level in range(levels):
        node = helper.make_node("If", ["c"], ["o"], name=f"if{level}", then_branch=graph, else_branch=empty)
        graph = helper.make_graph([node], f"g{level}", [], [])
    path = tmp_path / "nested.onnx"
    onnx.save(helper.make_model(graph), path)
    return path


WIRE_CASES = {
    "graph as a varint": (HEAD + field(7, 5), "field 7 of ModelProto is a varint, not length-delimited"),
    "node as a 32-bit value": (HEAD + field(7, key(1, 5) + bytes(4)), "field 1 of GraphProto is 32-bit"),
    "tensor name as a varint": (HEAD + field(7, field(5, field(8, 3))), "field 8 of TensorProto is a varint"),
    "dims as a 64-bit value": (
        HEAD + field(7, field(5, key(1, 1) + bytes(8))),
        "field 1 of TensorProto is 64-bit",
    ),
    "subgraph as a varint": (
        HEAD + field(7, field(1, field(5, field(6, 1)))),
        "field 6 of AttributeProto is a varint",
    ),
    "float_data of 5 bytes": (HEAD + field(7, field(5, field(4, bytes(5)))), "not 4-byte values"),
    "a group": (HEAD + key(7, 3), "wire type 3"),
    "an end-group": (HEAD + key(7, 4), "wire type 4"),
    "wire type 7": (HEAD + key(7, 7), "wire type 7"),
    "field number 0": (HEAD + key(0, 0) + b"\x01", "field number 0"),
    "varint of 11 bytes": (HEAD + key(5, 0) + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    "varint above 64 bits": (HEAD + key(5, 0) + b"\xff" * 9 + b"\x7f", "above 64 bits"),
    "truncated varint": (HEAD + key(5, 0) + b"\x80", "runs past the end"),
    "length past the end": (
        HEAD + key(7, 2) + varint(1000) + b"abc",
        "a field of 1,000 bytes in ModelProto with 3 left",
    ),
    "corpus garbage": (b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage", "a field of 4,294,967,295 bytes"),
    "two graphs": (HEAD + field(7, b"") + field(7, b""), "appears twice"),
    "packed varints cut": (HEAD + field(7, field(5, field(7, b"\x01\x80"))), "ends inside a varint"),
}


@pytest.mark.parametrize("name", sorted(WIRE_CASES))
def test_malformed_wire_format_refused(name: str, tmp_path: Path) -> None:
    data, match = WIRE_CASES[name]
    message = refused(tmp_path / "bad.onnx", data, match)
    assert "not a readable ONNX model" in message


def one_initializer(tensor: TensorProto) -> onnx.ModelProto:
    return helper.make_model(helper.make_graph([], "one", [], [], [tensor]))


def raw_float(shape: tuple[int, ...], dims: list[int], name: str = "w") -> TensorProto:
    tensor = numpy_helper.from_array(np.ones(shape, np.float32), name)
    tensor.dims[:] = dims
    return tensor


def string_raw() -> TensorProto:
    return TensorProto(name="w", data_type=TensorProto.STRING, dims=[1], raw_data=b"abcd")


def unknown_type(dims: list[int]) -> TensorProto:
    tensor = raw_float((1,), dims)
    tensor.data_type = 99
    return tensor


def located(location: int) -> TensorProto:
    """A tensor whose data location is ``location``, its raw data left out (onnx.save would try
    to write data it thinks external). onnx keeps a value outside its enum as an unknown field."""
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1])
    return TensorProto.FromString(tensor.SerializeToString() + field(14, location))


TENSOR_CASES = {
    "negative dims": (raw_float((4,), [-1, -4]), "bad dimension -1"),
    "product past 2**63": (raw_float((1,), [2**40, 2**40]), "more than 2\\*\\*63 elements"),
    "10**18 elements over 4 bytes": (
        raw_float((1,), [10**18]),
        "needs 4,000,000,000,000,000,000 bytes, raw_data holds 4",
    ),
    "raw_data one float short": (raw_float((4,), [5]), "needs 20 bytes, raw_data holds 16"),
    "typed field short": (
        TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000], float_data=[1.0, 2.0]),
        "needs 1,000 values in float_data, it holds 2",
    ),
    "int64 in the wrong field": (
        TensorProto(name="w", data_type=TensorProto.INT64, dims=[2], float_data=[1.0, 2.0]),
        "needs 2 values in int64_data, it holds 0",
    ),
    "no data for 10**12 elements": (
        TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**12]),
        "needs 1,000,000,000,000 values in float_data, it holds 0",
    ),
    "no data, unknown type": (unknown_type([10**12]), "cannot fit in 4 bytes"),
    "65 dimensions": (raw_float((1,), [1] * 65), "exceeds 64 dimensions"),
    "strings in raw_data": (string_raw(), "a string tensor with raw_data"),
    "more strings declared": (
        TensorProto(name="w", data_type=TensorProto.STRING, dims=[10**12], string_data=[b"a", b"b"]),
        "needs 1,000,000,000,000 values in string_data, it holds 2",
    ),
    "data location 7": (located(7), "unknown data location 7"),
    "external without location": (
        located(TensorProto.EXTERNAL),
        "external data '' outside the model's folder",
    ),
}


@pytest.mark.parametrize("name", sorted(TENSOR_CASES))
def test_tensor_sizes_checked(name: str, tmp_path: Path) -> None:
    tensor, match = TENSOR_CASES[name]
    path = tmp_path / "bad.onnx"
    onnx.save(one_initializer(tensor), path)
    onnx.load(path, load_external_data=False)  # onnx itself reads the file: only its declared sizes are wrong
    refused(path, path.read_bytes(), match)


def test_unknown_data_type_named_and_bounded(tmp_path: Path) -> None:
    path = save(one_initializer(unknown_type([4, 8])), tmp_path / "unknown.onnx")
    (tensor,) = paramscope.inspect(path).tensors()
    assert (tensor.dtype, tensor.params, tensor.bytes) == (
        "dtype_99",
        32,
        None,
    )  # 32 elements may fit in 4 bytes


def test_sparse_initializer_checked(tmp_path: Path) -> None:
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.ones(5, np.float32), "s"),
        numpy_helper.from_array(np.arange(5), "i"),
        [2, 2],
    )
    model = helper.make_model(helper.make_graph([], "g", [], [], sparse_initializer=[sparse]))
    path = save(model, tmp_path / "sparse.onnx")
    refused(path, path.read_bytes(), r"values of shape \[5\] for a dense shape \[2, 2\]")


def test_names_cannot_forge_output(tmp_path: Path) -> None:
    evil = "w\x1b[2J\nforged line\u202e"
    tensor = numpy_helper.from_array(np.ones(2, np.float32), evil)
    path = save(one_initializer(tensor), tmp_path / "evil.onnx")
    (ours,) = paramscope.inspect(path).tensors()
    assert ours.name.isprintable() and ours.name == visible(evil)  # escaped, nothing lost


def test_work_is_charged_to_the_budget(tmp_path: Path) -> None:
    path = written(tmp_path / "model.onnx")
    with paramscope.limits(tensors=4):
        refused(path, path.read_bytes(), "exceeds 4 tensors")
    with paramscope.limits(metadata_entries=5):
        refused(path, path.read_bytes(), "the ONNX graph exceeds 5 metadata entries")
    with paramscope.limits(
        header_bytes=50
    ):  # two tensors under If.xxxx_branch.: 15 characters × 2 parts each
        refused(path, path.read_bytes(), "the names of subgraph tensors exceeds 50")
    with paramscope.limits(name_chars=3):
        refused(path, path.read_bytes(), "exceeds 3 characters in a name")
    assert paramscope.inspect(path).totals["all"].tensors == 5


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "model.onnx"
    write_onnx(path)
    return path.read_bytes()


def test_fuzzed_models_fail_cleanly(valid_model: bytes, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "model.onnx"

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(
            st.tuples(st.integers(0, len(valid_model) - 1), st.integers(0, 255)), min_size=1, max_size=8
        ),
        st.integers(3, len(valid_model)),
    )
    def check(flips: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(valid_model)
        for position, value in flips:
            data[position] = value
        path.write_bytes(bytes(data[:cut]))
        with contextlib.suppress(InputError):  # the only acceptable failure
            paramscope.inspect(path)

    check()


def test_external_file_linking_outside_the_folder_refused(external_model: Path, tmp_path_factory) -> None:
    """A symbolic link beside the model may not lead elsewhere: its size would leak."""
    weights = external_model.parent / "weights.bin"
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "weights.bin"
    elsewhere.write_bytes(weights.read_bytes())
    weights.unlink()
    weights.symlink_to(elsewhere)
    with pytest.raises(InputError, match="leads outside the model's folder"):
        paramscope.inspect(external_model)


def test_initializer_defined_twice_refused(tmp_path: Path) -> None:
    """A second definition of a name would pass as an alias of the first and go uncounted."""
    small = numpy_helper.from_array(np.zeros(3, dtype=np.float32), "w")
    large = numpy_helper.from_array(np.zeros(1000, dtype=np.float32), "w")
    graph = helper.make_graph([], "g", [], [], initializer=[small, large])
    path = save(helper.make_model(graph), tmp_path / "twice.onnx")
    with pytest.raises(InputError, match="defined twice in one graph"):
        paramscope.inspect(path)
