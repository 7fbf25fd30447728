"""Which rows the summary's layer table shows, as plain data that text, Markdown and HTML share.

A summary answers "what trains?" first, and a whole tree answers it badly: a fine-tuned
EfficientNetB0 is 238 layers, most of them Activation, Reshape or Dropout layers that hold no
weight, and its blocks repeat. So, unless told otherwise:

* layers that hold no tensor are hidden (``all_layers`` shows them; the footer counts them);
* consecutive siblings with the same structure and roles collapse into one row
  (``layer1.0 … layer1.2 (3 × BasicBlock)``); a change of role ends the run;
* the depth adapts: the deepest whose table fits a screen, yet no trainable layer disappears:
  a layer that is partly trainable is opened past that depth, its trainable layers shown
  under it and the rest folded into one row. A depth the user gives is exact.
* a run of partly trainable blocks (a LoRA model's decoder layers, each with its adapters)
  is opened once for all its members: a row stands for the same layer in every block, named
  by the glob that selects them (``model.layers.*.self_attn.q_proj``, 32 × lora.Linear).

Every number a row shows comes from the report's subtree summaries (core); this module only
chooses and groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from paramscope.core.kinds import Kind
from paramscope.core.report import Node, Report, RoleTotals, Tensor

SCREEN_ROWS = 24  # table rows that, with the first line and the reading under them, fit 40 lines
ROLE_NAMES = ("trainable", "frozen", "state", "unknown")
# Sources whose users name things by torch's dotted keys (`layer1.0.conv1.weight`).
DOTTED_KINDS = frozenset({Kind.TORCH, Kind.TORCHSCRIPT, Kind.TORCH_FILE, Kind.PEFT_ADAPTER})
_STATUS = {0: "—", 1: "Y", 2: "N", 3: "partial"}  # learnable bits: 1 some trainable, 2 some frozen
_BITS = {status: bits for bits, status in _STATUS.items()}


@dataclass(frozen=True)
class ViewOptions:
    depth: int | None = None  # None: the deepest depth that fits a screen
    all_layers: bool = False  # show layers that hold no tensor
    only: str | None = None  # a role: only the layers holding tensors of it
    show_tensors: bool = False


@dataclass(frozen=True)
class LayerRow:
    """One layer, a run of alike siblings (``members`` > 1) or the folded rest (``rest``)."""

    prefix: str  # tree guides ("├─ ")
    depth: int
    label: str  # `dense`, `layer1.0.conv1`, `block_1 … block_16`, `… 12 other layers`
    type: str  # `Dense`, `16 × MBConvBlock`; empty for the folded rest
    status: str  # Y / N / partial / —
    totals: dict[str, RoleTotals]  # the subtree(s) of this row, each tensor once
    tied: tuple[str, ...]  # layers whose tensors this row reuses (tied weights)
    output_shape: tuple | None
    members: int = 1
    rest: bool = False
    parallel: bool = False  # the same layer in each of ``members`` alike blocks, named by a glob


@dataclass(frozen=True)
class TensorRow:
    prefix: str
    depth: int
    tensor: Tensor
    label: str  # its name, or torch's dotted key
    alias_of: str | None  # the owner's path as the source's users write it


@dataclass(frozen=True)
class View:
    rows: list[LayerRow | TensorRow]
    depth: int  # the depth shown (chosen or forced)
    deepest: int  # the depth of the whole tree
    adaptive: bool
    hidden: int  # layers without tensors left out
    dotted: bool
    only: str | None = None  # the role ``--only`` asked for, so that an empty answer can say so


@dataclass
class _Entry:
    """A selected row before layout: one node, a run of alike siblings, the same layer in
    each block of a run (``parallel``), or the folded rest."""

    nodes: list[Node]
    level: int
    rest: bool = False
    parallel: bool = False
    span: str = "*"  # a parallel row's glob for the blocks it stands for (see _span)
    children: list[_Entry] = field(default_factory=list)


class _Selection:
    """Chooses rows for one depth; remembers what it hid and the signatures it computed."""

    def __init__(self, report: Report, options: ViewOptions, holders: set[int]) -> None:
        self.report, self.options, self.holders = report, options, holders
        self.signatures: dict[int, tuple] = {}
        self.hidden = 0

    def status(self, node: Node) -> str:
        return self.report.summaries[id(node)].status

    def listed(self, node: Node) -> bool:
        """Holds a tensor, or all layers are asked for."""
        return self.options.all_layers or id(node) in self.holders

    def holds_only(self, node: Node) -> bool:
        """Holds a tensor of the role ``only`` asks for (any, without ``only``)."""
        only = self.options.only
        return only is None or self.report.summaries[id(node)].totals()[only].tensors > 0

    def select(self, depth: int) -> _Entry:
        self.hidden = 0
        root = _Entry([self.report.root], 0)
        root.children = self.children(self.report.root, 0, depth)
        return root

    def children(self, node: Node, level: int, depth: int) -> list[_Entry]:
        beyond = level >= depth
        if beyond and (self.options.depth is not None or self.status(node) != "partial"):
            return []  # a forced depth is exact; an adaptive one opens what is partly trainable
        if not beyond and not self.options.all_layers:
            self.hidden += sum(1 for child in node.children if id(child) not in self.holders)
        kids = [child for child in node.children if self.listed(child)]
        # runs first, so that a run spans only layers that are next to each other
        runs = [run for run in self.runs(kids) if self.holds_only(run[0])]
        if not beyond:
            return [self.entry(run, level + 1, depth, _span(run, kids)) for run in runs]
        return self.opened(runs, level, lambda run: self.entry(run, level + 1, depth, _span(run, kids)))

    def entry(self, nodes: list[Node], level: int, depth: int, span: str, parallel: bool = False) -> _Entry:
        entry = _Entry(nodes, level, parallel=parallel, span=span)
        if len(nodes) == 1:
            entry.children = self.children(nodes[0], level, depth)
        elif self.status(nodes[0]) == "partial":
            entry.children = self.in_each(nodes, level, depth, span)
        return entry

    def in_each(self, nodes: list[Node], level: int, depth: int, span: str) -> list[_Entry]:
        """Under alike, partly trainable blocks, each row the same layer in every block: down to
        a depth the user gives, every layer; else the layers that train, the rest folded. Alike
        blocks hold the same tensors by relative path, so their children match by name."""
        forced = self.options.depth is not None
        if forced and level >= depth:
            return []
        groups = [
            group for group in _same_children(nodes) if self.listed(group[0]) and self.holds_only(group[0])
        ]
        if forced:
            return [self.entry(group, level + 1, depth, span, parallel=True) for group in groups]
        return self.opened(
            groups, level, lambda group: self.entry(group, level + 1, depth, span, parallel=True)
        )

    def opened(
        self, groups: list[list[Node]], level: int, make: Callable[[list[Node]], _Entry]
    ) -> list[_Entry]:
        """Past the depth shown: an entry (``make``) for each group of alike nodes that trains,
        wholly or partly; the others folded into one row."""
        trains = [self.status(group[0]) in ("Y", "partial") for group in groups]
        rest = [node for group, shown in zip(groups, trains, strict=True) if not shown for node in group]
        entries = [make(group) for group, shown in zip(groups, trains, strict=True) if shown]
        return entries + ([_Entry(rest, level + 1, rest=True)] if rest else [])

    def runs(self, nodes: list[Node]) -> list[list[Node]]:
        """Consecutive nodes alike in structure and roles, grouped."""
        runs: list[list[Node]] = []
        for node in nodes:
            previous = runs[-1][-1] if runs else None
            if previous is not None and self.alike(previous, node):
                runs[-1].append(node)
            else:
                runs.append([node])
        return runs

    def alike(self, first: Node, second: Node) -> bool:
        """Same type, tensors and roles; never with --show-tensors, which lists every tensor."""
        if self.options.show_tensors or first.type != second.type:
            return False
        return self.signature(first) == self.signature(second)

    def signature(self, node: Node) -> tuple:
        """Every tensor below ``node`` by relative path, shape, dtype and role: its structure."""
        key = id(node)
        if key not in self.signatures:
            start = len(node.path) + 1 if node.path else 0
            self.signatures[key] = tuple(
                (tensor.path[start:], tensor.shape, tensor.dtype, tensor.role, tensor.counted)
                for tensor in node.all_tensors()
            )
        return self.signatures[key]


def _same_children(nodes: list[Node]) -> list[list[Node]]:
    """The children of alike nodes, grouped by name: each group the same layer in every node.
    A child missing from one of them (a weightless layer) is left out."""
    by_name = [{child.name: child for child in node.children} for node in nodes]
    return [
        [children[child.name] for children in by_name]
        for child in nodes[0].children
        if all(child.name in children for children in by_name)
    ]


def _span(run: list[Node], siblings: list[Node]) -> str:
    """How a row under the run names its blocks: ``*`` when the run is all of them (the glob
    selects them), else ``{3…5}``, so that two runs of one model never share a label."""
    return "*" if len(run) == len(siblings) else f"{{{run[0].name}…{run[-1].name}}}"


def _glob(paths: list[str], span: str) -> str:
    """The path with ``span`` for the segment in which ``paths`` differ (the blocks): the same
    layer in every block of a run (all paths have as many segments)."""
    split = [path.split("/") for path in paths]
    return "/".join(parts[0] if len(set(parts)) == 1 else span for parts in zip(*split, strict=True))


def _holders(root: Node) -> set[int]:
    """ids of the nodes whose subtree holds at least one tensor (aliases included)."""
    holders: set[int] = set()
    for node in reversed(list(root.walk())):  # children before their parents
        if node.tensors or any(id(child) in holders for child in node.children):
            holders.add(id(node))
    return holders


def _deepest(root: Node) -> int:
    deepest, stack = 0, [(root, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in node.children)
    return deepest


def _count(entry: _Entry) -> int:
    return 1 + sum(_count(child) for child in entry.children)


def _adaptive(selection: _Selection, deepest: int) -> tuple[int, _Entry]:
    """The deepest depth (at least 1) whose rows fit ``SCREEN_ROWS``, and its rows."""
    chosen = (min(1, deepest), selection.select(min(1, deepest)))
    for depth in range(2, deepest + 1):
        tried = selection.select(depth)
        if _count(tried) > SCREEN_ROWS:
            break
        chosen = depth, tried
    selection.select(chosen[0])  # leaves the hidden count of the chosen depth
    return chosen


def build_view(report: Report, options: ViewOptions) -> View:
    """The rows of the layer table for ``options``."""
    selection = _Selection(report, options, _holders(report.root))
    deepest = _deepest(report.root)
    if options.depth is None:
        depth, root = _adaptive(selection, deepest)
    else:
        depth, root = options.depth, selection.select(options.depth)
    layout = _Layout(report, options)
    layout.place(root, "", "")
    return View(
        layout.rows, depth, deepest, options.depth is None, selection.hidden, layout.dotted, options.only
    )


class _Layout:
    """Turns selected entries into rows with tree guides, totals and tied markers."""

    def __init__(self, report: Report, options: ViewOptions) -> None:
        self.report, self.options = report, options
        self.dotted = report.source.kind in DOTTED_KINDS
        self.rows: list[LayerRow | TensorRow] = []

    def name(self, path: str, fallback: str) -> str:
        """A node or tensor as the source's users write it: torch's dotted key, else its name."""
        return path.replace("/", ".") if self.dotted and path else fallback

    def place(self, entry: _Entry, lead: str, guide: str) -> None:
        self.rows.append(self.layer_row(entry, lead + guide))
        child_lead = lead + ("   " if guide == "└─ " else "│  " if guide else "")
        if self.options.show_tensors and len(entry.nodes) == 1 and not entry.rest:
            tensor_lead = child_lead + ("│  " if entry.children else "   ")
            self.tensor_rows(entry, tensor_lead)
        for i, child in enumerate(entry.children):
            self.place(child, child_lead, "└─ " if i == len(entry.children) - 1 else "├─ ")

    def tensor_rows(self, entry: _Entry, lead: str) -> None:
        """The layer's tensors; where no layer below it is shown (a depth limit, a trainable
        layer opened no further), those of its whole subtree, so that every tensor of what the
        table shows is listed (a PEFT ``lora_A`` holds its weight in ``lora_A.default``)."""
        node = entry.nodes[0]
        start = len(node.path) + 1 if node.path else 0
        for tensor in node.tensors if entry.children else node.all_tensors():
            if self.options.only is None or tensor.role.value == self.options.only:
                label = (tensor.key or self.name(tensor.path, "")) if self.dotted else tensor.path[start:]
                owner = self.name(tensor.shared_with, tensor.shared_with) if tensor.shared_with else None
                self.rows.append(TensorRow(lead, entry.level + 1, tensor, label, owner))

    def layer_row(self, entry: _Entry, prefix: str) -> LayerRow:
        nodes = entry.nodes
        totals = _summed(self.report, nodes)
        status = _STATUS[_combined_bits(self.report, nodes)]
        if entry.rest:
            label = f"… {len(nodes):,} other layer{'s' if len(nodes) != 1 else ''}"
            tied = self.tied(nodes, label)
            return LayerRow(prefix, entry.level, label, "", status, totals, tied, None, len(nodes), True)
        first, last = nodes[0], nodes[-1]
        label = self.name(first.path, first.name or "(root)")
        kind = first.type
        if entry.parallel:
            glob = _glob([node.path for node in nodes], entry.span)
            label, kind = self.name(glob, glob), f"{len(nodes)} × {first.type}"
        elif len(nodes) > 1:
            label, kind = f"{label} … {self.name(last.path, last.name)}", f"{len(nodes)} × {first.type}"
        tied = self.tied(nodes, label)
        shapes = {getattr(node, "output_shape", None) for node in nodes}
        shape = shapes.pop() if len(shapes) == 1 else None
        return LayerRow(
            prefix, entry.level, label, kind, status, totals, tied, shape, len(nodes), parallel=entry.parallel
        )

    def tied(self, nodes: list[Node], label: str) -> tuple[str, ...]:
        """The layers owning tensors that these nodes reuse, when the owner lies outside them.
        An owner whose short name is the row's own label (Keras tracks a shared layer under
        each parent: ``tied_out/emb`` reuses ``emb``) is named by its full path from the root,
        so that the mark never reads as the row tied to itself."""
        owners: dict[str, None] = {}
        for node in nodes:
            inside = node.path + "/" if node.path else ""
            for tensor in node.all_tensors():
                owner = tensor.shared_with
                if owner is None or not inside or owner.startswith(inside):
                    continue  # not tied, or tied within this row (the root holds every owner)
                layer = owner.rpartition("/")[0]
                shown = self.name(layer, layer)
                if shown == label:
                    shown = f"{self.report.root.name or '(root)'}/{layer}"
                owners[shown] = None
        return tuple(owners)


def _summed(report: Report, nodes: list[Node]) -> dict[str, RoleTotals]:
    """The totals of several sibling subtrees (disjoint, so each tensor still counts once)."""
    if len(nodes) == 1:
        return report.summaries[id(nodes[0])].totals()
    summed = {role: RoleTotals() for role in (*ROLE_NAMES, "all")}
    for node in nodes:
        for role, totals in report.summaries[id(node)].totals().items():
            summed[role] += totals
    return summed


def _combined_bits(report: Report, nodes: list[Node]) -> int:
    bits = 0
    for node in nodes:
        bits |= _BITS[report.summaries[id(node)].status]
    return bits
