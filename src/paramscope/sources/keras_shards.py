"""Keras 3 sharded weights (``model.save_weights("x.weights.json", max_shard_size=…)``).

The JSON index maps each layer's variable group to the shard files holding it; every shard
is a Keras 3 weights HDF5 file, walked in the sandbox like any other. Shard names must be
bare file names beside the index: an index could otherwise point anywhere on the disk.
Like a single ``.weights.h5``, the set stores no config, so roles are unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_walk import hdf5_structure
from paramscope.sources.keras_file import structure_report
from paramscope.sources.limits import MAX_HEADER_BYTES, MAX_SHARDS, MAX_TENSORS
from paramscope.sources.sandbox import run_sandboxed


def _shard_names(index: dict, label: str) -> list[str]:
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise InputError(f"{label}: no weight_map in this Keras weights index")
    names: list[str] = []
    for files in weight_map.values():
        for name in files if isinstance(files, list) else [files]:
            if not isinstance(name, str) or not name or name != Path(name).name or name in (".", ".."):
                raise InputError(f"{label}: shard name {name!r:.80} is not a bare file name")
            if name not in names:
                names.append(name)
    if len(names) > MAX_SHARDS:
        raise InputError(f"{label}: too many shards")
    return names


def _walk_shards(paths: list[str]) -> dict:
    """One structure of all shards (runs in the sandbox)."""
    groups: dict[str, dict] = {}
    datasets: list[dict] = []
    for path in paths:
        shard = hdf5_structure(path)
        for group, attributes in shard["groups"].items():  # a layer split over shards: merge
            groups.setdefault(group, {}).update(attributes)
        datasets += shard["datasets"]
        if len(datasets) > MAX_TENSORS:
            raise InputError("too many variables")
    return {"groups": groups, "datasets": datasets}


def read_keras_sharded(path: Path, budget: ReadBudget) -> Report:
    if path.stat().st_size > MAX_HEADER_BYTES:
        raise InputError(f"{path}: weights index larger than paramscope reads")
    try:
        index = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON weights index ({exc})") from None
    shards = [path.parent / name for name in _shard_names(index, str(path))]
    missing = [shard.name for shard in shards if not shard.is_file()]
    if missing:
        raise InputError(f"{path}: shard {missing[0]} is missing")
    structure = run_sandboxed(_walk_shards, [str(s) for s in shards], label=str(path))
    report = structure_report(structure, None, Source(kind="h5", path=str(path)), path.name)
    report.warnings.append(f"read from {len(shards)} HDF5 shard(s) named by the index.")
    return report
