"""Keras 3 sharded weights (``model.save_weights("x.weights.json", max_shard_size=…)``).

The JSON index maps each layer's variable group to the shard files holding it; every shard
is a Keras 3 weights HDF5 file, and all are walked in one sandboxed child. Shard names must be
bare file names beside the index, regular files: an index could otherwise point anywhere on
the disk. Names that are links to one file are one shard, read once. Like Keras's
ShardedH5IOStore, the shards read as one store — a layer split over two shards is one layer.
Like a single ``.weights.h5``, the set stores no config, so roles are unknown.
"""

from __future__ import annotations

import os
from pathlib import Path

from paramscope.core.report import Report
from paramscope.errors import InputError
from paramscope.sources.boundary import beside, expect, load_json, name_of, read_small, require_regular
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_structure import Attributes, Hdf5Structure, read_structures
from paramscope.sources.keras_store_report import weights_only_report


def _shard_names(index: object, budget: ReadBudget, label: str) -> list[str]:
    weight_map = expect(index, dict, label).get("weight_map")
    if not isinstance(weight_map, dict):
        raise InputError(f"{label}: no weight_map in this Keras weights index")
    names: dict[str, None] = {}
    for files in weight_map.values():
        budget.tick()
        for name in files if isinstance(files, list) else [files]:
            bare = _bare_name(name, budget, label)
            if bare not in names:
                names[bare] = None
                budget.charge("shards", 1, label)
    return list(names)


def _bare_name(name: object, budget: ReadBudget, label: str) -> str:
    shown = name_of(name, budget, f"{label}: a shard name")
    if not name or name != shown or name != Path(name).name or name in (".", ".."):
        raise InputError(f"{label}: shard name {name!r:.80} is not a bare file name")
    return name


def _distinct_files(paths: list[Path], label: str) -> list[Path]:
    """The shard files, each once: names that are links to one file (device and inode) are
    one shard, read once."""
    files: dict[tuple[int, int], Path] = {}
    for path in paths:
        if not os.path.lexists(path):
            raise InputError(f"{label}: shard {path.name!r:.80} is missing")
        require_regular(path)
        status = os.stat(path)
        files.setdefault((status.st_dev, status.st_ino), path)
    return list(files.values())


def _merged(shards: list[Hdf5Structure]) -> Hdf5Structure:
    """One structure of all shards; a layer's group split over several holds all their attributes."""
    groups: dict[str, Attributes] = {}
    datasets = []
    for shard in shards:
        for group, attributes in shard.groups.items():
            groups[group] = {**groups.get(group, {}), **attributes}
        datasets += shard.datasets
    return Hdf5Structure(groups, tuple(datasets))


def read_keras_sharded(path: Path, budget: ReadBudget) -> Report:
    index = load_json(read_small(path, budget, "weights index"), budget, f"{path}: weights index")
    names = _shard_names(index, budget, str(path))
    shards = _distinct_files([beside(path.parent, name, f"{path}: shard") for name in names], str(path))
    structure = _merged(read_structures(shards, budget, str(path)))
    note = f"read from {len(shards)} HDF5 shard(s) named by the index."
    return weights_only_report(structure, budget, str(path), path.name, (note,))
