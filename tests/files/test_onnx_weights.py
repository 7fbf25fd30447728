"""ONNX weights where exporters put them: initializers turned into Constant nodes, weights
quantized by onnxruntime (dynamic: MatMulInteger/ConvInteger/DynamicQuantizeLSTM; static QDQ:
DequantizeLinear; static QOperator: QLinearConv/QLinearMatMul; 4-bit blocks: MatMulNBits), and
weights generated when the model loads. Every file is written by the real libraries (torch's
exporter, onnx.helper, onnxruntime.quantization); every count is checked against torch's own
parameter count and against what the onnx library itself finds feeding weight inputs."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import paramscope
from paramscope.core.report import Report, Role

torch = pytest.importorskip("torch")
quantization = pytest.importorskip("onnxruntime.quantization")

# The weight inputs of the operators these files hold, from the operator schemas (onnx/defs and
# onnxruntime's contrib_defs): what the test, reading the file with onnx, calls a weight.
WEIGHT_INPUTS = {
    "Conv": (1, 2),
    "Gemm": (1, 2),
    "LSTM": (1, 2, 3),
    "BatchNormalization": (1, 2, 3, 4),
    "LayerNormalization": (1, 2),
    "DequantizeLinear": (0,),
    "ConvInteger": (1,),
    "MatMulInteger": (1,),
    "DynamicQuantizeLSTM": (1, 2, 3),
    "QLinearConv": (3, 8),
    "QLinearMatMul": (3,),
}
# (candidate, partner): the candidate is a weight when it is stored and its partner computed.
EITHER_SIDE = {
    "MatMul": ((0, 1), (1, 0)),
    "Add": ((0, 1), (1, 0)),
    "QLinearAdd": ((0, 3), (3, 0)),
    "Gather": ((0, 1),),
}
MOVES = {"Identity", "Cast", "Transpose", "Reshape", "DequantizeLinear", "QuantizeLinear"}


class Tagger(torch.nn.Module):
    """A CNN+LSTM sequence tagger of 1,244,352 parameters (and 512 BatchNorm statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(2000, 128)
        self.conv = torch.nn.Conv1d(128, 128, 3, padding=1)
        self.lstm = torch.nn.LSTM(128, 256, num_layers=2, batch_first=True)
        self.norm = torch.nn.BatchNorm1d(256)
        self.layer_norm = torch.nn.LayerNorm(256)
        self.head = torch.nn.Linear(256, 64)

    def forward(self, tokens):
        x = self.embed(tokens).transpose(1, 2)
        x = torch.relu(self.conv(x)).transpose(1, 2)
        x, _ = self.lstm(x)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.head(self.layer_norm(x))


def torch_truth(module: torch.nn.Module) -> int:
    """What the exporter stores as weights: the parameters and BatchNorm's running statistics."""
    statistics = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("_mean", "_var")))
    return sum(p.numel() for p in module.parameters()) + statistics


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, int]:
    torch.manual_seed(0)
    module = Tagger().eval()
    with torch.no_grad():  # the exporter stores equal tensors once (ones, zeros): make each differ
        for tensor in [*module.norm.parameters(), *module.layer_norm.parameters(), *module.norm.buffers()]:
            if tensor.is_floating_point():
                tensor.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("onnx_weights") / "tagger.onnx"
    with warnings.catch_warnings():  # the legacy exporter, which works offline, says it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(2, 12, dtype=torch.long),),
            str(path),
            dynamo=False,
            input_names=["tokens"],
            dynamic_axes={"tokens": {0: "batch", 1: "time"}},
        )
    assert torch_truth(module) == 1_244_352 + 512
    return path, torch_truth(module)


def as_constants(source: Path, target: Path) -> Path:
    """The same model with every initializer moved into a Constant node, by the onnx library."""
    model = onnx.load(source)
    constants = [helper.make_node("Constant", [], [t.name], value=t) for t in model.graph.initializer]
    nodes = constants + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.initializer[:]
    onnx.checker.check_model(model)
    onnx.save(model, target)
    return target


class Tokens(quantization.CalibrationDataReader):
    """Three batches of token ids: what static quantization calibrates its activation scales on."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.batches = iter([{"tokens": rng.integers(0, 2000, (2, 12), dtype=np.int64)} for _ in range(3)])

    def get_next(self):
        return next(self.batches, None)


def quantized(source: Path, kind: str) -> Path:
    target = source.with_name(f"{kind}.onnx")
    if kind == "dynamic":
        quantization.quantize_dynamic(source, target, weight_type=quantization.QuantType.QInt8)
    else:
        fmt = quantization.QuantFormat.QDQ if kind == "qdq" else quantization.QuantFormat.QOperator
        quantization.quantize_static(source, target, Tokens(), quant_format=fmt)
    return target


def weights_by_onnx(path: Path) -> dict[str, int]:
    """The initializers and Constant values feeding weight inputs, as onnx itself reads the
    file: each weight input followed back through data moves, each tensor sized by numpy_helper."""
    graph = onnx.load(path).graph
    sizes = {t.name: numpy_helper.to_array(t).size for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            sizes[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).size
    producers = {name: node for node in graph.node for name in node.output}

    def stored(name: str) -> str | None:
        while name not in sizes and name in producers and producers[name].op_type in MOVES:
            name = producers[name].input[0]
        return name if name in sizes else None

    found = set()
    for node in graph.node:
        inputs = list(node.input)
        found |= {stored(inputs[i]) for i in WEIGHT_INPUTS.get(node.op_type, ()) if i < len(inputs)}
        for candidate, partner in EITHER_SIDE.get(node.op_type, ()):
            if stored(inputs[partner]) is None:
                found.add(stored(inputs[candidate]))
    found.discard(None)
    return {name: sizes[name] for name in found}


def our_weights(report: Report) -> dict[str, int]:
    """What paramscope counts as weights: role unknown, and BatchNorm statistics (state, float,
    no quantization mark); path -> parameters."""
    return {
        t.path: t.params
        for t in report.tensors()
        if t.role is Role.UNKNOWN or (t.role is Role.STATE and t.dtype == "float32" and t.quantized is None)
    }


def paths(names: dict[str, int]) -> dict[str, int]:
    return {name.replace(".", "/"): size for name, size in names.items()}


def test_exported_model_matches_torch_and_onnx(exported) -> None:
    path, truth = exported
    report = paramscope.inspect(path)
    assert our_weights(report) == paths(weights_by_onnx(path))
    assert report.totals["all"].params == truth
    by_path = {t.path: t for t in report.tensors()}
    assert by_path["norm/running_mean"].role is Role.STATE and by_path["norm/weight"].role is Role.UNKNOWN
    assert not any("Constant" in w or "quantized" in w for w in report.warnings)
    assert all(t.dtype == "int64" for t in report.constants.tensors)  # shapes and axes stay apart


def test_weights_in_constant_nodes_are_parameters(exported) -> None:
    """1.2 million parameters held by Constant nodes: counted, not 0, named after the outputs."""
    source, truth = exported
    path = as_constants(source, source.with_name("constants.onnx"))
    moved = {t.name for t in onnx.load(source).graph.initializer}
    assert not onnx.load(path).graph.initializer
    report = paramscope.inspect(path)
    assert report.totals["all"].params == truth == sum(weights_by_onnx(path).values())
    assert our_weights(report) == paths(weights_by_onnx(path))
    assert {t.path for t in report.tensors()} == set(paths(dict.fromkeys(moved)))
    original = {t.name for t in paramscope.inspect(source).constants.tensors}
    assert {t.name for t in report.constants.tensors} == original  # the int64 shape constants
    (warning,) = [w for w in report.warnings if "Constant nodes" in w]
    assert f"{len(moved):,} weights stored as Constant nodes" in warning and f"{truth:,}" in warning


@pytest.mark.parametrize("kind", ["dynamic", "qdq", "qoperator"])
def test_quantized_weights_are_weights(exported, kind: str) -> None:
    """int8 weights are weights of unknown role with their scheme, never state; their scales
    and zero points are state, marked; the weights' parameters are the float model's."""
    source, truth = exported
    path = quantized(source, kind)
    report = paramscope.inspect(path)
    assert our_weights(report) == paths(weights_by_onnx(path))
    assert sum(our_weights(report).values()) == truth
    initializers = {t.name.replace(".", "/"): t for t in onnx.load(path).graph.initializer}
    by_path = {t.path: t for t in report.tensors()}
    assert by_path.keys() == initializers.keys()
    for name, tensor in by_path.items():  # onnxruntime names what it writes
        dtype = helper.tensor_dtype_to_np_dtype(initializers[name].data_type).name
        if name.endswith("_quantized"):
            assert (tensor.role, tensor.quantized) == (Role.UNKNOWN, dtype), name
        elif name.endswith(("_scale", "_zero_point")):
            mark = "scale" if name.endswith("_scale") else "zero-point"
            assert (tensor.role, tensor.quantized) == (Role.STATE, mark), name
        else:
            assert tensor.quantized is None, name
    eight_bit = {n for n, t in initializers.items() if t.data_type in (TensorProto.INT8, TensorProto.UINT8)}
    int8 = sum(t.params for t in report.tensors() if t.quantized in ("int8", "uint8"))
    assert int8 == sum(size for n, size in paths(weights_by_onnx(path)).items() if n in eight_bit) > 300_000
    assert not [
        t.path for t in report.tensors() if t.role is Role.STATE and t.path in eight_bit and not t.quantized
    ]
    marked = sum(1 for n in initializers if n.endswith(("_scale", "_zero_point")))
    assert any(f"{marked:,} scales and zero points are state" in w for w in report.warnings)


def test_matmul_nbits_counts_logical_parameters(tmp_path: Path) -> None:
    """MatMulNBits packs two 4-bit weights a byte, in blocks padded to block_size: the
    parameters are the float MatMul's K x N, not the bytes nor the padded blocks."""
    pytest.importorskip("onnx_ir")  # what onnxruntime's MatMulNBitsQuantizer is built on
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.random(shape, np.float32), name)
        for name, shape in (("up", (96, 40)), ("down", (40, 64)))
    ]
    nodes = [helper.make_node("MatMul", ["x", "up"], ["h"]), helper.make_node("MatMul", ["h", "down"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 96])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        weights,
    )
    quantizer = MatMulNBitsQuantizer(helper.make_model(graph), block_size=32, is_symmetric=False)
    quantizer.process()
    path = tmp_path / "nbits.onnx"
    onnx.save(quantizer.model.model, path)
    packed = {t.name: t for t in onnx.load(path).graph.initializer if t.name.endswith("_Q4")}
    assert set(packed) == {"up_Q4", "down_Q4"}
    report = paramscope.inspect(path)
    by_path = {t.path: t for t in report.tensors()}
    for weight in weights:
        ours = by_path[f"{weight.name}_Q4"]
        stored = packed[f"{weight.name}_Q4"]
        assert (ours.params, ours.quantized, ours.role) == (
            math.prod(weight.dims),
            "blockwise-4bit",
            Role.UNKNOWN,
        )
        assert ours.bytes == numpy_helper.to_array(stored).nbytes  # what the file really holds
    assert by_path["down_Q4"].bytes * 2 > by_path["down_Q4"].params  # blocks of 32 pad K = 40 to 64
    assert {t.quantized for t in report.tensors() if t.role is Role.STATE} == {"scale", "zero-point"}


def value_info(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def array(name: str, shape: tuple[int, ...], dtype=np.float32) -> TensorProto:
    return numpy_helper.from_array(np.arange(math.prod(shape), dtype=dtype).reshape(shape), name)


def saved(path: Path, nodes: list, initializers=(), functions=(), outputs=("y",)) -> Path:
    graph = helper.make_graph(
        nodes, "g", [value_info("x", [1, 4])], [value_info(o, []) for o in outputs], list(initializers)
    )
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("local", 1)]
    onnx.save(helper.make_model(graph, functions=list(functions), opset_imports=opsets), path)
    return path


def test_constant_value_forms_and_chains(tmp_path: Path) -> None:
    """value, value_floats, value_float, sparse_value: each a weight where it feeds one, through
    Identity, Cast and a Reshape of the constant; value_ints shapes and a lone scalar stay apart."""
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "s"),
        numpy_helper.from_array(np.array([0, 5], np.int64), "i"),
        [4, 3],
    )
    nodes = [
        helper.make_node("Constant", [], ["w"], value=array("w", (12,), np.float16)),
        helper.make_node("Constant", [], ["shape"], value_ints=[4, 3]),
        helper.make_node("Cast", ["w"], ["w32"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["w32", "shape"], ["w2d"]),
        helper.make_node("Identity", ["w2d"], ["w_moved"]),
        helper.make_node("MatMul", ["x", "w_moved"], ["h"]),
        helper.make_node("Constant", [], ["bias"], value_floats=[0.5, 1.5, 2.5]),
        helper.make_node("Add", ["h", "bias"], ["h2"]),
        helper.make_node("Constant", [], ["alpha"], value_float=0.2),
        helper.make_node("LeakyRelu", ["h2"], ["h3"], alpha=0.2),
        helper.make_node("Constant", [], ["table"], sparse_value=sparse),
        helper.make_node("MatMul", ["h3", "table"], ["y"]),
    ]
    path = saved(tmp_path / "forms.onnx", nodes)
    report = paramscope.inspect(path)
    ours = {t.path: (t.shape, t.dtype, t.role) for t in report.tensors()}
    assert ours == {
        "w": ((12,), "float16", Role.UNKNOWN),
        "bias": ((3,), "float32", Role.UNKNOWN),
        "table": ((4, 3), "float32", Role.UNKNOWN),
    }
    onnx_sizes = {n.output[0]: n.attribute[0] for n in onnx.load(path).graph.node if n.op_type == "Constant"}
    assert len(onnx_sizes["bias"].floats) == 3 and list(onnx_sizes["table"].sparse_tensor.dims) == [4, 3]
    assert report.totals["all"].params == 12 + 3 + 12
    apart = {t.name: (t.shape, t.dtype) for t in report.constants.tensors}
    assert apart == {"shape": ((2,), "int64"), "alpha": ((), "float32")}
    assert any("3 weights stored as Constant nodes" in w and "(27)" in w for w in report.warnings)


def test_weights_cut_and_joined_by_slice_split_and_concat(tmp_path: Path) -> None:
    """torch's exporter reorders a scripted LSTMCell's gates (i, f, g, o -> i, o, f, g) by
    slicing its Constant weights and concatenating the pieces before the LSTM (silero-vad's
    silero_vad.onnx holds 264,192 of its 545,282 values so): every stored piece is a weight,
    the int64 starts, ends and axes stay apart."""
    hidden, features = 2, 3

    def sliced(source: str, start: int, stop: int, out: str) -> list[onnx.NodeProto]:
        bounds = [(f"{out}_{k}", [v]) for k, v in (("starts", start), ("ends", stop), ("axes", 0))]
        nodes = [helper.make_node("Constant", [], [name], value_ints=values) for name, values in bounds]
        return [*nodes, helper.make_node("Slice", [source, *(name for name, _ in bounds)], [out])]

    nodes = [
        helper.make_node("Constant", [], ["weight_ih"], value=array("weight_ih", (4 * hidden, features))),
        *sliced("weight_ih", 0, hidden, "gate_i"),
        *sliced("weight_ih", 3 * hidden, 4 * hidden, "gate_o"),
        *sliced("weight_ih", hidden, 3 * hidden, "gates_fg"),
        helper.make_node("Concat", ["gate_i", "gate_o", "gates_fg"], ["reordered"], axis=0),
        helper.make_node("Constant", [], ["zero"], value_ints=[0]),
        helper.make_node("Unsqueeze", ["reordered", "zero"], ["W"]),
        helper.make_node("Constant", [], ["weight_hh"], value=array("weight_hh", (4 * hidden, hidden))),
        helper.make_node("Split", ["weight_hh"], ["hh_a", "hh_b"], axis=0, num_outputs=2),
        helper.make_node("Concat", ["hh_b", "hh_a"], ["hh"], axis=0),
        helper.make_node("Unsqueeze", ["hh", "zero"], ["R"]),
        helper.make_node("Constant", [], ["bias_ih"], value=array("bias_ih", (4 * hidden,))),
        helper.make_node("Constant", [], ["bias_hh"], value=array("bias_hh", (4 * hidden,))),
        helper.make_node("Concat", ["bias_ih", "bias_hh"], ["joined"], axis=0),
        helper.make_node("Unsqueeze", ["joined", "zero"], ["B"]),
        helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=hidden),
    ]
    report = paramscope.inspect(saved(tmp_path / "gates.onnx", nodes))
    assert {t.path: t.params for t in report.tensors()} == {
        "weight_ih": 24,
        "weight_hh": 16,
        "bias_ih": 8,
        "bias_hh": 8,
    }
    assert {t.dtype for t in report.constants.tensors} == {"int64"} and len(report.constants.tensors) == 10


def test_weights_in_subgraphs_and_functions(tmp_path: Path) -> None:
    """A branch's MatMul reaching a Constant of the graph around it; sibling branches defining
    the same name; a local function's Conv over its own Constant weight."""

    def branch(name: str) -> onnx.GraphProto:
        nodes = [
            helper.make_node("Constant", [], ["inner"], value=array("inner", (4, 2))),
            helper.make_node("MatMul", ["x", "outer"], ["a"]),
            helper.make_node("MatMul", ["a", "inner"], [f"{name}_out"]),
        ]
        return helper.make_graph(nodes, name, [], [value_info(f"{name}_out", [1, 2])])

    function = helper.make_function(
        "local",
        "Block",
        ["X"],
        ["Y"],
        [
            helper.make_node("Constant", [], ["kernel"], value=array("kernel", (2, 1, 3))),
            helper.make_node("Conv", ["X", "kernel"], ["Y"]),
        ],
        [helper.make_opsetid("", 21)],
    )
    nodes = [
        helper.make_node("Constant", [], ["outer"], value=array("outer", (4, 4))),
        helper.make_node("Constant", [], ["flag"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node(
            "If", ["flag"], ["z"], name="gate", then_branch=branch("then"), else_branch=branch("else")
        ),
        helper.make_node("Block", ["z"], ["y"], domain="local"),
    ]
    report = paramscope.inspect(saved(tmp_path / "scopes.onnx", nodes, functions=[function]))
    assert {t.path: t.params for t in report.tensors()} == {
        "outer": 16,
        "gate/then_branch/inner": 8,
        "gate/else_branch/inner": 8,
        "Block/kernel": 6,
    }
    assert [t.name for t in report.constants.tensors] == ["flag"]


def test_generated_weights_are_named(tmp_path: Path) -> None:
    """RandomNormal, ConstantOfShape and RandomUniformLike feeding weight inputs: the file has
    no values for them, a warning names them with their shapes; LSTM's initial state filled by
    ConstantOfShape is not a weight and is not named."""
    nodes = [
        helper.make_node("RandomNormal", [], ["projection"], shape=[4, 4]),
        helper.make_node("MatMul", ["x", "projection"], ["h"]),
        helper.make_node("Constant", [], ["kernel_shape"], value_ints=[2, 1, 3]),
        helper.make_node("ConstantOfShape", ["kernel_shape"], ["kernel"]),
        helper.make_node("Conv", ["h", "kernel"], ["c"]),
        helper.make_node("RandomUniformLike", ["template"], ["scale"]),
        helper.make_node("LayerNormalization", ["c", "scale"], ["n"]),
        helper.make_node("Shape", ["n"], ["dynamic_shape"]),
        helper.make_node("ConstantOfShape", ["dynamic_shape"], ["initial_h"]),
        helper.make_node("LSTM", ["n", "W", "R", "", "", "initial_h"], ["y"], hidden_size=2),
    ]
    initializers = [array("template", (3,)), array("W", (1, 8, 3)), array("R", (1, 8, 2))]
    report = paramscope.inspect(saved(tmp_path / "generated.onnx", nodes, initializers))
    assert report.totals["all"].params == 3 + 24 + 16  # what the file holds
    (warning,) = [w for w in report.warnings if "when the model loads" in w]
    assert warning.startswith("3 weights are generated when the model loads")
    for named in (
        "'projection' (RandomNormal, shape [4, 4])",
        "'kernel' (ConstantOfShape, shape [2, 1, 3])",
        "'scale' (RandomUniformLike, shape [3])",
    ):
        assert named in warning
    assert "initial_h" not in warning


def chain_model(path: Path, links: int) -> Path:
    """A Constant weight passed down ``links`` Identity nodes, each link also read by a MatMul;
    written by onnx."""
    graph = onnx.GraphProto(name="chain")
    weight = graph.node.add(op_type="Constant", output=["v0"])
    weight.attribute.append(helper.make_attribute("value", array("v0", (4, 4))))
    for i in range(1, links + 1):
        graph.node.add(op_type="Identity", input=[f"v{i - 1}"], output=[f"v{i}"])
        graph.node.add(op_type="MatMul", input=["x", f"v{i}"], output=[f"y{i}"])
    onnx.save(helper.make_model(graph), path)
    return path


def test_long_chains_stay_linear(tmp_path: Path) -> None:
    """30,000 Identity links between a weight and 30,000 MatMuls: each link is resolved once
    (a walk from every MatMul back to the weight would take 450 million steps and exhaust the
    read's time)."""
    report = paramscope.inspect(chain_model(tmp_path / "chain.onnx", 30_000))
    assert [(t.path, t.params) for t in report.tensors()] == [("v0", 16)]


def test_cycles_of_names_end_as_activations(tmp_path: Path) -> None:
    """Names that feed each other, and a node consuming its own output: no value ever reaches
    them, so they are activations, not weights, and the walk ends."""
    graph = onnx.GraphProto(name="cycles")
    graph.node.add(op_type="Identity", input=["b"], output=["a"])
    graph.node.add(op_type="Identity", input=["a"], output=["b"])
    graph.node.add(op_type="Transpose", input=["self"], output=["self"])
    graph.node.add(op_type="MatMul", input=["a", "w"], output=["h"])  # w stored, a computed: weight
    graph.node.add(op_type="MatMul", input=["b", "self"], output=["y"])  # neither stored
    graph.node.add(op_type="Conv", input=["self", "self", "a"], output=["z"])
    graph.initializer.append(array("w", (4, 4)))
    path = tmp_path / "cycles.onnx"
    onnx.save(helper.make_model(graph), path)
    report = paramscope.inspect(path)
    assert [(t.path, t.role) for t in report.tensors()] == [("w", Role.UNKNOWN)]
    assert not any("when the model loads" in w for w in report.warnings)


def test_wide_nodes_cost_their_arity(tmp_path: Path) -> None:
    """A Mul with 30,000 inputs read by 30,000 Adds: each Add looks at the two inputs Mul has
    by its schema, not at all 30,000 (900 million steps), so the MatMulInteger output that comes
    last does not make its Adds biases; the two-input Mul rescaling it does."""
    graph = onnx.GraphProto(name="wide")
    graph.node.add(op_type="MatMulInteger", input=["xq", "wq"], output=["q"])
    graph.node.add(op_type="Mul", input=["q", "scale"], output=["m"])
    graph.node.add(op_type="Add", input=["m", "bias"], output=["y"])
    graph.node.add(op_type="Mul", input=[*["x"] * 30_000, "q"], output=["wide"])
    for i in range(30_000):
        graph.node.add(op_type="Add", input=["wide", "offset"], output=[f"out{i}"])
    scale = numpy_helper.from_array(np.float32(0.1), "scale")
    graph.initializer.extend([array("wq", (4, 4), np.int8), scale, array("bias", (4,), np.int8)])
    graph.initializer.append(array("offset", (4,), np.int8))
    path = tmp_path / "wide.onnx"
    onnx.save(helper.make_model(graph), path)
    by_path = {t.path: (t.role, t.quantized) for t in paramscope.inspect(path).tensors()}
    assert by_path == {
        "wq": (Role.UNKNOWN, "int8"),
        "scale": (Role.STATE, "scale"),
        "bias": (Role.UNKNOWN, "int8"),
        "offset": (Role.STATE, None),
    }


FUZZ_OPS = [
    "Identity",
    "Cast",
    "Transpose",
    "Reshape",
    "DequantizeLinear",
    "QuantizeLinear",
    "MatMul",
    "Gemm",
]
FUZZ_OPS += ["Conv", "LSTM", "BatchNormalization", "Gather", "Add", "Mul", "MatMulInteger", "ConvInteger"]
FUZZ_OPS += [
    "QLinearConv",
    "QLinearMatMul",
    "RandomNormal",
    "ConstantOfShape",
    "RandomNormalLike",
    "Constant",
]


@st.composite
def graphs(draw) -> onnx.ModelProto:
    """Graphs of weight-bearing, pass-through and generating operators whose inputs are drawn
    from every name (their own outputs, later nodes', stored tensors', missing ones): cycles,
    self-loops and dangling names included."""
    count = draw(st.integers(1, 12))
    names = [f"v{i}" for i in range(count)] + ["w8", "wf", "shape", "absent", ""]
    graph = onnx.GraphProto(name="fuzz")
    for i in range(count):
        op = draw(st.sampled_from(FUZZ_OPS))
        node = graph.node.add(
            op_type=op, output=[f"v{i}"], input=draw(st.lists(st.sampled_from(names), max_size=9))
        )
        if op == "Constant":
            del node.input[:]
            dtype = draw(st.sampled_from([np.float32, np.int8, np.int64]))
            node.attribute.append(helper.make_attribute("value", array(f"v{i}", (2, 2), dtype)))
        elif op == "RandomNormal":
            node.attribute.append(
                helper.make_attribute(
                    "shape",
                    draw(st.lists(st.integers(-2, 4), max_size=3)),
                    attr_type=onnx.AttributeProto.INTS,
                )
            )
    graph.initializer.extend(
        [array("w8", (3, 2), np.int8), array("wf", (2, 3)), array("shape", (2,), np.int64)]
    )
    return helper.make_model(graph)


def test_any_graph_is_read_with_every_tensor_once(tmp_path_factory) -> None:
    """Whatever the wiring, each initializer is a parameter and each Constant either a parameter
    or listed apart, never both; the totals are the sum of what is listed."""
    path = tmp_path_factory.mktemp("fuzz") / "graph.onnx"

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(graphs())
    def check(model: onnx.ModelProto) -> None:
        onnx.save(model, path)
        report = paramscope.inspect(path)
        constants = {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
        counted = {t.path for t in report.tensors()}
        apart = {t.name for t in report.constants.tensors} if report.constants else set()
        assert counted - constants == {"w8", "wf", "shape"} and counted & constants == constants - apart
        assert not counted & apart
        assert report.totals["all"].params == sum(t.params for t in report.tensors())
        assert all(t.role is Role.UNKNOWN for t in report.tensors() if t.quantized == "int8")

    check()
