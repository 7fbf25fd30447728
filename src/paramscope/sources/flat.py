"""Reports from flat checkpoints: a tree of nodes from dotted tensor names.

State dicts, safetensors and npz files store tensors under names like
``layer1.0.bn1.running_mean``. The node tree splits those names at dots; roles come from the
little a file can tell: buffer names and integer/bool dtypes are ``state``, tensors saved as
parameters carry their ``requires_grad``, everything else is ``unknown`` — most formats store
no trainability, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from paramscope.core.report import Node, Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.sources.budget import ReadBudget

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


def role_of(entry: FlatTensor) -> Role:
    leaf = entry.name.rsplit(".", 1)[-1]
    if leaf in BUFFER_NAMES or entry.dtype.startswith(NON_FLOAT):
        return Role.STATE
    if entry.requires_grad is not None:
        return Role.TRAINABLE if entry.requires_grad else Role.FROZEN
    return Role.UNKNOWN


def _split(name: str) -> tuple[list[str], str]:
    """(parent names, leaf) of a dotted name; past MAX_NODE_DEPTH the rest stays in the leaf, so
    a hostile 3,000-level name cannot make a tree deeper than any renderer can walk."""
    parts = name.split(".")
    if len(parts) > MAX_NODE_DEPTH + 1:
        return parts[:MAX_NODE_DEPTH], ".".join(parts[MAX_NODE_DEPTH:])
    return parts[:-1], parts[-1]


def flat_tree(
    entries: list[FlatTensor],
    root_name: str,
    builder: TreeBuilder | None = None,
    budget: ReadBudget | None = None,
) -> Node:
    """Nodes from dotted names, in first-seen order; tied names become aliases of the first.

    With a budget, each further name of a tensor already listed is charged to ``references``
    (a file that names one tensor a million times is refused instead of growing a million
    rows), and each node's path to ``tree_chars``.
    """
    builder = builder or TreeBuilder()
    root = Node(path="", name=root_name, type="")
    children: dict[tuple[int, str], Node] = {}  # (id of parent, name) -> child: no path strings
    identities: dict[object, object] = {}
    for entry in entries:
        parents, leaf = _split(entry.name)
        if budget is not None and entry.identity in identities:
            budget.charge("references", 1, "the file")
        node = root
        for part in parents:
            child = children.get((id(node), part))
            if child is None:
                child = Node(path=join_path(node.path, part), name=part, type="")
                if budget is not None:  # deep distinct prefixes: paths quadratic in a name's depth
                    budget.charge("tree_chars", len(child.path), "the tensor names")
                node.children.append(child)
                children[(id(node), part)] = child
            node = child
        token = identities.setdefault(entry.identity, object())  # one object per real tensor
        node.tensors.append(
            builder.tensor(
                token, node.path, leaf, entry.shape, entry.dtype, role_of(entry), nbytes=entry.nbytes
            )
        )
    return root


def flat_report(
    entries: list[FlatTensor],
    source: Source,
    format_label: str,
    root_name: str,
    optimizer: list[FlatTensor] | None = None,
    warnings: list[str] | None = None,
    budget: ReadBudget | None = None,
) -> Report:
    builder = TreeBuilder()
    root = flat_tree(entries, root_name, builder, budget)
    group = None
    if optimizer:
        names = UniqueNames()
        group = TensorGroup(
            "optimizer",
            [
                builder.tensor(object(), "optimizer", names(e.name), e.shape, e.dtype, Role.STATE)
                for e in optimizer
            ],
        )
    notes = list(warnings or [])
    if any(t.role is Role.UNKNOWN for t in root.all_tensors()):
        notes.insert(0, NO_TRAINABILITY.format(format=format_label))
    return Report(source=source, root=root, optimizer=group, warnings=notes)
