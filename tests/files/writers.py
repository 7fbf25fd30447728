"""Checkpoint files written by the frameworks themselves, and the truth to hold them to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from tests.test_torch import ResNetLike, TiedLanguageModel


def unique_numel(state: dict) -> int:
    """What torch counts: each stored tensor once, however many names it has."""
    seen, total = set(), 0
    for tensor in state.values():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            total += tensor.numel()
    return total


def trained_resnet():
    torch.manual_seed(0)
    model = ResNetLike()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    return model, optimizer


def write_all(folder: Path) -> list[Path]:
    lm = TiedLanguageModel()
    model, optimizer = trained_resnet()
    paths = {
        "state_dict.pt": lambda p: torch.save(lm.state_dict(), p),
        "legacy.pt": lambda p: torch.save(lm.state_dict(), p, _use_new_zipfile_serialization=False),
        "checkpoint.pth": lambda p: torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, p
        ),
        "lightning.ckpt": lambda p: torch.save(
            {
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "optimizer_states": [optimizer.state_dict()],
                "epoch": 1,
                "global_step": 10,
                "hyper_parameters": {"lr": 0.1, "layers": [1, 2]},
            },
            p,
        ),
        "parameters.pt": lambda p: torch.save(dict(model.named_parameters()), p),
        "model.safetensors": lambda p: save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()}, p
        ),
        "arrays.npz": lambda p: np.savez(p, weight=np.zeros((3, 4), np.float32), steps=np.arange(5)),
        "array.npy": lambda p: np.save(p, np.ones((2, 3, 4), np.float16)),
    }
    written = []
    for name, write in paths.items():
        path = folder / name
        write(path)
        written.append(path)
    written.append(write_shards(folder / "sharded", model.state_dict()))
    from tests.files.onnx_gguf import write_gguf, write_onnx

    for name, write in (("model.onnx", write_onnx), ("model.gguf", write_gguf)):
        write(folder / name)
        written.append(folder / name)
    keras_files = [folder / name for name in ("model.keras", "npz.keras", "legacy.h5")]
    conv_files = [folder / name for name in ("conv.keras", "conv.h5", "conv.weights.h5")]
    write_keras(keras_files, conv_files)
    return written + keras_files + conv_files


def written_files(tmp_path_factory, folder: Path) -> list[Path]:
    """write_all's files, copied into ``folder``: written once per test run, not once per test.

    Writing them takes half a minute (Keras saves in a child process); four test modules on
    two xdist workers need them. The first to ask writes them beside the workers' temporary
    folders, under a lock, and the others copy (pytest-xdist's documented pattern).
    """
    import shutil

    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # every worker's base folder lies in the run's own
    cache, done = shared / "written-files", shared / "written-files.json"
    with FileLock(str(shared / "written-files.lock")):
        if not done.exists():
            cache.mkdir()
            relative = [path.relative_to(cache) for path in write_all(cache)]
            done.write_text(json.dumps([str(path) for path in relative]))
    shutil.copytree(cache, folder, dirs_exist_ok=True)
    return [folder / name for name in json.loads(done.read_text())]


def write_keras(paths: list[Path], conv_paths: list[Path] = ()) -> None:
    """Small Keras models saved by Keras itself, in one child process (importing Keras costs
    8 s; the calling test process need not import it at all):

    - to each of ``paths``, Dense + BatchNormalization + Dense: .keras or legacy .h5 by the
      suffix, npz weights when the name starts with "npz";
    - to ``conv_paths`` (a .keras, a legacy .h5, a .weights.h5), Conv2D + BatchNormalization
      + pooling + Dense (tests/files/test_keras_hostile.py edits them)."""
    code = (
        "import keras; inputs = keras.Input((6,)); x = keras.layers.Dense(5, name='hidden')(inputs); "
        "x = keras.layers.BatchNormalization(name='bn')(x); "
        "model = keras.Model(inputs, keras.layers.Dense(2, name='head')(x)); "
        "from keras.src.saving import saving_lib; "
    )
    for path in paths:
        if path.name.startswith("npz"):
            code += f"saving_lib.save_model(model, {str(path)!r}, weights_format='npz'); "
        else:
            code += f"model.save({str(path)!r}); "
    if conv_paths:
        model_file, legacy, weights = (str(path) for path in conv_paths)
        code += (
            "inputs = keras.Input((8, 8, 3)); x = keras.layers.Conv2D(8, 3, name='conv')(inputs); "
            "x = keras.layers.BatchNormalization(name='bn')(x); "
            "x = keras.layers.GlobalAveragePooling2D(name='pool')(x); "
            "model = keras.Model(inputs, keras.layers.Dense(2, name='head')(x), name='small'); "
            f"model.save({model_file!r}); model.save({legacy!r}); model.save_weights({weights!r}); "
        )
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)


def write_shards(folder: Path, state: dict, shards: int = 3) -> Path:
    folder.mkdir(exist_ok=True)
    names = list(state)
    weight_map = {}
    for i in range(shards):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k].contiguous() for k in names[i::shards]}
        save_file(part, folder / shard)
        weight_map.update(dict.fromkeys(part, shard))
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return index
