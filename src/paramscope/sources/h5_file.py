"""Legacy Keras ``.h5`` files (``model.save("x.h5")``, ``save_weights``), Keras 2 or 3 writers.

The HDF5 structure is read in the sandbox (sandbox.py). ``model_weights`` lists the layers
(``layer_names``) and, per layer, its weights in order (``weight_names``: full variable paths
from Keras 3, ``layer/kernel:0`` from Keras 2). ``model_config`` gives each layer's class and
saved ``trainable`` flag. Roles are what loading the file gives, checked against Keras: Keras 3
decides per layer (its own flag); Keras 2 per parent (every enclosing flag must be set), but it
does not restore a nested model's flag, so a base frozen with ``base.trainable = False`` loads
trainable — reported with a warning. Weights named as statistics (moving mean/variance,
Normalization's mean/variance/count) are state. A weights-only file stores no flags: roles
are unknown except those statistics. Keras 3's ``save_weights`` layout goes to keras_file.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from paramscope.core.report import Node, Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.errors import InputError
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_walk import hdf5_structure
from paramscope.sources.keras_file import LayerConfig, config_tree, is_keras3_weights, structure_report
from paramscope.sources.sandbox import run_sandboxed

CONTAINERS = frozenset({"Functional", "Sequential", "Model"})
STATE_NAMES = frozenset(
    {"moving_mean", "moving_variance", "mean", "variance", "count", "seed_generator_state"}
)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _weights(structure: dict) -> tuple[list[tuple[str, tuple, str]], list[tuple[str, tuple, str]], dict]:
    groups, root = structure["groups"], structure["root"]
    shapes = {d["path"]: (tuple(d["shape"]), d["dtype"]) for d in structure["datasets"]}
    base = "model_weights" if "model_weights" in groups else ""
    attrs = groups.get(base, {}) if base else root
    if "layer_names" not in attrs:
        raise InputError("an HDF5 file, but not a Keras model or weights file (no layer_names)")
    entries = []
    for layer in _strings(attrs["layer_names"]):
        group = join_path(base, layer)
        for name in _strings(groups.get(group, {}).get("weight_names", [])):
            dataset = f"{group}/{name}"
            if dataset not in shapes:
                raise InputError(f"weight {name!r} of layer {layer!r} is listed but not stored")
            clean = name.split(":", 1)[0]
            scoped = layer == "top_level_model_weights" or clean.startswith(layer + "/")
            entries.append((clean if scoped else f"{layer}/{clean}", *shapes[dataset]))
    optimizer = []
    for name in _strings(groups.get("optimizer_weights", {}).get("weight_names", [])):
        dataset = f"optimizer_weights/{name}"
        if dataset in shapes:
            optimizer.append((name.split(":", 1)[0], *shapes[dataset]))
    return entries, optimizer, attrs


def read_h5(path: Path, budget: ReadBudget) -> Report:
    structure = run_sandboxed(hdf5_structure, str(path), label=str(path))
    if "layer_names" not in structure["root"] and is_keras3_weights(structure):  # Keras 3 save_weights()
        return structure_report(structure, None, Source(kind="h5", path=str(path)), path.name)
    entries, optimizer_entries, attrs = _weights(structure)
    root_attrs = structure["root"]
    version = str(root_attrs.get("keras_version") or attrs.get("keras_version") or "")
    per_parent = version.startswith("2")
    raw_config = root_attrs.get("model_config")
    try:
        config = config_tree(json.loads(raw_config)) if raw_config else None
    except (json.JSONDecodeError, TypeError, AttributeError):
        raise InputError(f"{path}: model_config is not valid JSON") from None
    lost: list[str] = []  # nested models frozen when saved whose flag Keras 2 does not restore

    def loaded_flag(layer_config: LayerConfig, path_: str) -> bool:
        if per_parent and layer_config.class_name in CONTAINERS and not layer_config.trainable:
            lost.append(path_ or layer_config.name)
            return True
        return layer_config.trainable

    root_trains = loaded_flag(config, "") if config is not None else True
    builder = TreeBuilder()
    root = Node(
        path="",
        name=config.name if config else path.name,
        type=config.class_name if config else "",
        trainable=config.trainable if config else None,
    )
    nodes: dict[str, tuple[Node, LayerConfig | None, bool]] = {"": (root, config, root_trains)}
    names: dict[str, UniqueNames] = {}
    for full, shape, dtype in entries:
        *parents, leaf = full.split("/")
        parent_path = ""
        for part in parents:
            node_path = join_path(parent_path, part)
            if node_path not in nodes:
                parent, parent_config, parent_trains = nodes[parent_path]
                layer_config = parent_config.children.get(part) if parent_config else None
                own = loaded_flag(layer_config, node_path) if layer_config else parent_trains
                trains = (parent_trains and own) if per_parent else own
                child = Node(
                    path=node_path,
                    name=part,
                    type=layer_config.class_name if layer_config else "",
                    trainable=layer_config.trainable if layer_config else None,
                    config=layer_config.config if layer_config else None,
                    build=layer_config.build if layer_config else None,
                )
                parent.children.append(child)
                nodes[node_path] = (child, layer_config, trains)
            parent_path = node_path
        node, _, trains = nodes[parent_path]
        if leaf in STATE_NAMES:
            role = Role.STATE
        elif config is None:
            role = Role.UNKNOWN
        else:
            role = Role.TRAINABLE if (root_trains and trains) else Role.FROZEN
        unique = names.setdefault(parent_path, UniqueNames())
        node.tensors.append(builder.tensor(full, parent_path, unique(leaf), shape, dtype, role))
    optimizer = None
    if optimizer_entries:
        unique = UniqueNames()
        optimizer = TensorGroup(
            "optimizer",
            [
                builder.tensor(("optimizer", n), "optimizer", unique(n), s, d, Role.STATE)
                for n, s, d in optimizer_entries
            ],
        )
    warnings = []
    if config is None:
        warnings.append(
            "a weights-only file stores no trainability: roles are unknown except statistics (state)."
        )
    if lost:
        warnings.append(
            "saved frozen, loads trainable: tf.keras restores the trainable flags of layers but not of nested "
            f"models ({', '.join(lost[:3])}); roles here are as loading gives them. Set the flag again after "
            "load_model(), or save in the .keras format."
        )
    return Report(
        source=Source(kind="h5", framework_version=version or None, path=str(path)),
        root=root,
        optimizer=optimizer,
        warnings=warnings,
    )
