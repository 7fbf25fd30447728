"""TensorFlow SavedModel folders and TFLite models read header-only, without TensorFlow: the
variables and constants TensorFlow, Keras and tf.keras say the files hold, with their roles; and
one clean InputError for every damaged or hostile file.

The files are written by the real libraries in a child process (``python -m`` this module),
where Keras runs on its TensorFlow backend (this process runs Keras on torch), together with
what each framework says they hold (``truth.json``). Damaged variants are cut from those files,
patched, or written by hand where no library writes the bytes a test needs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paramscope
from paramscope import InputError
from paramscope.core.printable import visible
from paramscope.core.report import Report, Role
from paramscope.core.unread import RecognisedNotRead
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flatbuffer import root_table
from paramscope.sources.protobuf import read_varint
from paramscope.sources.protobuf_kinds import protobuf_kind
from paramscope.sources.savedmodel import read_savedmodel
from paramscope.sources.tensor_bundle import TABLE_MAGIC
from paramscope.sources.tflite_file import read_tflite
from tests.files.onnx_gguf import write_onnx
from tests.files.test_onnx import WIRE_CASES, field, varint

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


# The files, written by TensorFlow, Keras 3 and tf.keras in a child process.


def _roles(model: object, weights: list, name: object) -> dict:
    """Each weight's role as its framework decides: trainable if in ``trainable_weights``, frozen
    if its layer was switched off, state otherwise (moving statistics)."""
    trainable = {id(v) for v in model.trainable_weights}
    frozen = {id(v) for layer in model.layers if not layer.trainable for v in layer.weights}
    return {
        name(v): {
            "shape": list(v.shape),
            "dtype": str(getattr(v.dtype, "name", v.dtype)),
            "role": "trainable" if id(v) in trainable else "frozen" if id(v) in frozen else "state",
        }
        for v in weights
    }


def _checkpoint(tf: object, prefix: Path) -> dict:
    """Every tensor of a bundle as TensorFlow lists it: key -> (shape, dtype)."""
    reader = tf.train.load_checkpoint(str(prefix))
    dtypes = reader.get_variable_to_dtype_map()
    return {k: (list(shape), dtypes[k].name) for k, shape in tf.train.list_variables(str(prefix))}


def _write_module(tf: object, folder: Path) -> dict:
    """A tf.Module of two sub-modules whose variables share names (w, b), a step counter and a
    non-trainable float: named by object path, roles by each variable's flag."""

    class Dense(tf.Module):
        def __init__(self, inputs: int, outputs: int) -> None:
            super().__init__()
            self.w = tf.Variable(tf.ones((inputs, outputs)), name="w")
            self.b = tf.Variable(tf.zeros((outputs,)), name="b")

    class Net(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.decoder = Dense(3, 4), Dense(4, 2)
            self.steps = tf.Variable(0, trainable=False, name="steps")
            self.scale = tf.Variable(tf.ones(2, tf.float16), trainable=False, name="scale")

        @tf.function(input_signature=[tf.TensorSpec((None, 3))])
        def __call__(self, x: object) -> object:
            return (x @ self.encoder.w + self.encoder.b) @ self.decoder.w

    tf.saved_model.save(Net(), str(folder / "module"))
    loaded = tf.saved_model.load(str(folder / "module"))
    variables = {}
    for name, (shape, dtype) in _checkpoint(tf, folder / "module/variables/variables").items():
        if name.endswith(VALUE):
            path = name.removesuffix(VALUE)
            variable = loaded
            for part in path.split("/"):
                variable = getattr(variable, part)
            variables[path] = {
                "shape": shape,
                "dtype": dtype,
                "role": "trainable" if variable.trainable else "state",
            }
    return {"variables": variables}


def _write_keras_export(tf: object, keras: object, folder: Path) -> dict:
    """Keras 3 ``model.export`` of a model with a frozen Dense and a BatchNormalization."""
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, name="d1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="d2")(x))
    model.get_layer("d1").trainable = False
    model.export(str(folder / "keras_export"), verbose=False)
    loaded = tf.saved_model.load(str(folder / "keras_export"))
    return {
        "variables": _roles(model, model.weights, lambda v: v.path),
        "loaded_variables": len(loaded.variables),
        "loaded_trainable": sorted(v.name.removesuffix(":0") for v in loaded.trainable_variables),
    }


def _write_tf_keras(tf: object, folder: Path) -> dict:
    """A tf.keras model saved as a SavedModel after a training step: a frozen Dense, the legacy
    Adam (slot variables) and a metric."""
    import numpy as np
    import tf_keras

    inputs = tf_keras.Input((8,))
    x = tf_keras.layers.Dense(16, name="d1")(inputs)
    x = tf_keras.layers.BatchNormalization(name="bn")(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="d2")(x))
    model.get_layer("d1").trainable = False
    model.compile(optimizer=tf_keras.optimizers.legacy.Adam(), loss="mse", metrics=["mae"])
    model.fit(np.ones((4, 8)), np.ones((4, 2)), verbose=0)
    model.save(str(folder / "tf_keras"), save_format="tf")
    stored = _checkpoint(tf, folder / "tf_keras/variables/variables")
    return {
        "variables": _roles(model, model.weights, lambda v: v.name.removesuffix(":0")),
        "optimizer": sorted(
            s for k, (s, _) in stored.items() if "OPTIMIZER_SLOT" in k or k.startswith("optimizer/")
        ),
        "metrics": sorted(s for k, (s, _) in stored.items() if k.startswith("keras_api/metrics/")),
    }


def _write_tensorflow_1(tf: object, folder: Path) -> dict:
    """A TensorFlow 1 SavedModel (graph mode, ``simple_save``): no object graph."""
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None, 3])
        kernel = v1.get_variable("dense/kernel", [3, 2])
        v1.train.get_or_create_global_step()
        session.run(v1.global_variables_initializer())
        v1.saved_model.simple_save(session, str(folder / "tensorflow_1"), {"x": x}, {"y": x @ kernel})
    return {
        key: {"shape": shape, "dtype": dtype, "role": "unknown" if dtype.startswith("float") else "state"}
        for key, (shape, dtype) in _checkpoint(tf, folder / "tensorflow_1/variables/variables").items()
    }


def _tflite_truth(tf: object, path: Path) -> dict:
    """What TensorFlow's own FlatBuffer classes and interpreter say a model holds."""
    from tensorflow.lite.python import schema_py_generated as schema

    type_names = {value: name.lower() for name, value in vars(schema.TensorType).items() if name.isupper()}
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    stored = [len(b.data) if b.data is not None else b.size if b.offset > 1 else 0 for b in model.buffers]
    held = [(s, t) for s in model.subgraphs for t in s.tensors if stored[t.buffer]]
    constants = {}
    for subgraph, tensor in held:
        name = tensor.name.decode().split(";")[0]
        if len({id(s) for s, _ in held}) > 1:  # a node per subgraph holding constants
            name = f"{subgraph.name.decode()}/{name}"
        quantization = tensor.quantization or schema.QuantizationParametersT()
        constants[name] = {
            "name": tensor.name.decode(),
            "shape": [int(d) for d in tensor.shape],
            "dtype": type_names[tensor.type],
            "bytes": stored[tensor.buffer],
            "buffer": tensor.buffer,
            "scales": len(quantization.scale if quantization.scale is not None else []),
            "zero_points": len(quantization.zeroPoint if quantization.zeroPoint is not None else []),
        }
    interpreter = tf.lite.Interpreter(model_path=str(path))
    details = {
        d["name"]: {
            "shape": [int(s) for s in d["shape"]],
            "dtype": d["dtype"].__name__,
            "scales": len(d["quantization_parameters"]["scales"]),
        }
        for d in interpreter.get_tensor_details()
    }
    return {"constants": constants, "interpreter": details}


def _write_tflite(tf: object, keras: object, folder: Path) -> dict:
    """A Keras model converted plain and with dynamic-range quantization (int8 weights), and a
    tf.cond whose branches become subgraphs holding their own constants."""
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu", name="wide"),
            keras.layers.Dense(8, name="head"),
        ]
    )
    (folder / "plain.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    (folder / "quant.tflite").write_bytes(converter.convert())

    class Branchy(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = tf.Variable(tf.ones((4, 4))), tf.Variable(2 * tf.ones((4, 4)))

        @tf.function(input_signature=[tf.TensorSpec((1, 4)), tf.TensorSpec((), tf.bool)])
        def __call__(self, x: object, flag: object) -> object:
            return tf.cond(flag, lambda: x @ self.a, lambda: x @ self.b + 1.0)

    branchy = Branchy()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [branchy.__call__.get_concrete_function()], branchy
    )
    (folder / "branchy.tflite").write_bytes(converter.convert())
    return {name: _tflite_truth(tf, folder / f"{name}.tflite") for name in ("plain", "quant", "branchy")}


# TFLite models built with TensorFlow's own FlatBuffer classes, for what no converter writes.
HAND_BUILT_TFLITE = {
    # name: (tensors as (name, shape, type, buffer, extras), buffers as data bytes or (offset, size))
    "shared_buffer": (
        [("a", [4], 0, 1, {}), ("b", [4], 0, 1, {}), ("c", [2], 0, 2, {})],
        [b"", bytes(16), bytes(8)],
    ),
    "int4_packed": (
        [("q", [4, 4], 17, 1, {"scales": 4}), ("i", [4, 4], 17, 2, {})],
        [b"", bytes(8), bytes(8)],
    ),
    "string": ([("vocab", [3], 5, 1, {})], [b"", bytes(24)]),
    "after_the_flatbuffer": ([("big", [8], 0, 1, {})], [b"", "append 32"]),
    "forged_name": ([("\x1b[2J\nfake line", [2], 0, 1, {})], [b"", bytes(8)]),
    # refused:
    "buffer_too_small": ([("w", [4, 4], 0, 1, {})], [b"", bytes(8)]),
    "buffer_index_out_of_range": ([("w", [4], 0, 99, {})], [b"", bytes(16)]),
    "negative_dimension": ([("w", [-1, 4], 0, 1, {})], [b"", bytes(16)]),
    "huge_shape": ([("w", [2**30, 2**30, 2**30], 0, 1, {})], [b"", bytes(16)]),
    "string_too_small": ([("vocab", [3], 5, 1, {})], [b"", bytes(8)]),
    "offset_past_the_end": ([("w", [4], 0, 1, {})], [b"", (1_000_000, 16)]),
    "sparse": ([("w", [4], 0, 1, {"sparse": True})], [b"", bytes(16)]),
    "external_buffer": ([("w", [4], 0, 1, {"external": 1})], [b"", bytes(16)]),
    "schema_version_2": ([("w", [4], 0, 1, {})], [b"", bytes(16)]),
    "no_subgraph": ([], [b""]),
}


def _hand_built_tflite(name: str) -> bytes:
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    tensors_spec, buffers_spec = HAND_BUILT_TFLITE[name]

    def pack(appended_at: int) -> bytes:
        model = schema.ModelT()
        model.version = 2 if name == "schema_version_2" else 3
        model.buffers = []
        for spec in buffers_spec:
            buffer = schema.BufferT()
            if isinstance(spec, bytes):
                buffer.data = list(spec) or None
            elif isinstance(spec, tuple):
                buffer.offset, buffer.size = spec
            else:
                buffer.offset, buffer.size = appended_at, int(spec.split()[1])
            model.buffers.append(buffer)
        subgraph = schema.SubGraphT()
        subgraph.name, subgraph.tensors = b"main", []
        for tensor_name, shape, tensor_type, buffer, extras in tensors_spec:
            tensor = schema.TensorT()
            tensor.name, tensor.shape, tensor.type, tensor.buffer = (
                tensor_name.encode(),
                shape,
                tensor_type,
                buffer,
            )
            if "scales" in extras:
                tensor.quantization = schema.QuantizationParametersT()
                tensor.quantization.scale = [1.0] * extras["scales"]
                tensor.quantization.zeroPoint = [0] * extras["scales"]
            if extras.get("sparse"):
                tensor.sparsity = schema.SparsityParametersT()
                tensor.sparsity.traversalOrder = [0]
            tensor.externalBuffer = extras.get("external", 0)
            subgraph.tensors.append(tensor)
        model.subgraphs = [subgraph] if tensors_spec else []
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    data = pack(2)
    if "append 32" in buffers_spec:
        data = pack(len(data)) + bytes(32)  # the offset's width is fixed: the length does not change
    return data


def write_tensorflow_files(folder: Path) -> None:
    """Every file the tests read, and what the frameworks say they hold (``truth.json``)."""
    import keras
    import tensorflow as tf

    truth = {
        "module": _write_module(tf, folder),
        "keras_export": _write_keras_export(tf, keras, folder),
        "tf_keras": _write_tf_keras(tf, folder),
        "tensorflow_1": _write_tensorflow_1(tf, folder),
        "tflite": _write_tflite(tf, keras, folder),
    }
    hand_built = folder / "hand_built"
    hand_built.mkdir()
    for name in HAND_BUILT_TFLITE:
        (hand_built / f"{name}.tflite").write_bytes(_hand_built_tflite(name))
    for name in HAND_BUILT_READ:
        truth["tflite"][name] = _tflite_truth(tf, hand_built / f"{name}.tflite")
    (folder / "truth.json").write_text(json.dumps(truth))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("tensorflow")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, "-m", "tests.files.test_tensorflow_files", str(folder)],
        check=True,
        env=env,
        timeout=600,
        capture_output=True,
    )
    return folder, json.loads((folder / "truth.json").read_text())


def read(path: Path, reader: object = None) -> Report:
    """A report as ``read_file`` makes it: one budget for the read, the file named in errors."""
    reader = reader or (read_tflite if path.suffix == ".tflite" else read_savedmodel)
    try:
        return reader(path, ReadBudget())
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) <= 300 + len(str(path)), message
        raise


def tensors(report: Report) -> dict:
    return {
        t.path: {"shape": list(t.shape), "dtype": t.dtype, "role": t.role.value} for t in report.tensors()
    }


def copy(folder: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(folder / name, target)
    return target


# Content sniffing.


def coreml_message() -> bytes:
    """A CoreML ``Model`` (coremltools' Model.proto): specificationVersion, a description with one
    input, isUpdatable, and a neuralNetwork (field 500) holding one layer's name."""
    description = field(1, field(1, b"image"))
    return field(1, 4) + field(2, description) + field(10, 1) + field(500, field(1, field(1, b"conv1")))


def test_protobuf_kinds_of_real_files(written: tuple[Path, dict], tmp_path: Path) -> None:
    folder, _ = written
    for name in ("module", "keras_export", "tf_keras", "tensorflow_1"):
        data = (folder / name / "saved_model.pb").read_bytes()
        assert protobuf_kind(data) == "savedmodel"
        assert data.startswith(b"\x08\x01\x12")  # what made the first-bytes test call it ONNX
    write_onnx(tmp_path / "model.onnx")
    assert protobuf_kind((tmp_path / "model.onnx").read_bytes()) == "onnx"
    assert protobuf_kind(coreml_message()) == "coreml"
    assert coreml_message().startswith(b"\x08\x04\x12")
    for other in (
        (folder / "quant.tflite").read_bytes(),
        (folder / "module/fingerprint.pb").read_bytes(),  # beside saved_model.pb: not a model
        b"",
        b"\x08",
        b"\x08\x07",
        b"PK\x03\x04",
        bytes(64),
    ):
        assert protobuf_kind(other) is None


def test_cut_files_still_sniffed_as_their_format(written: tuple[Path, dict], tmp_path: Path) -> None:
    """A truncated model goes to its own reader, which names the damage, not to another one:
    ONNX once a field follows ir_version, a SavedModel once its meta graph's first key is there
    (before, ``08 01 12 …`` is all the two have, and it reads as ONNX)."""
    write_onnx(tmp_path / "model.onnx")
    onnx_data = (tmp_path / "model.onnx").read_bytes()
    assert {protobuf_kind(onnx_data[:cut]) for cut in range(3, len(onnx_data))} == {"onnx"}
    saved = (written[0] / "tf_keras/saved_model.pb").read_bytes()
    first_key = read_varint(memoryview(saved), 3)[1]
    assert {protobuf_kind(saved[:cut]) for cut in range(first_key + 1, len(saved), 11)} == {"savedmodel"}


@pytest.mark.parametrize("name", sorted(WIRE_CASES))
def test_damaged_onnx_still_goes_to_the_onnx_reader(name: str) -> None:
    """The ONNX reader's own malformed-file cases: sniffed as ONNX, so it names the damage."""
    assert protobuf_kind(WIRE_CASES[name][0]) == "onnx"


def test_recognised_formats_refused_by_name(written: tuple[Path, dict], tmp_path: Path) -> None:
    error = RecognisedNotRead("CoreML model")
    assert isinstance(error, InputError) and str(error) == "recognised: CoreML model, not read"
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(written[0] / "module/saved_model.pb", alone)
    for path in (alone, alone / "saved_model.pb"):
        with pytest.raises(RecognisedNotRead, match=r"^recognised: TensorFlow SavedModel graph without"):
            read(path)


@FUZZ
@given(st.binary(max_size=64))
def test_sniffing_never_fails(data: bytes) -> None:
    assert protobuf_kind(data) in (None, "onnx", "savedmodel", "coreml")
    assert protobuf_kind(b"\x08\x01\x12" + data) in (None, "onnx", "savedmodel", "coreml")


# SavedModels written by TensorFlow, Keras 3 and tf.keras.


def test_module_matches_tensorflow(written: tuple[Path, dict]) -> None:
    """Variable names repeat (w, b in two sub-modules): named by object path; roles by flag."""
    folder, truth = written
    for path in (folder / "module", folder / "module/saved_model.pb"):
        report = read(path)
        assert tensors(report) == truth["module"]["variables"]
        assert report.source.kind == "savedmodel" and report.source.framework_version.startswith(
            "TensorFlow 2."
        )
        assert report.totals["all"].bytes == sum(
            math.prod(v["shape"]) * {"float32": 4, "float16": 2, "int32": 4}[v["dtype"]]
            for v in truth["module"]["variables"].values()
        )
        assert report.optimizer is None and report.metrics is None and report.warnings == []


def test_keras_export_matches_keras(written: tuple[Path, dict]) -> None:
    """Named by Keras paths; the frozen layer frozen; the second copies aliases, counted once."""
    folder, truth = written
    report = read(folder / "keras_export")
    owners = {path: t for path, t in tensors(report).items() if not path.startswith("_all_variables/")}
    assert owners == truth["keras_export"]["variables"]
    aliases = [t for t in report.tensors() if t.shared_with is not None]
    assert len(aliases) == len(owners) == truth["keras_export"]["loaded_variables"]
    assert {a.shared_with for a in aliases} == set(owners)
    trainable = sorted(t.path for t in report.tensors() if t.role is Role.TRAINABLE and t.shared_with is None)
    assert trainable == truth["keras_export"]["loaded_trainable"]
    assert report.totals["all"].tensors == len(owners)
    assert report.totals["all"].params == sum(math.prod(v["shape"]) for v in owners.values())
    assert any("saves 8 variables twice" in w for w in report.warnings)


def test_tf_keras_with_optimizer_and_metrics_matches_tf_keras(written: tuple[Path, dict]) -> None:
    folder, truth = written
    report = read(folder / "tf_keras")
    assert tensors(report) == truth["tf_keras"]["variables"]
    assert sorted(list(t.shape) for t in report.optimizer.tensors) == truth["tf_keras"]["optimizer"]
    assert sorted(list(t.shape) for t in report.metrics.tensors) == truth["tf_keras"]["metrics"]
    assert {t.role for t in report.optimizer.tensors + report.metrics.tensors} == {Role.STATE}
    assert any(t.name.endswith("/m") for t in report.optimizer.tensors)  # the slot variables


def test_tensorflow_1_savedmodel_listed_by_key(written: tuple[Path, dict]) -> None:
    folder, truth = written
    report = read(folder / "tensorflow_1")
    assert tensors(report) == truth["tensorflow_1"]
    assert report.warnings == [
        "A TensorFlow 1 SavedModel stores no trainability: roles are unknown except buffers and integer "
        "tensors (state).",
        "No object graph: variables are listed by their checkpoint keys.",
    ]


def test_tensorflow_is_not_imported_to_read(written: tuple[Path, dict]) -> None:
    folder, _ = written
    code = (
        "import sys; from pathlib import Path; from paramscope.sources.budget import ReadBudget; "
        "from paramscope.sources.savedmodel import read_savedmodel; "
        "from paramscope.sources.tflite_file import read_tflite; "
        f"read_savedmodel(Path({str(folder / 'tf_keras')!r}), ReadBudget()); "
        f"read_tflite(Path({str(folder / 'quant.tflite')!r}), ReadBudget()); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'torch', 'flatbuffers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# Hand-built SavedModels: the object graph and the tensor bundle, as the .proto files and
# LevelDB's table format lay them out.


def block(entries: list[tuple[bytes, bytes]], restarts: int = 1) -> bytes:
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<I", 0) * restarts + struct.pack("<I", restarts)


def handle(offset: int, size: int) -> bytes:
    return varint(offset) + varint(size)


def table(
    entries: list[tuple[bytes, bytes]],
    compression: int = 0,
    index: list[tuple[bytes, bytes]] | None = None,
    data: bytes | None = None,
) -> bytes:
    """A LevelDB table of one data block (``data`` replaces its bytes), an empty metaindex block
    and an index block (``index`` replaces its entries), each with its 5-byte trailer (CRCs left
    zero: they are not checked), then the footer."""
    data = block(entries) if data is None else data
    meta = block([])
    index_block = block(index or [(entries[-1][0] if entries else b"", handle(0, len(data)))])
    meta_offset = len(data) + 5
    index_offset = meta_offset + len(meta) + 5
    footer = handle(meta_offset, len(meta)) + handle(index_offset, len(index_block))
    body = data + bytes([compression]) + bytes(4) + meta + bytes(5) + index_block + bytes(5)
    return body + footer.ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)


def entry(dtype: int, shape: list[int], shard: int = 0, offset: int = 0, size: int | None = None) -> bytes:
    size = math.prod(shape) * 4 if size is None else size
    dims = b"".join(field(2, field(1, d % 2**64)) for d in shape)
    return field(1, dtype) + field(2, dims) + field(3, shard) + field(4, offset) + field(5, size)


HEADER = (b"", field(1, 1))  # BundleHeaderProto: one shard


def saved_object(
    children: list[tuple[str, int]] = (), variable: tuple[str, int, bool] | None = None
) -> bytes:
    refs = b"".join(field(1, field(1, node) + field(2, name.encode())) for name, node in children)
    if variable is not None:
        name, dtype, trainable = variable
        refs += field(7, field(1, dtype) + field(3, int(trainable)) + field(6, name.encode()))
    return refs


def saved_model(nodes: list[bytes]) -> bytes:
    graph = b"".join(field(1, node) for node in nodes)
    meta_graph = field(1, field(5, b"2.21.0")) + field(7, graph)
    return field(1, 1) + field(2, meta_graph)


def write_savedmodel(
    folder: Path, nodes: list[bytes], entries: list[tuple[bytes, bytes]], data: int = 64
) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(saved_model(nodes))
    (folder / "variables/variables.index").write_bytes(table(entries))
    (folder / "variables/variables.data-00000-of-00001").write_bytes(bytes(data))
    return folder


ONE_VARIABLE = [saved_object([("w", 1)]), saved_object(variable=("w", 1, True))]
W = b"w" + VALUE.encode()


def test_hand_built_savedmodel_is_read(tmp_path: Path) -> None:
    report = read(write_savedmodel(tmp_path / "m", ONE_VARIABLE, [HEADER, (W, entry(1, [3, 4]))], data=48))
    assert tensors(report) == {"w": {"shape": [3, 4], "dtype": "float32", "role": "trainable"}}


BUNDLE_CASES = {
    "shard id out of range": ([HEADER, (W, entry(1, [4], shard=5))], "is in shard 5; the bundle has 1"),
    "size disagrees with the shape": (
        [HEADER, (W, entry(1, [3, 4], size=4))],
        "needs 48 bytes, the index says 4",
    ),
    "shape of 2**80 elements": (
        [HEADER, (W, entry(1, [2**40, 2**40], size=16))],
        "a shape of more than 2\\*\\*63 elements",
    ),
    "negative dimension": ([HEADER, (W, entry(1, [-1, 4], size=16))], "bad dimension -1"),
    "negative offset": ([HEADER, (W, entry(1, [4], offset=2**64 - 8))], "a negative offset or size"),
    "past the shard's end": ([HEADER, (W, entry(1, [4], offset=60))], "holds 64 bytes; its entries need 76"),
    "partitioned": ([HEADER, (W, entry(1, [4]) + field(7, b""))], "partitioned variable"),
    "unknown rank": ([HEADER, (W, field(1, 1) + field(2, field(3, 1)))], "a stored tensor of unknown rank"),
    "no header": ([(W, entry(1, [4]))], "no bundle header"),
    "zero shards": ([(b"", field(1, 0)), (W, entry(1, [4]))], "declares 0 data shards"),
    "a billion shards": ([(b"", field(1, 10**9)), (W, entry(1, [4]))], "exceeds 100,000 shards"),
    "keys out of order": (
        [HEADER, (b"x", entry(1, [4])), (W, entry(1, [4]))],
        "is not above the key before it",
    ),
    "a key of 5,000 characters": (
        [HEADER, (b"k" * 5000, entry(1, [4]))],
        "exceeds 4,096 characters in a name",
    ),
    "entry not a message": ([HEADER, (W, b"\xff")], "not a readable tensor bundle index"),
}


@pytest.mark.parametrize("case", sorted(BUNDLE_CASES))
def test_hostile_bundle_refused(case: str, tmp_path: Path) -> None:
    entries, match = BUNDLE_CASES[case]
    with pytest.raises(InputError, match=match):
        read(write_savedmodel(tmp_path / "m", ONE_VARIABLE, entries))


def _index_with(tmp_path: Path, data: bytes) -> Path:
    folder = write_savedmodel(tmp_path / "m", ONE_VARIABLE, [HEADER, (W, entry(1, [4]))])
    (folder / "variables/variables.index").write_bytes(data)
    return folder


TABLE_CASES = {
    "snappy-compressed block": (table([HEADER, (W, entry(1, [4]))], compression=1), "snappy-compressed"),
    "unknown compression": (table([HEADER, (W, entry(1, [4]))], compression=9), "unknown compression type 9"),
    "block handle past the end": (
        table([HEADER], index=[(b"", handle(2**40, 10))]),
        "runs past the end of the table",
    ),
    "no magic": (table([HEADER])[:-8] + bytes(8), "no table magic number"),
    "shorter than a footer": (b"\0" * 20, "shorter than its 48-byte footer"),
    "restart count absurd": (
        table([], data=block([HEADER])[:-4] + struct.pack("<I", 2**31)),
        "restart points",
    ),
    "no restart point": (
        table([], data=block([HEADER])[:-4] + struct.pack("<I", 0)),
        "declares 0 restart points",
    ),
    "one block walked twice": (
        table(
            [],
            index=[(b"a", handle(0, len(block([HEADER])))), (b"b", handle(0, len(block([HEADER]))))],
            data=block([HEADER]),
        ),
        "data blocks overlap or are out of order",
    ),
    "prefix longer than the key": (
        table(
            [],
            data=block([HEADER])[:-8] + varint(5) + varint(1) + varint(0) + b"b" + struct.pack("<II", 0, 1),
        ),
        "shares 5 bytes of a 0-byte key",
    ),
    "entry past its block": (
        table([], data=varint(0) + varint(50) + varint(0) + b"a" + struct.pack("<II", 0, 1)),
        "runs past the end of its block",
    ),
}


@pytest.mark.parametrize("case", sorted(TABLE_CASES))
def test_hostile_table_refused(case: str, tmp_path: Path) -> None:
    data, match = TABLE_CASES[case]
    with pytest.raises(InputError, match=match):
        read(_index_with(tmp_path, data))


def test_missing_and_special_shards_refused(written: tuple[Path, dict], tmp_path: Path) -> None:
    folder = copy(written[0], "module", tmp_path)
    shard = folder / "variables/variables.data-00000-of-00001"
    size = shard.stat().st_size
    shard.write_bytes(bytes(size - 1))
    with pytest.raises(InputError, match=f"holds {size - 1:,} bytes; its entries need {size:,}"):
        read(folder)
    shard.unlink()
    with pytest.raises(InputError, match=r"variables\.data-00000-of-00001: cannot be read"):
        read(folder)
    os.mkfifo(shard)
    with pytest.raises(InputError, match="a FIFO, not a regular file"):
        read(folder)


GRAPH_CASES = {
    "child out of range": ([saved_object([("w", 7)])], "refers to node 7 of 1"),
    "empty graph": ([], "an empty object graph"),
    "dtype disagrees": (
        [saved_object([("w", 1)]), saved_object(variable=("w", 3, True))],
        "is int32 in saved_model.pb, float32 in variables.index",
    ),
    "variable without an entry": (
        [saved_object([("v", 1)]), saved_object(variable=("v", 1, True))],
        "'v' of saved_model.pb has no entry in variables.index",
    ),
    "child as a varint": ([field(1, 5)], "field 1 of SavedObject is a varint"),
}


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_hostile_object_graph_refused(case: str, tmp_path: Path) -> None:
    nodes, match = GRAPH_CASES[case]
    with pytest.raises(InputError, match=match):
        read(write_savedmodel(tmp_path / "m", nodes, [HEADER, (W, entry(1, [4]))]))


def test_deep_object_graph_refused(tmp_path: Path) -> None:
    """A chain of 300 objects with the variable at its end: its path is refused at the depth
    limit before it is built; within a raised limit it is read."""
    depth = 300
    nodes = [saved_object([("a", i + 1)]) for i in range(depth)] + [saved_object(variable=("w", 1, True))]
    key_path = "/".join(["a"] * depth) + VALUE
    folder = write_savedmodel(tmp_path / "m", nodes, [HEADER, (key_path.encode(), entry(1, [4]))])
    with pytest.raises(InputError, match="an object path exceeds 256 levels of nesting"):
        read(folder)
    with paramscope.limits(depth=1000):
        assert [t.path for t in read(folder).tensors()] == ["w"]


def test_object_graphs_must_agree(written: tuple[Path, dict], tmp_path: Path) -> None:
    """A saved_model.pb whose object names differ from those the bundle's object graph records."""
    folder = copy(written[0], "module", tmp_path)
    pb = folder / "saved_model.pb"
    pb.write_bytes(pb.read_bytes().replace(b"encoder", b"encodex"))
    with pytest.raises(InputError, match="keyed differently by the object graphs"):
        read(folder)


def test_names_cannot_forge_output(tmp_path: Path) -> None:
    name = "\x1b[2J\nfake line"
    nodes = [saved_object([(name, 1)]), saved_object(variable=(name, 1, True))]
    escaped = name.replace(".", "..").replace("/", ".S").encode()
    report = read(
        write_savedmodel(tmp_path / "m", nodes, [HEADER, (escaped + VALUE.encode(), entry(1, [4]))])
    )
    (tensor,) = report.tensors()
    assert tensor.path == "\\x1b[2J\\nfake line"


def test_every_prefix_of_the_index_refused(written: tuple[Path, dict], tmp_path: Path) -> None:
    folder = copy(written[0], "keras_export", tmp_path)
    index = folder / "variables/variables.index"
    data = index.read_bytes()
    for cut in range(len(data)):
        index.write_bytes(data[:cut])
        with pytest.raises(InputError, match=r"variables\.index"):
            read(folder)


def test_fuzzed_savedmodel_fails_cleanly(written: tuple[Path, dict], tmp_path: Path) -> None:
    folder = copy(written[0], "tf_keras", tmp_path)
    originals = {
        name: (folder / name).read_bytes() for name in ("saved_model.pb", "variables/variables.index")
    }

    @FUZZ
    @given(
        st.sampled_from(sorted(originals)),
        st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
        st.floats(0.5, 1),
    )
    def check(name: str, flips: list[tuple[float, int]], keep: float) -> None:
        original = originals[name]
        data = bytearray(original)
        for where, value in flips:
            data[int(where * len(data))] = value
        (folder / name).write_bytes(bytes(data[: max(1, int(keep * len(data)))]))
        try:
            with contextlib.suppress(InputError):  # the only acceptable failure
                read(folder)
        finally:
            (folder / name).write_bytes(original)

    check()


# TFLite models.


def test_tflite_matches_tensorflow(written: tuple[Path, dict]) -> None:
    """Constants as TensorFlow's FlatBuffer classes list them, with the interpreter's shapes and
    dtypes; int8 weights marked quantized; activations not parameters."""
    folder, truth = written
    for name in ("plain", "quant", "branchy"):
        report, expected = read(folder / f"{name}.tflite"), truth["tflite"][name]
        ours = {t.path: t for t in report.tensors()}
        assert set(ours) == set(expected["constants"])
        for path, constant in expected["constants"].items():
            tensor = ours[path]
            quantized = constant["scales"] > 0 and constant["dtype"].startswith(("int", "uint"))
            assert (list(tensor.shape), tensor.bytes) == (constant["shape"], constant["bytes"])
            assert tensor.dtype == ("q" if quantized else "") + constant["dtype"]
            assert tensor.role is Role.UNKNOWN
            shown = expected["interpreter"].get(constant["name"])
            if shown is not None:
                assert (shown["shape"], shown["dtype"], shown["scales"]) == (
                    constant["shape"],
                    constant["dtype"],
                    constant["scales"],
                )
        assert report.source.kind == "tflite"
    quant = read(folder / "quant.tflite")
    assert any(t.dtype == "qint8" for t in quant.tensors())
    (wide,) = [c for c in truth["tflite"]["quant"]["constants"].values() if c["scales"]]
    assert [list(t.shape) for t in quant.constants.tensors] == [[wide["scales"]], [wide["zero_points"]]]
    branchy = read(folder / "branchy.tflite")
    assert len(branchy.root.children) == 2  # one node per subgraph holding constants


HAND_BUILT_READ = ("shared_buffer", "int4_packed", "string", "after_the_flatbuffer", "forged_name")


@pytest.mark.parametrize("name", HAND_BUILT_READ)
def test_hand_built_tflite_matches_tensorflow(name: str, written: tuple[Path, dict]) -> None:
    """Shapes and buffer sizes as TensorFlow's FlatBuffer classes read them; tensors sharing a
    buffer are aliases of the first, counted once."""
    folder, truth = written
    report = read(folder / f"hand_built/{name}.tflite")
    constants = {visible(path): c for path, c in truth["tflite"][name]["constants"].items()}
    listed = {t.path: t for t in report.tensors()}
    assert {p: (list(t.shape), t.bytes) for p, t in listed.items()} == {
        p: (c["shape"], c["bytes"]) for p, c in constants.items()
    }
    owners: dict[int, str] = {}
    for path, constant in constants.items():
        owners.setdefault(constant["buffer"], path)
    assert {p: t.shared_with for p, t in listed.items()} == {
        p: None if owners[c["buffer"]] == p else owners[c["buffer"]] for p, c in constants.items()
    }
    assert report.totals["all"].params == sum(math.prod(constants[p]["shape"]) for p in owners.values())


def test_hand_built_tflite_roles_and_names(written: tuple[Path, dict]) -> None:
    folder, _ = written
    int4 = {t.name: (t.dtype, t.role) for t in read(folder / "hand_built/int4_packed.tflite").tensors()}
    assert int4 == {"q": ("qint4", Role.UNKNOWN), "i": ("int4", Role.STATE)}
    (forged,) = read(folder / "hand_built/forged_name.tflite").tensors()
    assert forged.path == "\\x1b[2J\\nfake line"
    (big,) = read(folder / "hand_built/after_the_flatbuffer.tflite").tensors()
    assert big.bytes == 32


TFLITE_REFUSED = {
    "buffer_too_small": "needs 64 bytes, its buffer holds 8",
    "buffer_index_out_of_range": "points at buffer 99; the model has 2",
    "negative_dimension": "bad dimension -1",
    "huge_shape": "a shape of more than 2\\*\\*63 elements",
    "string_too_small": "needs 20 bytes, its buffer holds 8",
    "offset_past_the_end": "runs past the end of the file",
    "sparse": "is a sparse tensor: not read",
    "external_buffer": "is stored in an external buffer file: not read",
    "schema_version_2": "TFLite schema version 2, not 3",
    "no_subgraph": "a TFLite model without subgraphs",
}


@pytest.mark.parametrize("name", sorted(TFLITE_REFUSED))
def test_hostile_tflite_refused(name: str, written: tuple[Path, dict]) -> None:
    with pytest.raises(InputError, match=TFLITE_REFUSED[name]):
        read(written[0] / f"hand_built/{name}.tflite")


def _model_positions(data: bytes) -> tuple[int, int]:
    """Where the root Model table and its subgraph vector (field 2) start."""
    model = root_table(memoryview(data), b"TFL3", "Model")
    subgraphs_field = model.position + struct.unpack_from("<H", data, model.vtable + 4 + 2 * 2)[0]
    return model.position, subgraphs_field + struct.unpack_from("<I", data, subgraphs_field)[0]


PATCHES = {  # name: (position in (0, model, subgraph vector), bytes written there, error)
    "root offset past the end": (0, struct.pack("<I", 2**31), "lies outside"),
    "vtable loop (the table is its own vtable)": (1, struct.pack("<i", 0), "vtable of a Model declares"),
    "vtable before the file": (1, struct.pack("<i", 2**30), "lies outside the buffer"),
    "huge vector length": (2, struct.pack("<I", 2**31 - 1), "runs past the end"),
    "another identifier": (None, b"TFL2", "no TFL3 file identifier"),
}


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_patched_offsets_refused(name: str, written: tuple[Path, dict], tmp_path: Path) -> None:
    data = (written[0] / "quant.tflite").read_bytes()
    where, value, match = PATCHES[name]
    position = 4 if where is None else (0, *_model_positions(data))[where]
    path = tmp_path / "patched.tflite"
    path.write_bytes(data[:position] + value + data[position + len(value) :])
    with pytest.raises(InputError, match=match):
        read(path)


def shared_tflite(subgraphs: int, tensors: int, name: str) -> bytes:
    """A model whose subgraph list names one subgraph ``subgraphs`` times, whose tensor list
    names one tensor ``tensors`` times, backed by one 16-byte buffer: written with the
    ``flatbuffers`` builder, which shares any offset it is given, as no converter does."""
    import flatbuffers

    builder = flatbuffers.Builder(0)

    def vector(offsets: list[int]) -> int:
        builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            builder.PrependUOffsetTRelative(offset)
        return builder.EndVector()

    def table(fields: list[tuple[int, int]], uint32: list[tuple[int, int]] = ()) -> int:
        builder.StartObject(11)
        for slot, offset in fields:
            builder.PrependUOffsetTRelativeSlot(slot, offset, 0)
        for slot, value in uint32:
            builder.PrependUint32Slot(slot, value, 0)
        return builder.EndObject()

    text = builder.CreateString(name)
    data = builder.CreateByteVector(bytes(16))
    builder.StartVector(4, 1, 4)
    builder.PrependInt32(4)
    shape = builder.EndVector()
    tensor = table([(0, shape), (3, text)], [(2, 1)])
    subgraph = table([(0, vector([tensor] * tensors))])
    buffers = vector([table([]), table([(0, data)])])
    model = table([(2, vector([subgraph] * subgraphs)), (4, buffers)], [(0, 3)])
    builder.Finish(model, file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_shared_tables_cannot_multiply_the_work(tmp_path: Path) -> None:
    """One tensor list read through 2,000 subgraphs would be 4 million tensors from 16 KB; one
    4,000-character name shared by 20,000 tensors, 80 million characters from 100 KB."""
    path = tmp_path / "shared.tflite"
    path.write_bytes(shared_tflite(1, 3, "w"))
    assert [(t.path, t.shared_with) for t in read(path).tensors()] == [
        ("w", None),
        ("w_1", "w"),
        ("w_2", "w"),
    ]
    path.write_bytes(shared_tflite(2000, 2000, "w"))
    with pytest.raises(InputError, match="tensor lists of 4,000,000 entries overlap"):
        read(path)
    path.write_bytes(shared_tflite(1, 20_000, "w" * 4000))
    with pytest.raises(InputError, match="the tensor names exceeds 67,108,864 characters of node paths"):
        read(path)


def test_bundle_keys_are_charged(tmp_path: Path) -> None:
    """Keys rebuilt from shared prefixes cost the file a few bytes each: their length is charged."""
    entries = [HEADER] + [(b"k" * 3000 + str(i).encode(), entry(1, [1])) for i in range(10)]
    folder = write_savedmodel(tmp_path / "m", ONE_VARIABLE, entries)
    with (
        paramscope.limits(tree_chars=20_000),
        pytest.raises(InputError, match="the keys of the tensor bundle"),
    ):
        read(folder)


def test_every_prefix_of_a_tflite_file_fails_cleanly(written: tuple[Path, dict], tmp_path: Path) -> None:
    """Cut anywhere: refused until the prefix holds every byte the model uses (what follows is a
    metadata buffer no tensor reads), the whole model from there on."""
    source = written[0] / "branchy.tflite"
    data, whole = source.read_bytes(), tensors(read(source))
    path, outcomes = tmp_path / "cut.tflite", []
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        try:
            outcomes.append("whole" if tensors(read(path)) == whole else "part")
        except InputError:
            outcomes.append("refused")
    first_read = outcomes.index("whole")
    assert outcomes == ["refused"] * first_read + ["whole"] * (len(data) - first_read)
    assert first_read > len(data) * 0.9


def test_fuzzed_tflite_fails_cleanly(written: tuple[Path, dict], tmp_path: Path) -> None:
    original = (written[0] / "quant.tflite").read_bytes()
    path = tmp_path / "fuzzed.tflite"

    @FUZZ
    @given(
        st.lists(st.tuples(st.integers(8, len(original) - 1), st.integers(0, 255)), min_size=1, max_size=8),
        st.integers(8, len(original)),
    )
    def check(flips: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(original)
        for position, value in flips:
            data[position] = value
        path.write_bytes(bytes(data[:cut]))
        with contextlib.suppress(InputError):  # the only acceptable failure
            read(path)

    check()


if __name__ == "__main__":
    write_tensorflow_files(Path(sys.argv[1]))
