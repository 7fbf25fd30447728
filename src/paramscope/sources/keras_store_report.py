"""The one place a Keras store becomes a Node tree: stored layers matched to their configs,
every variable named and given a role.

Names: a legacy ``.h5`` names each variable; Keras 3 only numbers them (``vars/0, 1, …``), so
names come from the layer specs (specs/): a layer's class, config and recorded build shapes
give the variables it creates, in order, which name the stored ones and say which are state.
A layer its spec does not describe as saved (no formula, or a config that contradicts the
weights) keeps numbered variables of unknown role: no guessing.

Roles are what loading the file gives, checked against Keras. Keras 3 decides per layer: a
variable trains when its layer's saved flag and the root model's are set. Keras 2 (a legacy
``.h5`` written by tf.keras) decides per parent — every enclosing flag must be set — but does
not restore a nested model's own flag, so a base saved frozen loads trainable (``lost``).
Variables created non-trainable (moving statistics, counters) are state; without a config,
the others' roles are unknown.

Linear time: configs are matched to stored layers once, each layer's subtree variable count
is computed once, and a spec is matched against at most as many variables as it lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from paramscope.core.report import Node, Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_structure import Hdf5Structure
from paramscope.sources.keras_store import KerasStore, StoredLayer, StoredVariable, keras3_store
from paramscope.sources.keras_store_config import LayerConfig
from paramscope.specs.lookup import NoFormula, spec_for
from paramscope.specs.spec import ANY_NAME

CONTAINERS = frozenset({"Functional", "Sequential", "Model"})
STATE_NAMES = frozenset(
    {"moving_mean", "moving_variance", "mean", "variance", "count", "seed_generator_state"}
)
Names = dict[StoredVariable, tuple[str, bool]]  # variable -> (name, created non-trainable)


@dataclass
class KerasTree:
    root: Node
    optimizer: TensorGroup | None
    unknown: list[str] = field(default_factory=list)  # variables no file name or spec names
    lost: list[str] = field(default_factory=list)  # nested models saved frozen, loaded trainable
    not_in_full: list[str] = field(default_factory=list)  # tensors the file holds fewer bytes of

    def storage_warnings(self) -> list[str]:
        """Counts a file declares but does not hold the data of, said as such."""
        if not self.not_in_full:
            return []
        shown = ", ".join(self.not_in_full[:3]) + ("…" if len(self.not_in_full) > 3 else "")
        return [
            f"{len(self.not_in_full)} tensor(s) not stored in full in the file (compressed, or never written: "
            f"{shown}): their counts are what their shapes declare."
        ]


@dataclass
class _Layer:
    """A stored layer matched to its config, its sublayers in model order."""

    stored: StoredLayer
    conf: LayerConfig | None
    children: list[_Layer]
    count: int  # variables in the whole subtree


def _matched(stored: StoredLayer, conf: LayerConfig | None) -> _Layer:
    """Model order is the config's (an HDF5 file lists groups alphabetically); layers the
    config does not list keep their stored order, after the others."""
    position = {name: i for i, name in enumerate(conf.children)} if conf is not None else {}
    ordered = sorted(stored.children, key=lambda child: position.get(child.name, len(position)))
    children = [_matched(child, conf.children.get(child.name) if conf else None) for child in ordered]
    return _Layer(stored, conf, children, len(stored.variables) + sum(child.count for child in children))


def _subtree_variables(layer: _Layer) -> Iterator[StoredVariable]:
    yield from layer.stored.variables
    for child in layer.children:
        if child.count:
            yield from _subtree_variables(child)


def _spec_names(layer: _Layer) -> Names | None:
    """Names and state flags for a layer's whole subtree from its spec; None without one."""
    conf = layer.conf
    if conf is None:
        return None
    try:
        spec = spec_for("keras_file", conf.class_name, conf.config, conf.build)
    except NoFormula:
        return None
    if spec is None or layer.count > len(spec.variables):
        return None
    remaining = list(spec.variables)
    names: Names = {}
    for variable in _subtree_variables(layer):
        match = next((v for v in remaining if v.shape == variable.shape), None)
        if match is None:
            return None  # the spec does not describe this layer as saved
        remaining.remove(match)
        names[variable] = (match.name, match.state)
    return names


def _named(variable: StoredVariable, names: Names | None) -> tuple[str, bool | None]:
    """A variable's name and whether it is state (None: unknown)."""
    if variable.name is not None:
        return variable.name, variable.name in STATE_NAMES
    if names is not None and variable in names:
        name, state = names[variable]
        return (f"var{variable.index}" if name == ANY_NAME else name), state  # unnamed: Keras numbers it
    return f"var{variable.index}", None


class _Flags:
    """The trainable flag that governs a layer's variables once the file is loaded."""

    def __init__(self, root: LayerConfig | None, per_parent: bool) -> None:
        self.root_trains = root.trainable if root is not None else True
        self.per_parent = per_parent
        self.lost: list[str] = []

    def of(self, conf: LayerConfig | None, parent_trains: bool, path: str) -> bool:
        if conf is None:
            return parent_trains
        if not self.per_parent:
            return self.root_trains and conf.trainable
        own = conf.trainable
        if conf.class_name in CONTAINERS and not own:
            self.lost.append(path or conf.name)
            own = True
        return parent_trains and own


def _role(state: bool | None, trains: bool, config_known: bool) -> Role:
    if state:
        return Role.STATE
    if state is None or not config_known:
        return Role.UNKNOWN
    return Role.TRAINABLE if trains else Role.FROZEN


def keras_tree(
    store: KerasStore, config: LayerConfig | None, fallback_name: str, per_parent: bool = False
) -> KerasTree:
    """The Node tree of a stored model, named and roled; ``per_parent`` for Keras 2 files."""
    builder = TreeBuilder()
    flags = _Flags(config, per_parent)
    unknown: list[str] = []
    not_in_full: list[str] = []

    def visit(layer: _Layer, path: str, name: str, names: Names | None, parent_trains: bool) -> Node:
        conf = layer.conf
        trains = flags.of(conf, parent_trains, path)
        names = names if names is not None else _spec_names(layer)
        node = Node(
            path=path,
            name=name,
            type=conf.class_name if conf is not None else "",
            trainable=conf.trainable if conf is not None else None,
            config=conf.config if conf is not None else None,
            build=conf.build if conf is not None else None,
        )
        tensor_names = UniqueNames()
        for variable in layer.stored.variables:
            tensor_name, state = _named(variable, names)
            if state is None:
                unknown.append(join_path(path, tensor_name))
            if not variable.in_full:
                not_in_full.append(join_path(path, tensor_name))
            role = _role(state, trains, config is not None)
            node.tensors.append(
                builder.tensor(
                    variable, path, tensor_names(tensor_name), variable.shape, variable.dtype, role
                )
            )
        child_names = UniqueNames()
        for child in layer.children:
            child_name = child_names(child.stored.name)
            node.children.append(visit(child, join_path(path, child_name), child_name, names, trains))
        return node

    root_name = (config.name if config is not None else "") or store.root.name or fallback_name
    root = visit(_matched(store.root, config), "", root_name, None, True)
    optimizer_names = UniqueNames()
    optimizer = [
        builder.tensor(
            v, "optimizer", optimizer_names(v.name or f"var{v.index}"), v.shape, v.dtype, Role.STATE
        )
        for v in store.optimizer
    ]
    not_in_full += [f"optimizer/{v.name or f'var{v.index}'}" for v in store.optimizer if not v.in_full]
    group = TensorGroup("optimizer", optimizer) if optimizer else None
    return KerasTree(root, group, unknown, flags.lost, not_in_full)


WEIGHTS_ONLY = "a weights-only file stores no trainability: roles are unknown."


def weights_only_report(
    structure: Hdf5Structure, budget: ReadBudget, path: str, name: str, notes: tuple[str, ...] = ()
) -> Report:
    """A Keras 3 ``save_weights`` file, alone or sharded: no config, so variables are named by
    their index and their roles are unknown."""
    tree = keras_tree(keras3_store(structure, budget), None, name)
    return Report(
        source=Source(kind="h5", path=path),
        root=tree.root,
        optimizer=tree.optimizer,
        warnings=[WEIGHTS_ONLY, *tree.storage_warnings(), *notes],
    )
