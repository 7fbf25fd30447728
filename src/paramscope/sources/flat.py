"""Reports from flat checkpoints: a tree of nodes from dotted tensor names.

State dicts, safetensors and npz files store tensors under names like
``layer1.0.bn1.running_mean``. The node tree splits those names at dots; roles come from the
little a file can tell: buffer names and integer/bool dtypes are ``state``, tensors saved as
parameters carry their ``requires_grad``, everything else is ``unknown`` — most formats store
no trainability, and the report says so. Packed quantized weights (GPTQ, AWQ, bitsandbytes,
FP8; packed_weights.py) are the exception to "integers are state": each is one logical weight
under its layer's node, its scales and zero points state beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from paramscope.core.report import Node, Report, Role, Source, Tensor, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.sources.budget import ReadBudget
from paramscope.sources.packed_weights import Hints, Packing, recognise, stored_bytes

BUFFER_NAMES = frozenset(
    {"running_mean", "running_var", "num_batches_tracked", "moving_mean", "moving_variance"}
)
MAX_NODE_DEPTH = 64  # real models nest under 20 levels
NON_FLOAT = ("int", "uint", "bool", "qint", "quint")
NO_TRAINABILITY = (
    "{format} stores no trainability: roles are unknown except buffers and integer tensors (state)."
)


@dataclass(frozen=True)
class FlatTensor:
    name: str  # dotted, as stored
    shape: tuple[int, ...]
    dtype: str
    identity: object  # equal identities are one tensor stored under two names (tied weights)
    requires_grad: bool | None = None  # known only when saved as a Parameter
    nbytes: int | None = None  # stored size, where the dtype alone cannot say (quantized blocks)
    role: Role | None = None  # where the file says (a pickled module's parameters and buffers)
    persistent: bool | None = None  # a pickled module's buffers: saved by state_dict() or not
    key: str | None = None  # the name as the file spells it, where ``name`` differs (a prefix cut)

    @property
    def file_key(self) -> str:
        """What the report gives as the tensor's key (see ``Tensor.key``)."""
        return self.name if self.key is None else self.key


@dataclass(frozen=True)
class FlatModule:
    """A node the file names with a type, tensors or not (a pickled module, ``ReLU`` too)."""

    name: str  # dotted, as its tensors' names start; "" for the root
    type: str
    mode: str | None = None  # "train" or "eval"


def role_of(entry: FlatTensor) -> Role:
    if entry.role is not None:
        return entry.role
    leaf = entry.name.rsplit(".", 1)[-1]
    if leaf in BUFFER_NAMES or entry.dtype.startswith(NON_FLOAT):
        return Role.STATE
    return _weight_role(entry)


def _weight_role(entry: FlatTensor) -> Role:
    """A weight's role: the file's word where it has one, else its ``requires_grad`` where it
    was saved as a Parameter, else unknown."""
    if entry.role is not None:
        return entry.role
    if entry.requires_grad is not None:
        return Role.TRAINABLE if entry.requires_grad else Role.FROZEN
    return Role.UNKNOWN


def is_no_trainability_note(warning: str) -> bool:
    """Whether a warning is the NO_TRAINABILITY note (a reader that knows the roles drops it)."""
    head, tail = NO_TRAINABILITY.split("{format}")
    return warning.startswith(head) and warning.endswith(tail)


def _split(name: str) -> tuple[list[str], str]:
    """(parent names, leaf) of a dotted name; past MAX_NODE_DEPTH the rest stays in the leaf, so
    a hostile 3,000-level name cannot make a tree deeper than any renderer can walk."""
    parts = name.split(".")
    if len(parts) > MAX_NODE_DEPTH + 1:
        return parts[:MAX_NODE_DEPTH], ".".join(parts[MAX_NODE_DEPTH:])
    return parts[:-1], parts[-1]


def _placed(entry: FlatTensor, packing: Packing | None) -> tuple[list[str], str]:
    """(parent names, leaf): a packed layer's tensors sit under the layer's node, named within
    it (``weight.absmax``), not under a node named after the weight."""
    layer = packing.layer.split(".") if packing is not None and packing.layer else []
    if packing is None or len(layer) > MAX_NODE_DEPTH:
        return _split(entry.name)
    return layer, packing.leaf


def _tensor(
    builder: TreeBuilder, token: object, node_path: str, leaf: str, entry: FlatTensor, packing: Packing | None
) -> Tensor:
    role, shape, params, nbytes = role_of(entry), entry.shape, None, entry.nbytes
    if packing is not None:
        nbytes = stored_bytes(entry)
        if packing.logical is None:  # a scale, zero point or table: used, never trained
            role = Role.STATE
        else:  # the packed weight: its logical parameters, the bytes really stored
            role, shape, params = _weight_role(entry), packing.logical, math.prod(packing.logical)
    return builder.tensor(
        token,
        node_path,
        leaf,
        shape,
        entry.dtype,
        role,
        persistent=entry.persistent,
        nbytes=nbytes,
        params=params,
        quantized=packing.quantized if packing is not None else None,
        key=entry.file_key,
    )


Children = dict[tuple[int, str], Node]  # (id of parent, name) -> child: no path strings


def _descend(node: Node, parts: list[str], children: Children, budget: ReadBudget | None) -> Node:
    """The node at ``parts`` below ``node``, made on the way where it does not exist yet."""
    for part in parts:
        child = children.get((id(node), part))
        if child is None:
            child = Node(path=join_path(node.path, part), name=part, type="")
            if budget is not None:  # deep distinct prefixes: paths quadratic in a name's depth
                budget.charge("tree_chars", len(child.path), "the tensor names")
            node.children.append(child)
            children[(id(node), part)] = child
        node = child
    return node


def flat_tree(
    entries: list[FlatTensor],
    root_name: str,
    builder: TreeBuilder | None = None,
    budget: ReadBudget | None = None,
    modules: list[FlatModule] | None = None,
    packings: dict[str, Packing] | None = None,
) -> Node:
    """Nodes from dotted names, in first-seen order; tied names become aliases of the first.

    ``modules`` are made first, in their order, with their types and modes: a file that names
    its modules (a pickled ``nn.Module``) gets the module's tree, tensor-less modules included.
    With a budget, each further name of a tensor already listed is charged to ``references``
    (a file that names one tensor a million times is refused instead of growing a million
    rows), and each node's path to ``tree_chars``. ``packings`` says how the tensors of
    packed quantized layers are reported.
    """
    builder = builder or TreeBuilder()
    root = Node(path="", name=root_name, type="")
    children: Children = {}
    for module in modules or ():
        parts = module.name.split(".")[:MAX_NODE_DEPTH] if module.name else []
        node = _descend(root, parts, children, budget)
        node.type, node.mode = module.type, module.mode
    identities: dict[object, object] = {}
    packings = packings or {}
    for entry in entries:
        packing = packings.get(entry.name)
        parents, leaf = _placed(entry, packing)
        if budget is not None and entry.identity in identities:
            budget.charge("references", 1, "the file")
        node = _descend(root, parents, children, budget)
        token = identities.setdefault(entry.identity, object())  # one object per real tensor
        node.tensors.append(_tensor(builder, token, node.path, leaf, entry, packing))
    return root


def flat_report(
    entries: list[FlatTensor],
    source: Source,
    format_label: str,
    root_name: str,
    optimizer: list[FlatTensor] | None = None,
    warnings: list[str] | None = None,
    budget: ReadBudget | None = None,
    modules: list[FlatModule] | None = None,
    hints: Hints | None = None,
) -> Report:
    """``hints``: what the reader can tell besides the headers (a quantization config beside
    the file, the bytes of small tensors), for recognising packed quantized layers."""
    builder = TreeBuilder()
    recognition = recognise(entries, hints or Hints(), budget)
    root = flat_tree(entries, root_name, builder, budget, modules, recognition.packings)
    group = None
    if optimizer:
        names = UniqueNames()
        group = TensorGroup(
            "optimizer",
            [
                builder.tensor(
                    object(), "optimizer", names(e.name), e.shape, e.dtype, Role.STATE, key=e.file_key
                )
                for e in optimizer
            ],
        )
    notes = list(warnings or []) + recognition.warnings
    if any(t.role is Role.UNKNOWN for t in root.all_tensors()):
        notes.insert(0, NO_TRAINABILITY.format(format=format_label))
    return Report(source=source, root=root, optimizer=group, warnings=notes)
