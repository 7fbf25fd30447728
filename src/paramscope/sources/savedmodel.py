"""TensorFlow SavedModel folders: the variables in ``variables/variables.index``, named and given
roles by the object graph in ``saved_model.pb``; never the graph's functions, never tensor data.

A SavedModel folder holds ``saved_model.pb`` (a ``SavedModel`` message: meta graphs whose
``object_graph_def`` lists every saved Python object — modules, layers, lists, variables,
functions — with its children) and ``variables/`` (a tensor bundle, see
:mod:`paramscope.sources.tensor_bundle`). TensorFlow keys each variable in the bundle by the
first path that reaches it in a breadth-first walk of the object graph from the root, each
name escaped (``.`` → ``..``, ``/`` → ``.S``): ``layer_with_weights-0/kernel/.ATTRIBUTES/
VARIABLE_VALUE``; a slot variable by its variable's path, ``.OPTIMIZER_SLOT``, the optimizer's
path and the slot's name (tensorflow/python/checkpoint/trackable_view.py, trackable/
trackable_utils.py). We rebuild those keys from ``saved_model.pb``, check them against the
``TrackableObjectGraph`` that the bundle stores under ``_CHECKPOINTABLE_OBJECT_GRAPH`` (its
``checkpoint_key`` attributes), and require each variable's entry in the bundle, of the dtype
the object graph declares. Both messages are walked by :mod:`paramscope.sources.protobuf`, not
TensorFlow's generated classes, which need TensorFlow imported and would copy the whole graph,
constants and all, into memory. Field numbers are those of tensorflow/core/protobuf/
saved_model.proto, meta_graph.proto, saved_object_graph.proto and trackable_object_graph.proto
(checked against TensorFlow 2.21).

What the report shows:

- Names: the variables' own names (``SavedVariable.name``: ``dense/kernel``, the Keras
  ``variable.path``), which is what a user recognises, when every model variable has a
  distinct one; otherwise (``tf.Module`` variables are often all called ``Variable``) the
  object paths of the checkpoint keys (``encoder/dense/w``). Nodes are the ``/`` scopes.
- Roles: a variable saved with ``trainable=False`` (moving statistics, counters) or of an
  integer or bool dtype is ``state``; a trainable one is ``trainable``, unless the root lists
  the model's ``trainable_variables`` (Keras 3 ``model.export``, tf.keras ``model.save``) and
  it is not among them: then it is ``frozen`` (a layer set ``trainable = False`` keeps its
  variables' own flag).
- Variables reachable from the root only through an edge named ``optimizer``, and slot
  variables, are the optimizer's; those reachable only through ``metrics`` are metrics. Other
  bundle entries (not variables of the object graph) are ``state``; the object graph itself is
  not a tensor.
- Keras 3's ``model.export`` saves each variable twice, under the root's ``variables`` and
  again, as captured by the serving function, under ``_all_variables``
  (keras/src/export/saved_model_export_archive.py). A copy with the same name, dtype, shape
  and checksum as one ``variables`` entry is listed as its alias and counted once.
- A SavedModel without an object graph (TensorFlow 1) lists the bundle's entries by key, roles
  unknown.

A ``saved_model.pb`` without its ``variables/variables.index`` holds its weights (if any) as
graph constants, which we do not read: it is recognised and refused as such.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.printable import visible
from paramscope.core.report import Node, Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.core.unread import RecognisedNotRead
from paramscope.errors import InputError
from paramscope.sources.boundary import name_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.flat import MAX_NODE_DEPTH, NO_TRAINABILITY, NON_FLOAT
from paramscope.sources.protobuf import ProtobufError, fields, map_file
from paramscope.sources.tensor_bundle import (
    OBJECT_GRAPH_KEY,
    Bundle,
    BundleEntry,
    decode_shape,
    dtype_name,
    read_bundle,
    read_string_scalar,
)

SAVED_MODEL = "saved_model.pb"
VARIABLES_PREFIX = ("variables", "variables")  # the bundle: variables/variables.index, .data-…
VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
ATTRIBUTES = "/.ATTRIBUTES/"
SLOT_MARK = "/.OPTIMIZER_SLOT/"
VARIABLE_VALUE = "VARIABLE_VALUE"
OPTIMIZER_EDGES = frozenset({"optimizer"})
METRICS_EDGES = frozenset({"metrics"})
GRAPH_ENTRIES = "the SavedModel object graph"  # what node and edge charges are reported as


# The typed records saved_model.pb decodes into (treat them as read-only).


@dataclass(slots=True)
class SavedVariable:
    name: str
    dtype: int  # tensorflow DataType
    trainable: bool


@dataclass(slots=True)
class SavedObject:
    children: list[tuple[str, int]]  # (local name, node id), in the order TensorFlow walks them
    slot_variables: list[tuple[int, str, int]]  # (original variable, slot name, slot variable)
    variable: SavedVariable | None


@dataclass(slots=True)
class MetaGraph:
    tensorflow_version: str
    nodes: list[SavedObject] | None  # None: no object graph (a TensorFlow 1 SavedModel)


@dataclass(frozen=True, slots=True)
class ScopedTensor:
    """A tensor to place in a tree of ``/``-separated scopes."""

    name: str  # printable
    shape: tuple[int, ...]
    dtype: str
    role: Role
    identity: object  # equal identities: one tensor listed under two names
    nbytes: int | None
    key: str | None = None  # its name in the file (a checkpoint key; a TFLite tensor's full name)


# saved_model.pb


def decode_saved_model(data: memoryview, budget: ReadBudget) -> MetaGraph:
    """The first meta graph of a ``SavedModel`` message (TensorFlow 2 writes one)."""
    for field in fields(data, budget, 1, "SavedModel"):
        if field.number == 2:
            return _meta_graph(field.chunk(), budget)
    raise InputError("a SavedModel without a meta graph")


def _meta_graph(data: memoryview, budget: ReadBudget) -> MetaGraph:
    version, nodes = "", None
    for field in fields(data, budget, 2, "MetaGraphDef"):
        if field.number == 1:
            version = _tensorflow_version(field.chunk(), budget)
        elif field.number == 7:
            nodes = _object_graph(field.chunk(), budget)
    return MetaGraph(version, nodes)


def _tensorflow_version(data: memoryview, budget: ReadBudget) -> str:
    for field in fields(data, budget, 3, "MetaInfoDef"):
        if field.number == 5:
            return name_of(field.text(budget, "the TensorFlow version"), budget, "the TensorFlow version")
    return ""


def _object_graph(data: memoryview, budget: ReadBudget) -> list[SavedObject]:
    nodes = []
    for field in fields(data, budget, 3, "SavedObjectGraph"):
        if field.number == 1:
            budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
            nodes.append(_saved_object(field.chunk(), budget))
    _check_references(nodes)
    return nodes


def _saved_object(data: memoryview, budget: ReadBudget) -> SavedObject:
    node = SavedObject([], [], None)
    for field in fields(data, budget, 4, "SavedObject"):
        if field.number == 1:
            budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
            node_id, local_name = _reference(field.chunk(), budget)
            node.children.append((local_name, node_id))
        elif field.number == 3:
            budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
            node.slot_variables.append(_slot_reference(field.chunk(), budget))
        elif field.number == 7:
            node.variable = _saved_variable(field.chunk(), budget)
    return node


def _reference(data: memoryview, budget: ReadBudget) -> tuple[int, str]:
    node_id, local_name = 0, ""
    for field in fields(data, budget, 5, "ObjectReference"):
        if field.number == 1:
            node_id = field.int64()
        elif field.number == 2:
            local_name = field.text(budget, "an object's local name")
    return node_id, local_name


def _slot_reference(data: memoryview, budget: ReadBudget) -> tuple[int, str, int]:
    original, slot_name, slot = 0, "", 0
    for field in fields(data, budget, 5, "SlotVariableReference"):
        if field.number == 1:
            original = field.int64()
        elif field.number == 2:
            slot_name = field.text(budget, "a slot name")
        elif field.number == 3:
            slot = field.int64()
    return original, slot_name, slot


def _saved_variable(data: memoryview, budget: ReadBudget) -> SavedVariable:
    variable = SavedVariable("", 0, False)
    for field in fields(data, budget, 5, "SavedVariable"):
        if field.number == 1:
            variable.dtype = field.uint()
        elif field.number == 2:
            decode_shape(field.chunk(), budget, 6, "a saved variable")  # validated, not used
        elif field.number == 3:
            variable.trainable = bool(field.uint())
        elif field.number == 6:
            variable.name = field.text(budget, "a variable's name")
    return variable


def _check_references(nodes: list[SavedObject]) -> None:
    """Every node id a node names (children, slot variables) is a node of the graph."""
    count = len(nodes)
    for node in nodes:
        ids = [i for _, i in node.children] + [i for o, _, s in node.slot_variables for i in (o, s)]
        bad = next((i for i in ids if not 0 <= i < count), None)
        if bad is not None:
            raise InputError(f"the object graph refers to node {bad:,} of {count:,}")
    if not count:
        raise InputError("an empty object graph")


# Object paths and checkpoint keys.


def escape_local_name(name: str) -> str:
    """A local name as TensorFlow writes it in a checkpoint key (trackable_utils.py)."""
    return name.replace(".", "..").replace("/", ".S")


def reachable(nodes: list[SavedObject], excluded: frozenset[str], budget: ReadBudget) -> set[int]:
    """The nodes reachable from the root without following an edge named in ``excluded``."""
    seen, queue = {0}, deque([0])
    while queue:
        budget.tick()
        for name, child in nodes[queue.popleft()].children:
            if child not in seen and name not in excluded:
                seen.add(child)
                queue.append(child)
    return seen


class ObjectPaths:
    """Each node's first path from the root in TensorFlow's breadth-first walk (children in
    their saved order, a path fixed when a node is first reached), as a checkpoint key writes
    it. Paths are built on demand and cached, each from its parent's, their characters charged
    and their depth bounded, so a deep chain of nodes cannot cost quadratic time."""

    def __init__(self, nodes: list[SavedObject], budget: ReadBudget) -> None:
        self._budget = budget
        self._parent: dict[int, tuple[int, str]] = {}
        self._paths: dict[int, tuple[str, int]] = {0: ("", 0)}  # node -> (path, depth)
        queue = deque([0])
        while queue:
            budget.tick()
            node = queue.popleft()
            for name, child in nodes[node].children:
                if child != 0 and child not in self._parent:
                    self._parent[child] = (node, name)
                    queue.append(child)

    def reaches(self, node: int) -> bool:
        return node == 0 or node in self._parent

    def path(self, node: int) -> str:
        chain = []
        while node not in self._paths:
            parent, name = self._parent[node]
            chain.append((node, name))
            node = parent
            if len(chain) > self._budget.limits.depth:
                raise BudgetExceeded("depth", self._budget.limits.depth, "an object path")
        path, depth = self._paths[node]
        for child, name in reversed(chain):
            path, depth = join_path(path, escape_local_name(name)), depth + 1
            self._budget.check("depth", depth, "an object path")
            self._budget.charge("tree_chars", len(path), "the object paths")
            self._paths[child] = (path, depth)
        return path


def checkpoint_keys(nodes: list[SavedObject], paths: ObjectPaths) -> dict[int, str]:
    """The bundle key of every variable TensorFlow saves: reachable ones, and slot variables of
    a reachable variable held by a reachable optimizer."""
    keys = {
        node_id: paths.path(node_id) + VALUE_SUFFIX
        for node_id, node in enumerate(nodes)
        if node.variable is not None and paths.reaches(node_id)
    }
    for optimizer, node in enumerate(nodes):
        for original, slot_name, slot in node.slot_variables:
            if nodes[slot].variable is None or not (paths.reaches(original) and paths.reaches(optimizer)):
                continue
            slot_path = (
                f"{paths.path(original)}{SLOT_MARK}{paths.path(optimizer)}/{escape_local_name(slot_name)}"
            )
            keys.setdefault(slot, slot_path + VALUE_SUFFIX)
    return keys


def _stored_checkpoint_keys(bundle: Bundle, budget: ReadBudget) -> set[str] | None:
    """The ``checkpoint_key`` of every variable value in the bundle's own object graph."""
    if OBJECT_GRAPH_KEY not in bundle.entries:
        return None
    data = read_string_scalar(bundle, OBJECT_GRAPH_KEY, budget)
    keys = set()
    for node in fields(data, budget, 1, "TrackableObjectGraph"):
        budget.charge("metadata_entries", 1, GRAPH_ENTRIES)
        for field in fields(node.chunk(), budget, 2, "TrackableObject"):
            if field.number == 2:
                name, key = _serialized_tensor(field.chunk(), budget)
                if name == VARIABLE_VALUE:
                    keys.add(key)
    return keys


def _serialized_tensor(data: memoryview, budget: ReadBudget) -> tuple[str, str]:
    name, key = "", ""
    for field in fields(data, budget, 3, "SerializedTensor"):
        if field.number == 1:
            name = field.text(budget, "an attribute name")
        elif field.number == 3:
            key = field.text(budget, "a checkpoint key")
    return name, key


def _check_keys(keys: dict[int, str], nodes: list[SavedObject], bundle: Bundle, budget: ReadBudget) -> None:
    """Each variable's key is in the bundle, as its object graph names it, with its dtype."""
    stored = _stored_checkpoint_keys(bundle, budget)
    for node_id, key in keys.items():
        entry, declared = bundle.entries.get(key), nodes[node_id].variable.dtype
        if stored is not None and key not in stored:
            problem = "is keyed differently by the object graphs of saved_model.pb and variables.index"
        elif entry is None:
            problem = "of saved_model.pb has no entry in variables.index"
        elif entry.dtype != declared:
            problem = f"is {dtype_name(declared)} in saved_model.pb, {entry.dtype_name} in variables.index"
        else:
            continue
        raise InputError(f"variable {visible(key.removesuffix(VALUE_SUFFIX))!r:.80} {problem}")


# From variables to the report.


def _listed(nodes: list[SavedObject], name: str) -> list[int] | None:
    """The node ids in the root's child ``name`` (a list such as ``trainable_variables``)."""
    for local_name, child in nodes[0].children:
        if local_name == name:
            return [node for _, node in nodes[child].children]
    return None


def _export_aliases(nodes: list[SavedObject], keys: dict[int, str], bundle: Bundle) -> dict[int, int]:
    """Keras export's second copies: ``_all_variables`` entries -> the ``variables`` entry with
    the same name, dtype, shape and stored checksum (each owner matched once)."""
    owners, copies = _listed(nodes, "variables"), _listed(nodes, "_all_variables")
    if not owners or not copies:
        return {}

    def signature(node: int) -> tuple | None:
        entry = bundle.entries.get(keys.get(node, ""))
        variable = nodes[node].variable
        if entry is None or variable is None:
            return None
        return variable.name, entry.dtype, entry.shape, entry.size, entry.crc32c

    candidates: dict[tuple, list[int]] = {}
    for owner in dict.fromkeys(owners):
        candidates.setdefault(signature(owner), []).append(owner)
    candidates.pop(None, None)
    aliases, owner_ids = {}, set(owners)
    for copy in dict.fromkeys(copies):
        matches = candidates.get(signature(copy))
        if matches and copy not in owner_ids:
            aliases[copy] = matches.pop(0)
    return aliases


def variable_role(variable: SavedVariable, dtype: str, listed: bool) -> Role:
    """``listed``: in the root's ``trainable_variables``, or no such list saved."""
    if not variable.trainable or dtype.startswith(NON_FLOAT):
        return Role.STATE
    return Role.TRAINABLE if listed else Role.FROZEN


@dataclass
class _Listing:
    """The report's parts: model tensors (aliases included), optimizer and metric variables."""

    model: list[ScopedTensor]
    optimizer: list[ScopedTensor]
    metrics: list[ScopedTensor]
    warnings: list[str]


def _entry_name(key: str) -> str:
    """A bundle entry's name from its key: the object path, and the attribute unless it is the
    variable's value."""
    path, found, attribute = key.partition(ATTRIBUTES)
    if not found:
        return key
    return path if attribute == VARIABLE_VALUE else join_path(path, attribute)


def _tensor(
    name: str, key: str, entry: BundleEntry, role: Role, identity: object, budget: ReadBudget
) -> ScopedTensor:
    """A variable named for the tree, keyed by its checkpoint key (what ``tf.train.list_variables``
    lists and ``tf.train.load_variable`` takes)."""
    return ScopedTensor(
        name_of(name, budget, "a variable's name"),
        entry.shape,
        entry.dtype_name,
        role,
        identity,
        entry.size,
        name_of(key, budget, "a checkpoint key"),
    )


def _object_path(key: str) -> str:
    return key.removesuffix(VALUE_SUFFIX)


@dataclass
class _Groups:
    """The saved variables (node ids, in node order) by where the root reaches them from."""

    model: list[int]
    metrics: list[int]
    optimizer: list[int]


def _groups(nodes: list[SavedObject], keys: dict[int, str], budget: ReadBudget) -> _Groups:
    """Slot variables and what only an ``optimizer`` edge reaches are the optimizer's; what
    only a ``metrics`` edge reaches is metrics; everything else is the model's."""
    in_model = reachable(nodes, OPTIMIZER_EDGES | METRICS_EDGES, budget)
    outside_optimizer = reachable(nodes, OPTIMIZER_EDGES, budget)
    slots = {slot for node in nodes for _, _, slot in node.slot_variables}
    groups = _Groups([], [], [])
    for node_id in keys:
        if node_id in slots or node_id not in outside_optimizer:
            groups.optimizer.append(node_id)
        elif node_id in in_model:
            groups.model.append(node_id)
        else:
            groups.metrics.append(node_id)
    return groups


def _model_tensors(
    nodes: list[SavedObject], keys: dict[int, str], ids: list[int], bundle: Bundle, budget: ReadBudget
) -> tuple[list[ScopedTensor], list[str]]:
    """The model's variables, named by their own names where those are distinct, with roles;
    Keras export's second copies as aliases of the first."""
    trainable = _listed(nodes, "trainable_variables")
    listed = set(trainable) if trainable is not None else None
    aliases = _export_aliases(nodes, keys, bundle)
    names = [nodes[i].variable.name for i in ids if i not in aliases]
    use_names = all(names) and len(set(names)) == len(names)
    tensors = []
    for node_id in ids:
        owner = aliases.get(node_id, node_id)
        entry, variable = bundle.entries[keys[node_id]], nodes[owner].variable
        role = variable_role(variable, entry.dtype_name, listed is None or owner in listed)
        name = variable.name if use_names and node_id == owner else _object_path(keys[node_id])
        tensors.append(_tensor(name, keys[node_id], entry, role, owner, budget))
    warnings = []
    if aliases:
        warnings.append(
            f"Keras's export saves {len(aliases):,} variables twice (variables and _all_variables): "
            "the copies are listed as aliases and counted once."
        )
    return tensors, warnings


def _apart(
    nodes: list[SavedObject], keys: dict[int, str], ids: list[int], bundle: Bundle, budget: ReadBudget
) -> list[ScopedTensor]:
    """Optimizer or metric variables, by their own names (``Adam/dense/kernel/m``)."""
    return [
        _tensor(
            nodes[i].variable.name or _object_path(keys[i]),
            keys[i],
            bundle.entries[keys[i]],
            Role.STATE,
            i,
            budget,
        )
        for i in ids
    ]


def _object_graph_listing(nodes: list[SavedObject], bundle: Bundle, budget: ReadBudget) -> _Listing:
    keys = checkpoint_keys(nodes, ObjectPaths(nodes, budget))
    _check_keys(keys, nodes, bundle, budget)
    groups = _groups(nodes, keys, budget)
    model, warnings = _model_tensors(nodes, keys, groups.model, bundle, budget)
    matched = {*keys.values(), OBJECT_GRAPH_KEY}
    model += [  # not a variable of the object graph: a counter, a lookup table's contents
        _tensor(_entry_name(key), key, entry, Role.STATE, key, budget)
        for key, entry in bundle.entries.items()
        if key not in matched
    ]
    return _Listing(
        model,
        _apart(nodes, keys, groups.optimizer, bundle, budget),
        _apart(nodes, keys, groups.metrics, bundle, budget),
        warnings,
    )


def _bundle_listing(bundle: Bundle, budget: ReadBudget) -> _Listing:
    """A TensorFlow 1 SavedModel: every entry by its key; integer and bool ones are state."""
    model = [
        _tensor(
            key,
            key,
            entry,
            Role.STATE if entry.dtype_name.startswith(NON_FLOAT) else Role.UNKNOWN,
            key,
            budget,
        )
        for key, entry in bundle.entries.items()
    ]
    warning = "No object graph: variables are listed by their checkpoint keys."
    return _Listing(model, [], [], [warning])


def scope_tree(tensors: Iterable[ScopedTensor], root_name: str, budget: ReadBudget) -> Node:
    """Nodes from the ``/`` scopes of tensor names, in first-seen order; a tensor whose identity
    was seen before is an alias of the first. Sibling tensors with one name get suffixes.

    Each node's path is charged to ``tree_chars`` and each alias to ``references``; a name of
    more than ``MAX_NODE_DEPTH`` scopes is refused, so no renderer walks a deeper tree.
    """
    builder = TreeBuilder()
    root = Node(path="", name=root_name, type="")
    children: dict[tuple[int, str], Node] = {}
    leaf_names: dict[int, UniqueNames] = {}
    tokens: dict[object, object] = {}
    for tensor in tensors:
        parts = [part for part in tensor.name.split("/") if part] or ["(unnamed)"]
        if len(parts) > MAX_NODE_DEPTH + 1:
            raise InputError(f"name {tensor.name!r:.80} nests {len(parts) - 1:,} scopes deep")
        node = root
        for part in parts[:-1]:
            child = children.get((id(node), part))
            if child is None:
                child = Node(path=join_path(node.path, part), name=part, type="")
                budget.charge("tree_chars", len(child.path), "the tensor names")
                node.children.append(child)
                children[(id(node), part)] = child
            node = child
        if tensor.identity in tokens:
            budget.charge("references", 1, "the file")
        token = tokens.setdefault(tensor.identity, object())
        leaf = leaf_names.setdefault(id(node), UniqueNames())(parts[-1])
        node.tensors.append(
            builder.tensor(
                token,
                node.path,
                leaf,
                tensor.shape,
                tensor.dtype,
                tensor.role,
                nbytes=tensor.nbytes,
                key=tensor.key,
            )
        )
    return root


def group_of(name: str, tensors: list[ScopedTensor]) -> TensorGroup | None:
    """Tensors reported apart from the model (optimizer, metrics), each under a unique name."""
    if not tensors:
        return None
    builder, names = TreeBuilder(), UniqueNames()
    return TensorGroup(
        name,
        [
            builder.tensor(
                object(), name, names(t.name), t.shape, t.dtype, t.role, nbytes=t.nbytes, key=t.key
            )
            for t in tensors
        ],
    )


def _decode(graph_file: Path, budget: ReadBudget) -> MetaGraph:
    try:
        return decode_saved_model(map_file(graph_file), budget)
    except ProtobufError as exc:
        raise InputError(f"{graph_file.name}: not a readable SavedModel ({exc})") from None
    except RecursionError:  # only when the depth limit is raised past Python's own
        raise BudgetExceeded("depth", budget.limits.depth, "the SavedModel") from None


def read_savedmodel(path: Path, budget: ReadBudget) -> Report:
    """A SavedModel, given its folder or its ``saved_model.pb``."""
    folder = path if path.is_dir() else path.parent
    graph_file = folder / SAVED_MODEL if path.is_dir() else path
    prefix = folder.joinpath(*VARIABLES_PREFIX)
    meta_graph = _decode(graph_file, budget)
    if not prefix.with_name(prefix.name + ".index").exists():
        raise RecognisedNotRead("TensorFlow SavedModel graph without its variables/variables.index")
    bundle = read_bundle(prefix, budget)
    try:
        if meta_graph.nodes is None:
            listing = _bundle_listing(bundle, budget)
        else:
            listing = _object_graph_listing(meta_graph.nodes, bundle, budget)
    except ProtobufError as exc:
        raise InputError(f"variables.index: its object graph is not readable ({exc})") from None
    root = scope_tree(listing.model, name_of(folder.name, budget, "the folder's name"), budget)
    warnings = list(listing.warnings)
    if any(t.role is Role.UNKNOWN for t in root.all_tensors()):
        warnings.insert(0, NO_TRAINABILITY.format(format="A TensorFlow 1 SavedModel"))
    version = meta_graph.tensorflow_version
    return Report(
        source=Source(
            kind=Kind.SAVEDMODEL,
            framework_version=f"TensorFlow {version}" if version else None,
            path=str(path),
        ),
        root=root,
        optimizer=group_of("optimizer", listing.optimizer),
        metrics=group_of("metrics", listing.metrics),
        warnings=warnings,
    )
