"""One view of every Keras weights layout: a tree of stored layers, each with its variables.

Modelled on the stores of ``keras/src/saving/saving_lib.py`` (H5IOStore, NpzIOStore,
ShardedH5IOStore), which all answer one question — the variables saved for the layer at a
path — whatever the file looks like:

* Keras 3 (``.keras`` with HDF5 or npz weights, ``.weights.h5``, sharded ``.weights.json``):
  a layer's variables are ``<path>/vars/0, 1, …``, its sublayers sit below it, containers'
  under ``<path>/layers/``; the ``vars`` group carries the layer's ``name``;
* legacy ``.h5``: ``layer_names`` lists the layers and each layer's ``weight_names`` its
  variables by name (full paths ``outer/inner/kernel`` from Keras 3, ``layer/kernel:0`` from
  Keras 2).

Both are read here into :class:`StoredLayer` trees, in time linear in the file's groups and
datasets; keras_store_report.py turns any of them into a Report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from paramscope.core.tree import join_path
from paramscope.errors import InputError
from paramscope.sources.boundary import name_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.hdf5_structure import Attribute, Hdf5Dataset, Hdf5Structure

NOT_LAYERS = frozenset({"optimizer", "metrics"})  # top-level groups Keras 3 saves beside the layers
OPTIMIZER_VARS = "optimizer/vars"
MAX_INDEX_DIGITS = 18


@dataclass(frozen=True, eq=False)  # compared by identity: each is one stored tensor
class StoredVariable:
    index: int  # its position among its layer's variables
    shape: tuple[int, ...]
    dtype: str
    name: str | None = None  # the name the file gives it (legacy .h5, TorchModuleWrapper); else numbered
    in_full: bool = True  # False: the file holds fewer bytes than the shape declares
    key: str | None = None  # the HDF5 dataset's path (``layers/dense/vars/0``, ``dense/dense/kernel:0``)


@dataclass
class StoredLayer:
    name: str
    variables: list[StoredVariable] = field(default_factory=list)
    children: list[StoredLayer] = field(default_factory=list)


@dataclass(frozen=True)
class KerasStore:
    root: StoredLayer
    optimizer: tuple[StoredVariable, ...] = ()


def is_keras3_layout(structure: Hdf5Structure) -> bool:
    """Whether an HDF5 structure is Keras 3's per-layer layout (``…/vars/<i>``)."""
    return any(group == "vars" or group.endswith("/vars") for group in structure.groups)


def _in_full(dataset: Hdf5Dataset) -> bool:
    return dataset.stored >= dataset.declared


def _numbered(datasets: Iterable[Hdf5Dataset]) -> dict[str, list[StoredVariable]]:
    """``<group>/<i>`` datasets by group, in index order. A layer that saves its variables
    under names (``TorchModuleWrapper``: its module's ``state_dict()`` keys) keeps them, after
    the numbered ones, in file order."""
    by_group: dict[str, list[StoredVariable]] = {}
    for dataset in datasets:
        group, _, leaf = dataset.path.rpartition("/")
        if leaf.isascii() and leaf.isdigit() and len(leaf) <= MAX_INDEX_DIGITS:
            variable = StoredVariable(
                int(leaf), dataset.shape, dataset.dtype, in_full=_in_full(dataset), key=dataset.path
            )
        elif group == "vars" or group.endswith("/vars"):
            position = len(by_group.get(group, ()))
            variable = StoredVariable(
                position, dataset.shape, dataset.dtype, leaf, _in_full(dataset), dataset.path
            )
        else:
            continue
        by_group.setdefault(group, []).append(variable)
    for variables in by_group.values():
        variables.sort(key=lambda v: (v.name is not None, v.index))
    return by_group


def _owner(group: str, layers: set[str]) -> str | None:
    """The layer a layer group belongs to: its parent, or the layer whose ``layers`` holds it."""
    parent, _, _ = group.rpartition("/")
    if parent == "" or parent in layers:
        return parent
    container, _, leaf = parent.rpartition("/")
    if leaf == "layers" and (container == "" or container in layers):
        return container
    return None  # below no layer: Keras never writes it, and no path of the model reaches it


def keras3_store(structure: Hdf5Structure, budget: ReadBudget) -> KerasStore:
    """The layers of Keras 3's layout; a children index built once, each group placed once."""
    groups = structure.groups
    variables = _numbered(structure.datasets)
    layers = {
        group
        for group in groups
        if group not in NOT_LAYERS
        and group.rpartition("/")[2] != "vars"
        and join_path(group, "vars") in groups
    }
    children: dict[str, list[str]] = {}
    for group in sorted(layers):
        budget.tick()
        owner = _owner(group, layers)
        if owner is not None:
            children.setdefault(owner, []).append(group)

    def layer(group: str, depth: int) -> StoredLayer:
        if depth > budget.limits.depth:
            raise BudgetExceeded("depth", budget.limits.depth, "nested layers")
        vars_group = join_path(group, "vars")
        name = groups.get(vars_group, {}).get("name", group.rpartition("/")[2])
        return StoredLayer(
            _name(name, budget, f"layer {group!r:.80}"),
            variables.get(vars_group, []),
            [layer(child, depth + 1) for child in children.get(group, [])],
        )

    return KerasStore(layer("", 0), tuple(variables.get(OPTIMIZER_VARS, [])))


def _name(value: Attribute, budget: ReadBudget, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what}: a name that is a list, not text")
    return name_of(value, budget, what)


def _names(attributes, key: str, budget: ReadBudget, what: str) -> list[str]:
    """A list-of-names attribute (one text is a list of one), each a bounded name."""
    value = attributes.get(key, ())
    return [name_of(item, budget, what) for item in ((value,) if isinstance(value, str) else value)]


def _scoped(layer: str, weight: str) -> str:
    """A weight's full path: Keras 2 names it ``kernel:0`` under its layer, Keras 3 in full."""
    clean = weight.split(":", 1)[0]
    if layer == "top_level_model_weights" or clean.startswith(layer + "/"):
        return clean
    return f"{layer}/{clean}"


def legacy_store(structure: Hdf5Structure, budget: ReadBudget) -> KerasStore:
    """The layers of a legacy ``.h5``: nodes from the names in ``weight_names``."""
    groups = structure.groups
    base = "model_weights" if "model_weights" in groups else ""
    listing = groups.get(base, {}) if base else structure.root
    if "layer_names" not in listing:
        raise InputError("an HDF5 file, but not a Keras model or weights file (no layer_names)")
    datasets = {dataset.path: dataset for dataset in structure.datasets}
    root = StoredLayer("")
    nodes: dict[tuple[str, ...], StoredLayer] = {(): root}
    for layer in _names(listing, "layer_names", budget, "layer_names"):
        group = join_path(base, layer)
        for weight in _names(groups.get(group, {}), "weight_names", budget, f"weight_names of {layer!r:.80}"):
            budget.tick()
            dataset = datasets.pop(f"{group}/{weight}", None)  # each stored weight is listed once
            if dataset is None:
                raise InputError(
                    f"weight {weight!r:.80} of layer {layer!r:.80} is not stored, or listed twice"
                )
            *parents, leaf = _scoped(layer, weight).split("/")
            node = _node(nodes, tuple(parents), budget)
            node.variables.append(
                StoredVariable(
                    len(node.variables), dataset.shape, dataset.dtype, leaf, _in_full(dataset), dataset.path
                )
            )
    optimizer = []
    for weight in _names(
        groups.get("optimizer_weights", {}), "weight_names", budget, "optimizer weight_names"
    ):
        dataset = datasets.pop(f"optimizer_weights/{weight}", None)
        if dataset is not None:
            name = weight.split(":", 1)[0]
            optimizer.append(
                StoredVariable(
                    len(optimizer), dataset.shape, dataset.dtype, name, _in_full(dataset), dataset.path
                )
            )
    return KerasStore(root, tuple(optimizer))


def _node(
    nodes: dict[tuple[str, ...], StoredLayer], parts: tuple[str, ...], budget: ReadBudget
) -> StoredLayer:
    """The stored layer at ``parts``, made (with its missing parents) on first use."""
    node = nodes.get(parts)
    if node is None:
        if len(parts) > budget.limits.depth:
            raise BudgetExceeded("depth", budget.limits.depth, "nested weight names")
        parent = _node(nodes, parts[:-1], budget)
        node = nodes[parts] = StoredLayer(parts[-1])
        parent.children.append(node)
    return node
