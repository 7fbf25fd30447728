"""The framework-neutral model of what a model holds: tensors in a tree of nodes.

A source (live Keras, live torch, a checkpoint file) builds a :class:`Node` tree whose
:class:`Tensor` leaves carry a :class:`Role`. Aliases of one tensor (tied embeddings, a layer
shared between two parents) appear at every place the model reaches them, but only the first
owner counts it; the others point to it through ``shared_with``. Every total in paramscope is
computed here, from the tree, so renderers and operations never re-count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

from paramscope.core.kinds import Kind


class Role(str, Enum):
    """What training does to a tensor."""

    TRAINABLE = "trainable"  # updated by gradients
    FROZEN = "frozen"  # could be trained, switched off
    STATE = "state"  # never trained by gradients (BatchNorm moving stats, buffers, counters)
    UNKNOWN = "unknown"  # the source stores no trainability (most checkpoint formats)

    def __str__(self) -> str:
        return self.value


ROLES = tuple(Role)


@dataclass(slots=True)
class Tensor:
    """One stored array and its place in the model.

    Treat it as read-only. It is not a frozen dataclass because one is built per weight on
    the inspection hot path, and a frozen dataclass costs five times as much to construct.
    """

    name: str
    path: str
    shape: tuple[int, ...]
    dtype: str
    role: Role
    params: int
    bytes: int | None
    shared_with: str | None = None  # owner's path when this is an alias of a tensor seen before
    persistent: bool | None = None  # torch buffers: saved in state_dict() or not
    # How the tensor is stored when quantized: the scheme of a quantized weight ("int8",
    # "nf4", "gptq-4bit", "fp8-e4m3"), whose ``params`` are its logical parameters and
    # ``bytes`` its real storage; or what a quantization tensor is ("scale", "zero-point",
    # "absmax"). None for ordinary tensors.
    quantized: str | None = None
    # The tensor's name as its framework or file spells it: a torch state_dict() key
    # (``layer1.0.conv1.weight``), a Keras variable path (``dense/kernel``), a tf.keras weight
    # name (``dense/kernel:0``), a file's own tensor name. ``path`` is paramscope's place for it in
    # the tree; the key is what the user types into their framework. None where there is none.
    key: str | None = None

    @property
    def counted(self) -> bool:
        """Whether totals count this entry (aliases are counted at their owner only)."""
        return self.shared_with is None


@dataclass
class RoleTotals:
    """Tensor, parameter and byte counts of one role (or of all roles)."""

    tensors: int = 0
    params: int = 0
    bytes: int = 0

    def add(self, tensor: Tensor) -> None:
        self.tensors += 1
        self.params += tensor.params
        self.bytes += tensor.bytes or 0

    def __iadd__(self, other: RoleTotals) -> RoleTotals:
        self.tensors += other.tensors
        self.params += other.params
        self.bytes += other.bytes
        return self

    def as_dict(self) -> dict[str, int]:
        return {"tensors": self.tensors, "params": self.params, "bytes": self.bytes}


def totals_of(
    tensors: Iterator[Tensor] | list[Tensor], roles: Mapping[str, Role] | None = None
) -> dict[str, RoleTotals]:
    """Totals per role plus ``all``, counting each tensor once (aliases skipped).

    ``roles`` (tensor path -> role) replaces the tensors' own roles, e.g. as a freeze plan
    would leave them.
    """
    totals = {role.value: RoleTotals() for role in ROLES}
    totals["all"] = RoleTotals()
    for tensor in tensors:
        if tensor.counted:
            role = roles[tensor.path] if roles is not None else tensor.role
            totals[role.value].add(tensor)
            totals["all"].add(tensor)
    return totals


_SLOT = {role: 3 * i for i, role in enumerate(ROLES)}  # (tensors, params, bytes) per role
_LEARNABLE_BIT = {Role.TRAINABLE: 1, Role.FROZEN: 2}
_STATUS = {0: "—", 1: "Y", 2: "N", 3: "partial"}


@dataclass(frozen=True)
class SubtreeSummary:
    """A subtree's counts per role as plain integers, and which learnable roles it holds."""

    counts: tuple[int, ...]
    learnable: int  # bit 1: some tensor trainable, bit 2: some frozen (aliases included)

    @property
    def status(self) -> str:
        return _STATUS[self.learnable]

    def totals(self) -> dict[str, RoleTotals]:
        totals = {role.value: RoleTotals(*self.counts[_SLOT[role] : _SLOT[role] + 3]) for role in ROLES}
        everything = RoleTotals()
        for role_totals in totals.values():
            everything += role_totals
        totals["all"] = everything
        return totals


@dataclass
class Node:
    """A layer or module: its own tensors and its children, in model order."""

    path: str
    name: str
    type: str
    trainable: bool | None = None  # the flag as the user set it (Keras); None where none exists
    tensors: list[Tensor] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    mode: str | None = None  # torch: "train" or "eval"
    # The layer's configuration and build shapes (plain data), for formulas. File readers set
    # them; live sources give a loader instead, so `summary` never pays for reading configs.
    config: dict | None = field(default=None, repr=False, compare=False)
    build: dict | None = field(default=None, repr=False, compare=False)
    config_loader: Callable[[], tuple[dict | None, dict | None]] | None = field(
        default=None, repr=False, compare=False
    )
    origin: object = field(default=None, repr=False, compare=False)  # the live layer/module, if any
    # The layer's output shape where the source knows it without running the model (a Keras
    # functional layer's symbolic output; None is a batch dimension). None where unknown.
    output_shape: tuple[int | None, ...] | None = field(default=None, compare=False)

    def layer_config(self) -> tuple[dict | None, dict | None]:
        """(config, build shapes) of this layer, loaded on first use; (None, None) if unknown."""
        if self.config is None and self.config_loader is not None:
            self.config, self.build = self.config_loader()
            self.config_loader = None
        return self.config, self.build

    def walk(self) -> Iterator[Node]:
        """This node and every descendant, depth first, in model order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def all_tensors(self) -> Iterator[Tensor]:
        for node in self.walk():
            yield from node.tensors

    def totals(self) -> dict[str, RoleTotals]:
        """Totals of this subtree; a tensor owned outside it is not counted here."""
        return totals_of(self.all_tensors())

    def subtree_summaries(self) -> dict[int, SubtreeSummary]:
        """Totals and training status of every subtree at once, keyed by ``id(node)``.

        One bottom-up pass over plain integers, so summarising and rendering a deep tree stays
        linear in its size; ``RoleTotals`` are built only for the rows someone asks about.
        """
        result: dict[int, SubtreeSummary] = {}
        for node in reversed(list(self.walk())):  # children before their parents
            counts = [0] * (3 * len(ROLES))
            learnable = 0
            for tensor in node.tensors:
                learnable |= _LEARNABLE_BIT.get(tensor.role, 0)
                if tensor.shared_with is None:
                    slot = _SLOT[tensor.role]
                    counts[slot] += 1
                    counts[slot + 1] += tensor.params
                    counts[slot + 2] += tensor.bytes or 0
            for child in node.children:
                below = result[id(child)]
                counts = [a + b for a, b in zip(counts, below.counts, strict=True)]
                learnable |= below.learnable
            result[id(node)] = SubtreeSummary(tuple(counts), learnable)
        return result

    def training_status(self, roles: Mapping[str, Role] | None = None) -> str:
        """`Y` all trainable, `N` all frozen, `partial`, or `—` when it holds no learnable tensor.

        Aliases count here (a tied head whose weight is frozen elsewhere is `partial`).
        ``roles`` (tensor path -> role) replaces the tensors' own roles.
        """
        learnable = 0
        for tensor in self.all_tensors():
            role = roles[tensor.path] if roles is not None else tensor.role
            learnable |= _LEARNABLE_BIT.get(role, 0)
        return _STATUS[learnable]


@dataclass(frozen=True)
class Source:
    """Where a report came from."""

    kind: Kind  # given as its string ("torch", "keras_file", ...) or as the Kind
    framework_version: str | None = None
    backend: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))


class Verdict(str, Enum):
    """What loading a pickled file with its framework's ``load`` would do."""

    DATA_ONLY = "data-only"  # torch.load(weights_only=True) would load it
    NEEDS_CODE = "needs-code"  # it names classes from other packages: loading imports them
    MALICIOUS = "malicious"  # it reaches functions that run commands, open files, eval code

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PickleVerdict:
    """The verdict on a pickled file and the names behind it (never imported by paramscope)."""

    verdict: Verdict
    needs_code: tuple[str, ...] = ()  # globals from other packages that loading would import
    malicious: tuple[tuple[str, str], ...] = ()  # (global, what calling it does)
    # Pickle protocols torch's weights_only loader refuses (it reads 2 and 3): a data-only
    # file written in protocol 4 imports nothing, yet needs weights_only=False to load.
    refused_protocols: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict.value,
            "needs_code": list(self.needs_code),
            "malicious": [{"global": name, "does": does} for name, does in self.malicious],
            "refused_protocols": list(self.refused_protocols),
        }


@dataclass
class TensorGroup:
    """Tensors that belong with a model but are not part of it (optimizer slots, metrics)."""

    name: str
    tensors: list[Tensor]

    @property
    def totals(self) -> RoleTotals:
        total = RoleTotals()
        for tensor in self.tensors:
            total.add(tensor)
        return total


@dataclass
class Report:
    """Everything paramscope knows about one model; what every renderer and operation takes."""

    source: Source
    root: Node
    optimizer: TensorGroup | None = None
    metrics: TensorGroup | None = None
    constants: TensorGroup | None = None  # ONNX Constant-node tensors: data, not parameters
    warnings: list[str] = field(default_factory=list)
    # What loading a pickled file would do; None for sources that are not pickles.
    pickle: PickleVerdict | None = None
    # Plain, JSON-able facts the file carries beside its tensors (a Lightning checkpoint's
    # hyper_parameters, epoch and global_step; a TorchScript archive's producer).
    metadata: dict[str, object] = field(default_factory=dict)
    # Paths of the tensors the compiled train step will update, where the framework captured
    # them at compile() time (tf.keras `_collected_trainable_weights`); None when it did not.
    compiled_trainable: list[str] | None = None
    # Parameters per role that the framework's own count misses (torch: bitsandbytes 4-bit
    # weights, whose numel() is half their parameters); conventions subtract it to stay truthful.
    framework_undercount: dict[str, int] = field(default_factory=dict)
    # Paths of the layers whose `trainable` flag changed since compile() (Keras); None when
    # the model is not compiled.
    changed_since_compile: list[str] | None = None
    # Tensor path -> the live framework object it was read from (live models only): what an
    # operation that needs values (audit) reads and restores. Never serialised.
    origins: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    totals: dict[str, RoleTotals] = field(init=False)
    # Totals and training status of every subtree (keyed by id(node)), computed once: the
    # renderers need them for every row, and the report's own totals are the root's.
    summaries: dict[int, SubtreeSummary] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.summaries = self.root.subtree_summaries()
        self.totals = self.summaries[id(self.root)].totals()

    def tensors(self) -> Iterator[Tensor]:
        """Every tensor entry, aliases included, in model order."""
        return self.root.all_tensors()

    def nodes(self) -> Iterator[Node]:
        return self.root.walk()

    def __rich__(self):  # `rich.print(report)`
        """A display hook: the one import from core into render, made lazily (ARCHITECTURE.md)."""
        from paramscope.render import renderable

        return renderable("summary", self)

    def _repr_html_(self) -> str:  # Jupyter, VS Code, Colab
        """A display hook: the compact summary as HTML (no script), rendered lazily."""
        from paramscope.render import notebook_html

        return notebook_html("summary", self)
