"""Every tensor's ``key`` is its name as its framework or file spells it, checked against the
framework's own listing: ``state_dict()`` for torch, ``variable.path`` for Keras 3, the file's
own names as the format's library reads them. Selectors take a key, and JSON carries it.

tf.keras, legacy ``.h5``, SavedModel and TFLite keys are checked in tests/tf_keras, the one
process where TensorFlow runs.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import torch
from torch import nn

import paramscope
from paramscope.core.report import Report
from paramscope.core.select import select
from paramscope.render import document
from tests.files.onnx_gguf import write_gguf, write_onnx
from tests.json_contract import validated


class TiedWithScratch(nn.Module):
    """A head tied to its embedding, a BatchNorm, and a buffer ``state_dict()`` leaves out."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.body = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embedding.weight
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


def keys(report: Report) -> list[str | None]:
    return [tensor.key for tensor in report.tensors()]


def small_keras_model() -> keras.Model:
    """A nested Sequential (whose variables' paths start with its own name) under a named head."""
    base = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="d"), keras.layers.BatchNormalization(name="bn")],
        name="base",
    )
    return keras.Sequential([keras.Input((4,)), base, keras.layers.Dense(2, name="head")], name="outer")


# ------------------------------------------------------------------------------------ live models


def test_live_torch_keys_are_state_dict_keys_and_buffer_names() -> None:
    model = TiedWithScratch()
    report = paramscope.inspect(model)
    named = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    named += [name for name, _ in model.named_buffers(remove_duplicate=False)]
    assert sorted(keys(report)) == sorted(named)
    saved = [t.key for t in report.tensors() if t.persistent is not False]
    assert sorted(saved) == sorted(model.state_dict().keys())
    tied = {t.key: t.shared_with for t in report.tensors()}
    assert tied["head.weight"] == "embedding/weight"


def test_live_keras_keys_are_variable_paths() -> None:
    model = small_keras_model()
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    report = paramscope.inspect(model)
    assert keys(report) == [v.path for v in model.weights]
    assert "outer/head/kernel" in keys(report)  # the variable path, not the node path head/kernel
    assert [t.key for t in report.optimizer.tensors] == [v.path for v in model.optimizer.variables]


# ------------------------------------------------------------------------------------------ files


def test_torch_file_keys_are_the_state_dict_keys(tmp_path: Path) -> None:
    model = TiedWithScratch()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    assert keys(paramscope.inspect(tmp_path / "weights.pt")) == list(model.state_dict().keys())


def test_a_nested_checkpoint_keys_its_tensors_by_their_full_key_path(tmp_path: Path) -> None:
    """A Lightning-style checkpoint: the tree starts below ``state_dict``, the keys do not."""
    state = nn.Linear(2, 3).state_dict()
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "c.ckpt")
    report = paramscope.inspect(tmp_path / "c.ckpt")
    assert keys(report) == [f"state_dict.model.{k}" for k in state]
    assert [t.path for t in report.tensors()] == ["model/weight", "model/bias"]


def test_torchscript_keys_are_the_scripted_state_dict_keys(tmp_path: Path) -> None:
    scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    scripted.save(str(tmp_path / "scripted.pt"))
    assert keys(paramscope.inspect(tmp_path / "scripted.pt")) == list(scripted.state_dict().keys())


def test_safetensors_keys_are_the_files_keys(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    save_file({"encoder.layer.0.weight": torch.ones(2, 2), "lm_head.bias": torch.zeros(3)}, tmp_path / "m.st")
    with safe_open(tmp_path / "m.st", framework="pt") as opened:
        assert sorted(keys(paramscope.inspect(tmp_path / "m.st"))) == sorted(opened.keys())


def test_npz_keys_are_the_member_names_numpy_gives(tmp_path: Path) -> None:
    """A member named with a slash keeps it in its key; its path splits at dots instead."""
    np.savez(tmp_path / "arrays.npz", **{"encoder/w": np.ones(3), "b": np.zeros(2)})
    report = paramscope.inspect(tmp_path / "arrays.npz")
    assert sorted(keys(report)) == sorted(np.load(tmp_path / "arrays.npz").files)
    assert {t.key: t.path for t in report.tensors()}["encoder/w"] == "encoder/w"


def test_onnx_keys_are_initializer_and_constant_names(tmp_path: Path) -> None:
    """Subgraph initializers keep their own names as keys; their paths say which branch."""
    import onnx

    write_onnx(tmp_path / "model.onnx")
    graph = onnx.load(tmp_path / "model.onnx").graph
    branches = [a.g for n in graph.node if n.op_type == "If" for a in n.attribute]
    names = [t.name for g in (graph, *branches) for t in g.initializer]
    names += [s.values.name for s in graph.sparse_initializer]
    report = paramscope.inspect(tmp_path / "model.onnx")
    assert sorted(keys(report)) == sorted(names)
    constants = [n.output[0] for n in graph.node if n.op_type == "Constant"]
    assert [t.key for t in report.constants.tensors] == constants


def test_gguf_keys_are_the_tensor_names(tmp_path: Path) -> None:
    import gguf

    write_gguf(tmp_path / "model.gguf")
    names = [t.name for t in gguf.GGUFReader(tmp_path / "model.gguf").tensors]
    assert keys(paramscope.inspect(tmp_path / "model.gguf")) == names


def _datasets(weights: h5py.File) -> list[str]:
    found: list[str] = []
    weights.visititems(lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None)
    return found


def test_keras_file_keys_are_hdf5_dataset_paths(tmp_path: Path) -> None:
    model = small_keras_model()
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        datasets = _datasets(h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r"))
    report = paramscope.inspect(tmp_path / "model.keras")
    assert sorted(keys(report) + [t.key for t in report.optimizer.tensors]) == sorted(datasets)
    assert {t.path: t.key for t in report.tensors()}["head/kernel"] == "layers/dense/vars/0"


# ----------------------------------------------------------------------------- selectors and JSON


def test_a_key_selects_the_layer_that_owns_the_tensor() -> None:
    torch_report = paramscope.inspect(TiedWithScratch())
    assert [n.path for n in select(torch_report, "body.1.running_mean")] == ["body/1"]
    keras_report = paramscope.inspect(small_keras_model())
    assert [n.path for n in select(keras_report, "outer/head/kernel")] == ["head"]
    assert [n.path for n in select(keras_report, "base/*/gamma")] == ["base/bn"]


def test_a_key_freezes_the_torch_module_owning_it() -> None:
    model = TiedWithScratch()
    plan = paramscope.freeze(model, freeze=["body.0.weight"])
    frozen = {path for path, role in plan.roles_after.items() if role.value == "frozen"}
    assert frozen == {"body/0/weight", "body/0/bias"}


def test_json_carries_each_tensors_key() -> None:
    report = paramscope.inspect(TiedWithScratch())
    output = validated(document("summary", report))
    listed = {}
    stack = [output["root"]]
    while stack:
        node = stack.pop()
        listed.update({t["path"]: t["key"] for t in node["tensors"]})
        stack.extend(node["children"])
    assert listed == {t.path: t.key for t in report.tensors()}


@pytest.mark.parametrize("selector", ["body.9.weight", "nothing/kernel"])
def test_a_key_that_names_no_tensor_is_an_error(selector: str) -> None:
    with pytest.raises(paramscope.InputError, match="matches no layer"):
        select(paramscope.inspect(TiedWithScratch()), selector)
