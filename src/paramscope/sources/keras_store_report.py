"""The one place a Keras store becomes a Node tree: stored layers matched to their configs,
every variable named and given a role.

Names: a legacy ``.h5`` names each variable; Keras 3 only numbers them (``vars/0, 1, …``), so
names come from the layer specs (specs/): a layer's class, config and recorded build shapes
give the variables it creates, in order, which name the stored ones and say which are state.
A layer its spec does not describe as saved (no formula, or a config that contradicts the
weights) keeps numbered variables of unknown role: no guessing. A quantized layer
(``layer.quantize("int8" | "int4" | "float8")``, recorded in its dtype policy) saves its
variables in its ``variable_serialization_spec`` order, which names them; a
``TorchModuleWrapper`` saves its module's ``state_dict()`` under its own keys, and the module
pickled in its config tells parameters from buffers (keras_store_config.py).

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

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from paramscope.core.dtypes import tensor_bytes
from paramscope.core.kinds import Kind
from paramscope.core.report import Node, Report, Role, Source, Tensor, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_structure import Hdf5Structure
from paramscope.sources.keras_store import KerasStore, StoredLayer, StoredVariable, keras3_store
from paramscope.sources.keras_store_config import (
    LayerConfig,
    quantization_of,
    quantized_marker,
    torch_module_tensors,
)
from paramscope.specs.lookup import NoFormula, spec_for
from paramscope.specs.spec import ANY_NAME, LayerSpec

CONTAINERS = frozenset({"Functional", "Sequential", "Model"})
STATE_NAMES = frozenset(
    {"moving_mean", "moving_variance", "mean", "variance", "count", "seed_generator_state"}
)
DENSE_SAVED = {  # Dense and EinsumDense ``variable_serialization_spec``: the order save_own_variables writes
    "int8": ("kernel", "bias", "kernel_scale"),
    "int4": ("kernel", "bias", "kernel_scale", "kernel_zero", "g_idx"),
    "float8": (
        "kernel",
        "bias",
        "inputs_scale",
        "inputs_amax_history",
        "kernel_scale",
        "kernel_amax_history",
        "outputs_grad_scale",
        "outputs_grad_amax_history",
    ),
}
QUANTIZED_SAVED = {
    "Dense": DENSE_SAVED,
    "EinsumDense": DENSE_SAVED,
    "Embedding": {
        "int8": ("embeddings", "embeddings_scale"),
        "int4": ("embeddings", "embeddings_scale", "embeddings_zero", "g_idx"),
    },
}
GROUPED_ONLY = frozenset({"kernel_zero", "embeddings_zero", "g_idx"})  # saved by sub-channel int4 only


@dataclass(frozen=True)
class Naming:
    """What a stored variable is, as its layer creates it."""

    name: str
    state: bool | None  # created non-trainable (statistics, counters, quantization scales); None: unknown
    trains: bool = True  # False: a weight that never trains (quantized; requires_grad=False)
    quantized: str | None = None  # see Tensor.quantized
    params: int | None = None  # the logical parameters of a packed weight (int4: two per byte)
    persistent: bool | None = None  # a wrapped torch module's buffer


Names = dict[StoredVariable, Naming]


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


def _spec(conf: LayerConfig | None) -> LayerSpec | None:
    if conf is None:
        return None
    try:
        return spec_for("keras_file", conf.class_name, conf.config, conf.build)
    except NoFormula:
        return None


def _layer_names(layer: _Layer, budget: ReadBudget) -> Names | None:
    """Names and roles for a layer's whole subtree; None where nothing describes it."""
    conf = layer.conf
    if conf is not None and conf.class_name == "TorchModuleWrapper":
        return _torch_module_names(layer, conf, budget)
    if conf is not None and quantization_of(conf.config) is not None:
        return _quantized_names(layer, conf)
    spec = _spec(conf)
    if spec is None or layer.count > len(spec.variables):
        return None
    remaining = list(spec.variables)
    names: Names = {}
    for variable in _subtree_variables(layer):
        match = next((v for v in remaining if v.shape == variable.shape), None)
        if match is None:
            return None  # the spec does not describe this layer as saved
        remaining.remove(match)
        names[variable] = Naming(match.name, match.state)
    return names


def _quantized_names(layer: _Layer, conf: LayerConfig) -> Names | None:
    """A quantized layer's variables, in the order its ``save_own_variables`` writes them.

    The unquantized spec gives the shapes the quantized weights stand for: an int8 kernel
    keeps its shape, an int4 one packs two values per byte along its last axis, so its logical
    parameters are the spec's kernel's. The quantized weight never trains (Keras creates it
    non-trainable); scales, zero points, group indices and amax histories are state.
    """
    quantization = quantization_of(conf.config)
    order = QUANTIZED_SAVED.get(conf.class_name, {}).get(quantization.mode)
    spec = _spec(conf)
    if order is None or spec is None or layer.children:
        return None
    logical = {v.name: v.shape for v in spec.variables}
    saved = [
        name
        for name in order
        if (name != "bias" or "bias" in logical) and (name not in GROUPED_ONLY or quantization.grouped)
    ]
    if len(saved) != len(layer.stored.variables):
        return None
    names: Names = {}
    for variable, name in zip(layer.stored.variables, saved, strict=True):
        marker = quantized_marker(name, quantization.mode)
        shape = logical.get(name)
        if marker == "int4":
            params = math.prod(shape) if shape is not None else -1
            if not math.prod(variable.shape) <= params <= 2 * math.prod(variable.shape):
                return None
            names[variable] = Naming(name, False, False, marker, params)
        elif shape is not None and variable.shape != shape:
            return None
        else:
            weight = marker == quantization.mode
            state = marker is not None and not weight
            names[variable] = Naming(name, state, not weight or marker == "float8", marker)
    return names


def _torch_module_names(layer: _Layer, conf: LayerConfig, budget: ReadBudget) -> Names | None:
    """A ``TorchModuleWrapper``'s variables: its module's ``state_dict()`` under their own
    names. Parameters train as their ``requires_grad`` and the layer's flag say; buffers are
    state, and not Keras variables (conventions.py leaves them out of Keras's totals)."""
    entries = torch_module_tensors(conf.config, budget, f"layer {conf.name!r:.80}")
    if entries is None:
        return None
    names: Names = {}
    for variable in layer.stored.variables:
        entry = entries.get(variable.name) if variable.name is not None else None
        if entry is None:
            return None
        names[variable] = Naming(
            variable.name, entry.buffer, entry.requires_grad, persistent=True if entry.buffer else None
        )
    return names


def _named(variable: StoredVariable, names: Names | None) -> Naming:
    """What a variable is: the name the file gives it wins; what its layer says of a variable
    of that name is added. Unnamed and undescribed, Keras numbers it and its role is unknown."""
    known = names.get(variable) if names is not None else None
    if variable.name is not None and (known is None or known.name != variable.name):
        return Naming(variable.name, variable.name in STATE_NAMES)
    if known is not None:
        return replace(known, name=f"var{variable.index}") if known.name == ANY_NAME else known
    return Naming(f"var{variable.index}", None)


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


def _role(naming: Naming, trains: bool, config_known: bool) -> Role:
    if naming.state:
        return Role.STATE
    if naming.state is None or not config_known:
        return Role.UNKNOWN
    return Role.TRAINABLE if trains and naming.trains else Role.FROZEN


def keras_tree(
    store: KerasStore,
    config: LayerConfig | None,
    fallback_name: str,
    per_parent: bool = False,
    budget: ReadBudget | None = None,
) -> KerasTree:
    """The Node tree of a stored model, named and roled; ``per_parent`` for Keras 2 files.
    ``budget`` is the file's, charged for the torch modules a TorchModuleWrapper's config holds."""
    budget = budget or ReadBudget()
    builder = TreeBuilder()
    flags = _Flags(config, per_parent)
    unknown: list[str] = []
    not_in_full: list[str] = []

    def visit(layer: _Layer, path: str, name: str, names: Names | None, parent_trains: bool) -> Node:
        conf = layer.conf
        trains = flags.of(conf, parent_trains, path)
        names = names if names is not None else _layer_names(layer, budget)
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
            naming = _named(variable, names)
            if naming.state is None:
                unknown.append(join_path(path, naming.name))
            if not variable.in_full:
                not_in_full.append(join_path(path, naming.name))
            role = _role(naming, trains, config is not None)
            node.tensors.append(_tensor(builder, variable, path, tensor_names(naming.name), naming, role))
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
            v,
            "optimizer",
            optimizer_names(v.name or f"var{v.index}"),
            v.shape,
            v.dtype,
            Role.STATE,
            key=v.key,
        )
        for v in store.optimizer
    ]
    not_in_full += [f"optimizer/{v.name or f'var{v.index}'}" for v in store.optimizer if not v.in_full]
    group = TensorGroup("optimizer", optimizer) if optimizer else None
    return KerasTree(root, group, unknown, _lost_that_matter(root, flags.lost), not_in_full)


def _lost_that_matter(root: Node, lost: list[str]) -> list[str]:
    """The nested models whose lost flag makes something train after loading: tf.keras's setter
    also froze every sublayer, and their own flags do load, so a lost flag matters only above a
    sublayer re-enabled after the freeze (it trained nothing before saving; it trains now)."""
    nodes = {node.path: node for node in root.walk()}  # a lost root is listed by its name
    return [
        path for path in lost if any(t.role is Role.TRAINABLE for t in nodes.get(path, root).all_tensors())
    ]


def _tensor(
    builder: TreeBuilder, variable: StoredVariable, path: str, name: str, naming: Naming, role: Role
) -> Tensor:
    """A stored variable's entry; a packed weight counts its logical parameters and the bytes
    the file holds."""
    stored_bytes = (
        tensor_bytes(math.prod(variable.shape), variable.dtype) if naming.params is not None else None
    )
    return builder.tensor(
        variable,
        path,
        name,
        variable.shape,
        variable.dtype,
        role,
        persistent=naming.persistent,
        nbytes=stored_bytes,
        params=naming.params,
        quantized=naming.quantized,
        key=variable.key,
    )


WEIGHTS_ONLY = "a weights-only file stores no trainability: roles are unknown."


def weights_only_report(
    structure: Hdf5Structure, budget: ReadBudget, path: str, name: str, notes: tuple[str, ...] = ()
) -> Report:
    """A Keras 3 ``save_weights`` file, alone or sharded: no config, so variables are named by
    their index and their roles are unknown."""
    tree = keras_tree(keras3_store(structure, budget), None, name)
    return Report(
        source=Source(kind=Kind.H5, path=path),
        root=tree.root,
        optimizer=tree.optimizer,
        warnings=[WEIGHTS_ONLY, *tree.storage_warnings(), *notes],
    )
