"""Files written by the frameworks give exactly the numbers of loading them and counting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import paramscope
from paramscope.core.report import Role
from tests.files.writers import trained_resnet, unique_numel, written_files
from tests.json_contract import validated
from tests.test_torch import TiedLanguageModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return {path.name: path for path in written_files(tmp_path_factory, tmp_path_factory.mktemp("files"))}


@pytest.mark.parametrize("name", ["state_dict.pt", "legacy.pt"])
def test_torch_state_dict_matches_torch_load(name: str, files) -> None:
    state = torch.load(files[name], weights_only=True)  # the framework's own reading
    report = paramscope.inspect(files[name])
    assert report.source.kind == "torch_file"
    assert report.totals["all"].params == unique_numel(state)
    assert report.totals["all"].params == sum(p.numel() for p in TiedLanguageModel().parameters())
    assert report.totals["all"].tensors == len(state) - 1  # the tied head is one tensor, two names
    alias = next(t for t in report.tensors() if t.path == "decoder/weight")
    assert alias.shared_with == "embedding/weight"
    assert {t.role for t in report.tensors()} == {Role.UNKNOWN}
    assert "stores no trainability" in report.warnings[0]


def test_checkpoint_with_optimizer(files) -> None:
    checkpoint = torch.load(files["checkpoint.pth"], weights_only=True)
    report = paramscope.inspect(files["checkpoint.pth"])
    model = checkpoint["model"]
    assert report.totals["all"].params == sum(t.numel() for t in model.values())
    assert report.totals["state"].tensors == sum(
        1 for k in model if k.rsplit(".", 1)[-1].startswith(("running_", "num_batches"))
    )
    moments = [
        t
        for state in checkpoint["optimizer"]["state"].values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    ]
    assert report.optimizer is not None and report.optimizer.totals.tensors == len(moments)
    assert report.optimizer.totals.params == sum(t.numel() for t in moments)
    assert [c.name for c in report.root.children] == ["stem", "layer1", "layer2", "fc"]


def test_lightning_checkpoint_unwrapped(files) -> None:
    report = paramscope.inspect(files["lightning.ckpt"])
    model, _ = trained_resnet()
    assert report.totals["all"].params == sum(t.numel() for t in model.state_dict().values())
    (module,) = report.root.children  # the LightningModule's `model` attribute
    assert module.name == "model"
    assert [c.name for c in module.children] == ["stem", "layer1", "layer2", "fc"]
    assert report.optimizer is not None


def test_saved_parameters_keep_requires_grad(tmp_path) -> None:
    model, _ = trained_resnet()
    model.stem.requires_grad_(False)
    path = tmp_path / "params.pt"
    torch.save(dict(model.named_parameters()), path)
    report = paramscope.inspect(path)
    assert report.totals["frozen"].params == sum(p.numel() for p in model.stem.parameters())
    assert report.totals["trainable"].params == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_safetensors_matches_safe_open(files) -> None:
    from safetensors import safe_open

    with safe_open(files["model.safetensors"], "np") as handle:
        truth = {k: handle.get_slice(k).get_shape() for k in handle.keys()}  # noqa: SIM118
    report = paramscope.inspect(files["model.safetensors"])
    assert {t.path.replace("/", "."): list(t.shape) for t in report.tensors()} == truth
    assert report.totals["all"].params == sum(int(np.prod(s)) for s in truth.values())


def test_sharded_index_and_folder(files) -> None:
    model, _ = trained_resnet()
    expected = sum(t.numel() for t in model.state_dict().values())
    for target in (files["model.safetensors.index.json"], files["model.safetensors.index.json"].parent):
        report = paramscope.inspect(target)
        assert report.totals["all"].params == expected
        assert report.totals["all"].tensors == len(model.state_dict())


def test_npz_and_npy(files) -> None:
    npz = paramscope.inspect(files["arrays.npz"])
    with np.load(files["arrays.npz"]) as arrays:
        assert npz.totals["all"].params == sum(arrays[k].size for k in arrays.files)
    assert npz.totals["state"].tensors == 1  # the integer array
    npy = paramscope.inspect(files["array.npy"])
    assert npy.totals["all"].params == 24 and npy.totals["all"].bytes == 48


def test_extension_is_not_trusted(files, tmp_path) -> None:
    renamed = tmp_path / "weights.npz"
    renamed.write_bytes(files["model.safetensors"].read_bytes())
    assert paramscope.inspect(renamed).source.kind == "safetensors"


def test_files_are_never_modified(files) -> None:
    before = {
        name: (path.stat().st_mtime_ns, path.read_bytes()) for name, path in files.items() if path.is_file()
    }
    for path in files.values():
        paramscope.inspect(path)
    after = {
        name: (path.stat().st_mtime_ns, path.read_bytes()) for name, path in files.items() if path.is_file()
    }
    assert before == after


STUB = "raise ImportError('paramscope must not import {name} to read a file')\n"


def test_file_inspection_imports_no_framework(files, tmp_path) -> None:
    """The CLI runs with stub torch/keras/tensorflow/jax packages that raise on import."""
    stubs = tmp_path / "stubs"
    for name in ("torch", "keras", "tensorflow", "jax", "tf_keras", "safetensors"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(STUB.format(name=name))
    env = {**os.environ, "PYTHONPATH": f"{stubs}{os.pathsep}{ROOT / 'src'}"}
    for path in files.values():
        result = subprocess.run(
            [sys.executable, "-m", "paramscope.cli", "summary", str(path), "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0, (path.name, result.stderr)
        assert validated(result.stdout)["source"]["path"] == str(path)


def test_onnx_matches_onnx(tmp_path) -> None:
    import onnx
    from onnx import numpy_helper

    from tests.files.onnx_gguf import write_onnx

    path = tmp_path / "model.onnx"
    write_onnx(path)
    model = onnx.load(path)
    dense = [numpy_helper.to_array(t).size for t in model.graph.initializer]
    sparse = [int(np.prod(s.dims)) for s in model.graph.sparse_initializer]
    branches = [
        numpy_helper.to_array(t).size
        for node in model.graph.node
        for a in node.attribute
        if a.HasField("g")
        for t in a.g.initializer
    ]
    report = paramscope.inspect(path)
    assert report.source.kind == "onnx"
    assert report.totals["all"].params == sum(dense) + sum(sparse) + sum(branches)
    assert report.totals["all"].tensors == len(dense) + len(sparse) + len(branches)
    assert report.constants is not None and report.constants.totals.params == 7  # listed apart, not counted
    assert "If/then_branch/branch/scale" in {t.path for t in report.tensors()}


def test_gguf_matches_gguf_reader(tmp_path) -> None:
    from gguf import GGUFReader

    from tests.files.onnx_gguf import write_gguf

    path = tmp_path / "model.gguf"
    write_gguf(path)
    reader = GGUFReader(path)
    report = paramscope.inspect(path)
    assert report.totals["all"].params == sum(int(t.n_elements) for t in reader.tensors)
    assert report.totals["all"].bytes == sum(int(t.n_bytes) for t in reader.tensors)
    quantized = next(t for t in report.tensors() if t.dtype == "q8_0")
    assert quantized.params == 64 * 64 and quantized.bytes == 64 * 64 // 32 * 34


def test_split_gguf(tmp_path) -> None:
    from tests.files.onnx_gguf import write_gguf

    for part in (1, 2):
        write_gguf(tmp_path / f"model-{part:05d}-of-00002.gguf")
    report = paramscope.inspect(tmp_path / "model-00001-of-00002.gguf")
    assert report.totals["all"].params == 2 * (8 * 64 + 2 * 64 * 64)
    (tmp_path / "model-00002-of-00002.gguf").unlink()
    with pytest.raises(paramscope.InputError, match=re.escape("part model-00002-of-00002.gguf is missing")):
        paramscope.inspect(tmp_path / "model-00001-of-00002.gguf")
