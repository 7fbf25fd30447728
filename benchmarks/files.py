"""Checkpoint files: paramscope against loading them in their framework, in cold processes.

* ``.keras`` ResNet50: ``paramscope summary`` vs ``keras.saving.load_model`` + ``count_params``
  (goal >= 15x faster), and vs a bare zip + h5py header walk (goal: within 1.5x of it);
* legacy ``.h5`` ResNet50 (``model.save("x.h5")``): vs ``load_model`` + ``count_params``;
* torch ``.pt`` (a 91M-parameter tied LM): vs ``torch.load(mmap=True, weights_only=True)`` +
  counting (goal >= 10x);
* a generated 64-shard safetensors index of about 1e12 parameters, written as sparse files
  (no disk used): paramscope in <= 0.3 s and <= 60 MB peak memory.

Every timing is the best of three fresh processes; peak memory is the child's max RSS.
``--baseline SRC`` also times the paramscope found in another source tree (say a checkout of
the previous release's ``src``), in the same run, so a change's cost is measured side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}


def cold(code: str, repeats: int = 3, env: dict | None = None) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env or ENV, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def cold_with_memory(code: str) -> tuple[float, float]:
    """Best time of three fresh processes, and the peak RSS the process reports of itself."""
    report = (
        "; import resource, sys; sys.stderr.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))"
    )
    seconds = cold(code)
    result = subprocess.run(
        [sys.executable, "-c", code + report], env=ENV, check=True, capture_output=True, text=True
    )
    return seconds, int(result.stderr.strip().splitlines()[-1]) / 1024  # KiB -> MiB


def ours(path: Path) -> str:
    return f"from paramscope.cli import cli; cli(['summary', {str(path)!r}, '--format', 'json'], standalone_mode=False)"


def write_sharded_index(folder: Path, shards: int = 64, params: int = 10**12) -> Path:
    per_shard, tensors_per_shard = params // shards, 32
    rows = per_shard // tensors_per_shard // 8192
    weight_map = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        header, offset = {}, 0
        for t in range(tensors_per_shard):
            size = rows * 8192 * 2  # bf16
            header[f"layers.{s}.{t}.weight"] = {
                "dtype": "BF16",
                "shape": [rows, 8192],
                "data_offsets": [offset, offset + size],
            }
            weight_map[f"layers.{s}.{t}.weight"] = name
            offset += size
        raw = json.dumps(header).encode()
        with open(folder / name, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)) + raw)
            handle.truncate(8 + len(raw) + offset)  # sparse: the data is never written
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


def save_keras(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], env=ENV, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another paramscope source tree to time too")
    args = parser.parse_args()
    baseline_env = {**ENV, "PYTHONPATH": str(args.baseline.resolve())} if args.baseline else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keras_path, h5_path, pt_path = folder / "resnet50.keras", folder / "resnet50.h5", folder / "lm.pt"
        save_keras(
            f"import keras; m = keras.applications.ResNet50(weights=None); m.save({str(keras_path)!r}); "
            f"m.save({str(h5_path)!r})"
        )
        subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import sys, torch; sys.path.insert(0, 'benchmarks'); from run import TiedLM; "
                    f"torch.save(TiedLM().state_dict(), {str(pt_path)!r})"
                ),
            ],
            env=ENV,
            check=True,
            capture_output=True,
        )
        shards = folder / "sharded"
        shards.mkdir()
        index = write_sharded_index(shards)

        def measure(name: str, alternative: str, theirs: float, path: Path) -> None:
            before = cold(ours(path), env=baseline_env) if baseline_env else None
            rows.append((name, alternative, theirs, cold(ours(path)), before))

        measure(
            ".keras ResNet50",
            "keras load_model + count_params",
            cold(f"import keras; keras.saving.load_model({str(keras_path)!r}).count_params()"),
            keras_path,
        )
        measure(
            ".keras ResNet50",
            "bare zip + h5py header walk",
            cold(
                "import zipfile, h5py, json; z = zipfile.ZipFile(" + repr(str(keras_path)) + "); "
                "json.loads(z.read('config.json')); f = h5py.File(z.open('model.weights.h5'), 'r'); "
                "f.visititems(lambda n, o: getattr(o, 'shape', None))"
            ),
            keras_path,
        )
        measure(
            "legacy .h5 ResNet50",
            "keras load_model + count_params",
            cold(f"import keras; keras.saving.load_model({str(h5_path)!r}).count_params()"),
            h5_path,
        )
        measure(
            "torch .pt, 91M-param LM",
            "torch.load(mmap=True, weights_only=True)",
            cold(
                f"import torch; s = torch.load({str(pt_path)!r}, mmap=True, weights_only=True); "
                "sum(t.numel() for t in s.values())"
            ),
            pt_path,
        )
        seconds, peak = cold_with_memory(ours(index))
        before_index = cold(ours(index), env=baseline_env) if baseline_env else None

    baseline = " | baseline (s) | baseline ratio" if baseline_env else ""
    print(f"| file | alternative | alternative (s) | paramscope (s) | ratio{baseline} |")
    print("|---|---|---:|---:|---:" + ("|---:|---:" if baseline_env else "") + "|")
    for name, alternative, theirs, mine, before in rows:
        extra = f" | {before:.2f} | {theirs / before:.1f}×" if before else ""
        print(f"| {name} | {alternative} | {theirs:.2f} | {mine:.2f} | {theirs / mine:.1f}×{extra} |")
    print()
    print(f"64-shard safetensors index, ~1e12 parameters (sparse files): {seconds:.2f} s, peak {peak:.0f} MB")
    if before_index:
        print(f"  baseline: {before_index:.2f} s")


if __name__ == "__main__":
    main()
