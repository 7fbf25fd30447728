"""Keras 3 ``.keras`` archives (config.json + model.weights.h5 or .npz), read without Keras.

The weights file names each variable only ``layers/<attribute>/vars/<i>``; config.json says
which layer each group is, of which class, with which saved ``trainable`` flag and build
shapes. The store (keras_store.py) reads the weights layout, keras_store_report.py names the
variables from the layer specs and gives them the roles Keras 3's loader gives them.

The HDF5 weights are walked in the sandbox while this process parses config.json: the two
overlap, which is most of what makes reading a .keras file fast.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import replace
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Source
from paramscope.core.tree import join_path
from paramscope.errors import InputError
from paramscope.sources.archive import read_member, zip_errors
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_structure import Hdf5Structure, start_walk, structure_of
from paramscope.sources.keras_npz import WEIGHTS_MEMBER as NPZ_WEIGHTS
from paramscope.sources.keras_npz import npz_structure
from paramscope.sources.keras_store import keras3_store
from paramscope.sources.keras_store_config import LayerConfig, keras_version, model_config
from paramscope.sources.keras_store_report import keras_tree

HDF5_WEIGHTS = "model.weights.h5"
CONFIG = "config.json"
METADATA = "metadata.json"


def _read_config(archive: zipfile.ZipFile, budget: ReadBudget, label: str) -> tuple[LayerConfig, str | None]:
    """The model's layer configs and the Keras version that saved it."""
    with zip_errors(label):
        config = read_member(archive, CONFIG, budget, "header_bytes")
        metadata = (
            read_member(archive, METADATA, budget, "header_bytes") if METADATA in archive.namelist() else None
        )
    root = model_config(config, budget, CONFIG)
    return root, keras_version(metadata, budget, METADATA) if metadata is not None else None


def read_keras(path: Path, archive: zipfile.ZipFile, budget: ReadBudget) -> Report:
    names = set(archive.namelist())
    if HDF5_WEIGHTS in names:
        with start_walk(path, budget, member=HDF5_WEIGHTS) as walk:  # the child walks meanwhile
            config, version = _read_config(archive, budget, str(path))
            structure = structure_of(walk.result(), budget, str(path))
    elif NPZ_WEIGHTS in names:
        config, version = _read_config(archive, budget, str(path))
        structure = _named_by_config(npz_structure(archive, budget), config)
    else:
        raise InputError(f"{path}: a .keras archive without {HDF5_WEIGHTS} or {NPZ_WEIGHTS}")
    tree = keras_tree(keras3_store(structure, budget), config, path.name, budget=budget)
    warnings = tree.storage_warnings()
    if tree.unknown:
        shown = ", ".join(tree.unknown[:3]) + ("…" if len(tree.unknown) > 3 else "")
        warnings.append(
            f"{len(tree.unknown)} variable(s) of layers paramscope has no formula for have unknown roles ({shown})."
        )
    return Report(
        source=Source(kind=Kind.KERAS_FILE, framework_version=version, path=str(path)),
        root=tree.root,
        optimizer=tree.optimizer,
        warnings=warnings,
    )


def _snake_case(class_name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _saved_attributes(conf: LayerConfig) -> dict[str, str]:
    """The path segment Keras saves each child layer under -> the child's name.

    Keras addresses a container's layers by snake-cased class name, numbered in order
    (``saving_lib._save_container_state``), not by name. ``Sequential.layers`` leaves its
    input layer out; a functional model's keeps them.
    """
    used: dict[str, int] = {}
    segments = {}
    for child in conf.children.values():
        if child.class_name == "InputLayer" and conf.class_name == "Sequential":
            continue
        base = _snake_case(child.class_name)
        used[base] = used[base] + 1 if base in used else 0
        segments[f"{base}_{used[base]}" if used[base] else base] = child.name
    return segments


def _named_by_config(structure: Hdf5Structure, root: LayerConfig) -> Hdf5Structure:
    """The npz layout with each layer's name on its ``vars`` group, as the HDF5 layout has it."""
    groups = dict(structure.groups)

    def visit(group: str, conf: LayerConfig) -> None:
        for segment, name in _saved_attributes(conf).items():
            child = join_path(join_path(group, "layers"), segment)
            vars_group = join_path(child, "vars")
            if vars_group in groups:
                groups[vars_group] = {"name": name, **groups[vars_group]}
                visit(child, conf.children[name])

    visit("", root)
    return replace(structure, groups=groups)
