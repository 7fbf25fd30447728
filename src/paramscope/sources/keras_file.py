"""Keras 3 ``.keras`` archives (config.json + model.weights.h5 or .npz), read without Keras.

The weights file names each variable only ``layers/<attribute>/vars/<i>``. Names and roles
come from the layer specs (specs/): for each layer in config.json, its class, config and
recorded build shape give the variables it creates, in order, which name the stored ones
and say which are state. Roles follow Keras 3's own load semantics, checked against Keras:
a variable trains when its layer's saved ``trainable`` flag and the root model's are set.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from paramscope.core.report import Node, Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.errors import InputError
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_walk import hdf5_structure
from paramscope.sources.keras_npz import WEIGHTS_MEMBER, npz_structure
from paramscope.sources.sandbox import Sandboxed
from paramscope.specs.lookup import spec_for
from paramscope.specs.spec import ANY_NAME

MAX_CONFIG_BYTES = 64 * 1024 * 1024
NOT_LAYERS = frozenset({"optimizer", "metrics"})  # top-level groups Keras saves beside the layers


@dataclass
class LayerConfig:
    name: str
    class_name: str
    config: dict
    build: dict
    children: dict[str, LayerConfig] = field(default_factory=dict)

    @property
    def trainable(self) -> bool:
        return bool(self.config.get("trainable", True))


def config_tree(obj: dict) -> LayerConfig:
    config = obj.get("config") or {}
    layer = LayerConfig(
        config.get("name", ""), obj.get("class_name", ""), config, obj.get("build_config") or {}
    )
    nested = config.get("layers") if isinstance(config.get("layers"), list) else []
    for key in ("layer", "backward_layer"):
        if isinstance(config.get(key), dict):
            nested = [*nested, config[key]]
    for child in nested:
        if isinstance(child, dict):
            parsed = config_tree(child)
            layer.children[parsed.name] = parsed
    return layer


@dataclass
class RawVar:
    index: int
    shape: tuple[int, ...]
    dtype: str
    key: str


@dataclass
class RawLayer:
    group: str
    name: str
    variables: list[RawVar]
    children: list[RawLayer]


def _layers(structure: dict) -> tuple[RawLayer, list[RawVar]]:
    groups, datasets = structure["groups"], structure["datasets"]
    by_group: dict[str, list[RawVar]] = {}
    for dataset in datasets:
        parent, _, leaf = dataset["path"].rpartition("/")
        if leaf.isdigit():
            by_group.setdefault(parent, []).append(
                RawVar(int(leaf), tuple(dataset["shape"]), dataset["dtype"], dataset["path"])
            )
    for variables in by_group.values():
        variables.sort(key=lambda v: v.index)

    def layer(group: str) -> RawLayer:
        vars_group = join_path(group, "vars")
        name = str(groups.get(vars_group, {}).get("name", group.rsplit("/", 1)[-1]))
        children = []
        for candidate in sorted(groups):
            parent, _, leaf = candidate.rpartition("/")
            if leaf == "vars" or join_path(candidate, "vars") not in groups or candidate in NOT_LAYERS:
                continue
            if parent == group or (parent == join_path(group, "layers") and group != candidate):
                children.append(layer(candidate))
        return RawLayer(group, name, by_group.get(vars_group, []), children)

    optimizer = by_group.get("optimizer/vars", [])
    return layer(""), optimizer


def _order(children: list[RawLayer], config: LayerConfig | None) -> list[RawLayer]:
    """Model order: as config.json lists the layers (the HDF5 file lists them alphabetically)."""
    if config is None:
        return children
    position = {name: i for i, name in enumerate(config.children)}
    return sorted(children, key=lambda c: position.get(c.name, len(position)))


def _subtree_vars(layer: RawLayer, config: LayerConfig | None) -> list[RawVar]:
    found = list(layer.variables)
    for child in _order(layer.children, config):
        found += _subtree_vars(child, config.children.get(child.name) if config else None)
    return found


def _names_for(layer: RawLayer, config: LayerConfig | None) -> dict[str, tuple[str, bool]] | None:
    """key -> (name, is_state) for a layer's whole subtree, from its spec; None without one."""
    if config is None:
        return None
    try:
        spec = spec_for("keras_file", config.class_name, config.config, config.build)
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    if spec is None:
        return None
    remaining = list(spec.variables)
    names = {}
    for variable in _subtree_vars(layer, config):
        match = next((v for v in remaining if v.shape == variable.shape), None)
        if match is None:
            return None  # the spec does not describe this layer as saved: no guessing
        remaining.remove(match)
        names[variable.key] = (match.name, match.state)
    return names


def _read_config(archive: zipfile.ZipFile, path: Path) -> tuple[LayerConfig, dict]:
    try:
        if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
            raise InputError(f"{path}: config.json is larger than paramscope reads")
        config = json.loads(archive.read("config.json"))
        names = archive.namelist()
        metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    except (KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable .keras archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict) or not isinstance(metadata, dict):
        raise InputError(f"{path}: config.json or metadata.json is not a JSON object")
    return config_tree(config), metadata


def read_keras(path: Path, archive: zipfile.ZipFile, budget: ReadBudget) -> Report:
    if True:
        names = set(archive.namelist())
        if "model.weights.h5" in names:
            # started first: the child walks the HDF5 while this process parses config.json
            with Sandboxed(hdf5_structure, str(path), "model.weights.h5", label=str(path)) as walk:
                root_config, metadata = _read_config(archive, path)
                structure = walk.result()
        elif WEIGHTS_MEMBER in names:
            root_config, metadata = _read_config(archive, path)
            structure = npz_structure(archive)
            _name_layer_groups(structure, root_config)
        else:
            raise InputError(f"{path}: a .keras archive without model.weights.h5 or model.weights.npz")
    source = Source(kind="keras_file", framework_version=metadata.get("keras_version"), path=str(path))
    return structure_report(structure, root_config, source, path.name)


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


def _name_layer_groups(structure: dict, root: LayerConfig) -> None:
    """Record each layer's name on its group, as the HDF5 layout does and the npz one does not."""
    groups = structure["groups"]

    def visit(group: str, conf: LayerConfig) -> None:
        for segment, name in _saved_attributes(conf).items():
            child = join_path(join_path(group, "layers"), segment)
            if join_path(child, "vars") in groups:
                groups[join_path(child, "vars")].setdefault("name", name)
                visit(child, conf.children[name])

    visit("", root)


def is_keras3_weights(structure: dict) -> bool:
    """Whether an HDF5 structure is Keras 3's per-layer layout (`layers/<attr>/vars/<i>`)."""
    return any(group == "vars" or group.endswith("/vars") for group in structure["groups"])


def structure_report(
    structure: dict, root_config: LayerConfig | None, source: Source, fallback_name: str
) -> Report:
    """A Report of Keras 3's weights layout; without a config (a bare `.weights.h5`), every
    variable is named by its index and its role is unknown."""
    raw_root, optimizer_vars = _layers(structure)
    builder = TreeBuilder()
    unknown: list[str] = []
    root_trains = root_config.trainable if root_config is not None else True

    def visit(
        raw: RawLayer, conf: LayerConfig | None, path_: str, names: dict | None, owner_trains: bool
    ) -> Node:
        trains = conf.trainable if conf is not None else owner_trains
        if names is None:
            names = _names_for(raw, conf)
        node = Node(
            path=path_,
            name=raw.name
            if path_
            else ((root_config.name if root_config else "") or raw.name or fallback_name),
            type=conf.class_name if conf is not None else "",
            trainable=conf.trainable if conf is not None else None,
            config=conf.config if conf is not None else None,
            build=conf.build if conf is not None else None,
        )
        tensor_names = UniqueNames()
        for variable in raw.variables:
            if names is not None and variable.key in names:
                name, state = names[variable.key]
                if name == ANY_NAME:  # created without a name: Keras numbers it at load time
                    name = f"var{variable.index}"
                role = Role.STATE if state else Role.TRAINABLE if (root_trains and trains) else Role.FROZEN
            else:
                name, role = f"var{variable.index}", Role.UNKNOWN
                unknown.append(join_path(path_, name))
            node.tensors.append(
                builder.tensor(variable.key, path_, tensor_names(name), variable.shape, variable.dtype, role)
            )
        child_names = UniqueNames()
        for child in _order(raw.children, conf):
            child_conf = conf.children.get(child.name) if conf is not None else None
            name = child_names(child.name)
            node.children.append(visit(child, child_conf, join_path(path_, name), names, trains))
        return node

    root = visit(raw_root, root_config, "", None, True)
    optimizer = None
    if optimizer_vars:
        names = UniqueNames()
        optimizer = TensorGroup(
            "optimizer",
            [
                builder.tensor(v.key, "optimizer", names(f"var{v.index}"), v.shape, v.dtype, Role.STATE)
                for v in optimizer_vars
            ],
        )
    warnings = []
    if root_config is None:
        warnings.append("a weights-only file stores no trainability: roles are unknown.")
    elif unknown:
        warnings.append(
            f"{len(unknown)} variable(s) of layers paramscope has no formula for have unknown roles "
            f"({', '.join(unknown[:3])}{'…' if len(unknown) > 3 else ''})."
        )
    return Report(
        source=source,
        root=root,
        optimizer=optimizer,
        warnings=warnings,
    )
