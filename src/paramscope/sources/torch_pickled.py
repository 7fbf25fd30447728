"""What a pickled torch object holds: its tensors under the names torch users write, and the
module tree of a pickled ``nn.Module``, read from the walker's inert records.

``torch.save(model)`` pickles the module object itself: its class as a global (recorded by the
walker, never imported) and its ``__dict__`` as BUILD state — ``_parameters`` (name ->
Parameter), ``_buffers``, ``_non_persistent_buffers_set``, ``_modules`` (name -> submodule),
``training``, the hooks and the plain attributes. ``named_parameters()``, ``named_buffers()``
and ``named_modules()`` read those three dicts and nothing else; so do we. A tensor kept in
another attribute or in a hook is no parameter of the module, for torch and for us, and the
names have no ``_parameters``/``_modules`` segments: ``layer1.0.conv1.weight``, as torch says.

Everything else (checkpoint dicts, lists, records of other classes, NumPy arrays) is walked as
plain containers: a tensor's name is its key path. The walk is iterative and linear: a
container reached a second time through the memo (DAGs and cycles are cheap to write) is not
walked again, and nesting deeper than ``depth`` is refused. A module reached a second time
(a submodule shared by two parents) is walked again, as a live model lists it again, each
time charged to ``references`` by what it registers, and never inside itself (a cycle):
torch's own walks skip a module they have seen too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from paramscope.errors import InputError
from paramscope.sources.boundary import name_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.pickle_numpy import ArrayRef, numpy_array
from paramscope.sources.pickle_walker import Call, Global, TensorRef

PARAMETER, BUFFER = "parameter", "buffer"
OPTIMIZER_KEYS = frozenset({"optimizer", "optimizers", "optimizer_states", "optimizer_state_dict", "optim"})
RECONSTRUCTORS = frozenset({Global("copyreg", "_reconstructor"), Global("copy_reg", "_reconstructor")})
SETS = frozenset({Global("builtins", "set"), Global("__builtin__", "set")})


@dataclass(frozen=True, slots=True)
class Held:
    """A tensor the object holds, at its key path. ``slot`` says whether a module registered it
    as a parameter or a buffer (None: a plain tensor, as in a state dict)."""

    path: tuple[str, ...]
    tensor: TensorRef | ArrayRef
    in_optimizer: bool
    slot: str | None = None
    persistent: bool | None = None  # buffers: whether state_dict() saves it


@dataclass(frozen=True, slots=True)
class ModuleSeen:
    """A pickled module at a path: its class name (as written, never imported) and mode."""

    path: tuple[str, ...]
    type: str
    mode: str | None


@dataclass(frozen=True, slots=True)
class Unread:
    """Something a module registered as a tensor that is no tensor record we can size."""

    path: tuple[str, ...]


Sighting = Held | ModuleSeen | Unread


@dataclass(frozen=True, slots=True)
class PickledModule:
    type: str
    mode: str | None
    parameters: dict
    buffers: dict
    non_persistent: frozenset[str]
    modules: dict


def _module_state(call: Call) -> dict | None:
    """The ``__dict__`` of a pickled ``nn.Module`` (BUILD gives ``(dict, slots)`` for a class
    with ``__slots__``), or None when the record is no module."""
    state = call.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]
    if isinstance(state, dict) and "_parameters" in state and "_modules" in state:
        return state
    return None


def _class_name(call: Call, budget: ReadBudget) -> str:
    """The module's class name: NEWOBJ names the class; protocols 0 and 1 call
    ``copyreg._reconstructor(cls, object, None)``."""
    function = call.function
    if not isinstance(function, Global):  # a class built by a call: no name to give
        return "?"
    if function in RECONSTRUCTORS and call.args and isinstance(call.args[0], Global):
        function = call.args[0]
    return name_of(function.name, budget, "a module's class name")


def _registry(state: dict, key: str) -> dict:
    value = state.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"a pickled module whose {key} is a {type(value).__name__}, not a dict")
    return value


def _names_in_set(value: object) -> frozenset[str]:
    """``_non_persistent_buffers_set``: ``set([...])`` by REDUCE, or the list the walker makes
    of an EMPTY_SET with ADDITEMS."""
    if value is None:
        return frozenset()
    if isinstance(value, Call) and isinstance(value.function, Global) and value.function in SETS:
        value = value.args[0] if value.args else ()
    if not isinstance(value, (list, tuple)):
        raise InputError(f"a pickled module whose _non_persistent_buffers_set is a {type(value).__name__}")
    return frozenset(name for name in value if isinstance(name, str))


def module_record(call: Call, budget: ReadBudget) -> PickledModule | None:
    """The parts of a pickled ``nn.Module`` that name its tensors and submodules, else None."""
    state = _module_state(call)
    if state is None:
        return None
    training = state.get("training")
    return PickledModule(
        _class_name(call, budget),
        ("train" if training else "eval") if isinstance(training, bool) else None,
        _registry(state, "_parameters"),
        _registry(state, "_buffers"),
        _names_in_set(state.get("_non_persistent_buffers_set")),
        _registry(state, "_modules"),
    )


@dataclass(frozen=True, slots=True)
class _Registered:
    """A module's parameter or buffer, on the walk's stack."""

    tensor: object
    slot: str
    persistent: bool | None = None


@dataclass(frozen=True, slots=True)
class _Leave:
    """Marks the end of a module's subtree on the walk's stack."""

    module: int


class _Walk:
    """One walk over a pickled object; see the module docstring."""

    def __init__(self, budget: ReadBudget) -> None:
        self.budget = budget
        self.seen: set[int] = set()  # containers walked
        self.walked: set[int] = set()  # modules walked at least once
        self.inside: set[int] = set()  # modules whose subtree is being walked
        self.records: dict[int, ArrayRef | PickledModule | None] = {}

    def record(self, call: Call) -> ArrayRef | PickledModule | None:
        """What a record is, decided once per record however often it is reached."""
        key = id(call)
        if key not in self.records:
            self.records[key] = numpy_array(call, self.budget) or module_record(call, self.budget)
        return self.records[key]

    def run(self, value: object) -> Iterator[Sighting]:
        stack: list[tuple[object, tuple[str, ...], bool]] = [(value, (), False)]
        while stack:
            item, path, in_optimizer = stack.pop()
            if isinstance(item, _Leave):
                self.inside.discard(item.module)
            elif isinstance(item, TensorRef):
                yield Held(path, item, in_optimizer)
            elif isinstance(item, _Registered):
                if isinstance(item.tensor, TensorRef):
                    yield Held(path, item.tensor, in_optimizer, item.slot, item.persistent)
                else:
                    yield Unread(path)
            elif isinstance(item, (dict, list, tuple, Call)):
                interpreted = self.record(item) if isinstance(item, Call) else None
                if isinstance(interpreted, ArrayRef):
                    yield Held(path, interpreted, in_optimizer)
                elif isinstance(interpreted, PickledModule):
                    yield from self.module(item, interpreted, path, in_optimizer, stack)
                elif id(item) not in self.seen:
                    self.seen.add(id(item))
                    self.budget.check("depth", len(path), "pickle")
                    stack.extend(reversed(_children(item, path, in_optimizer)))

    def module(
        self, record: Call, module: PickledModule, path: tuple[str, ...], in_optimizer: bool, stack: list
    ) -> Iterator[Sighting]:
        key = id(record)
        if key in self.inside:
            return  # the module inside itself
        if key in self.walked:  # charged by what it registers: walking it again costs that much
            entries = len(module.parameters) + len(module.buffers) + len(module.modules)
            self.budget.charge("references", 1 + entries, "the pickled modules")
        self.budget.check("depth", len(path), "pickle")
        self.walked.add(key)
        self.inside.add(key)
        yield ModuleSeen(path, module.type, module.mode)
        stack.append((_Leave(key), path, in_optimizer))
        stack.extend(reversed(_module_children(module, path, in_optimizer)))


def _module_children(module: PickledModule, path: tuple[str, ...], in_optimizer: bool) -> list:
    """Parameters, then buffers, then submodules, each in registration order, as torch lists
    them; None entries (``bias=False``) are no tensors."""
    children = []
    for name, tensor in module.parameters.items():
        if tensor is not None:
            children.append((_Registered(tensor, PARAMETER), (*path, str(name)), in_optimizer))
    for name, tensor in module.buffers.items():
        if tensor is not None:
            registered = _Registered(tensor, BUFFER, name not in module.non_persistent)
            children.append((registered, (*path, str(name)), in_optimizer))
    for name, child in module.modules.items():
        if child is not None:
            children.append((child, (*path, str(name)), in_optimizer))
    return children


def _children(item: object, path: tuple[str, ...], in_optimizer: bool) -> list:
    if isinstance(item, Call):  # a record of another class: its state, items, list items, args
        parts = [item.state, item.items, item.listitems, item.args]
        return [(part, path, in_optimizer) for part in parts if part]
    if isinstance(item, dict):
        optimizer_like = in_optimizer or ("state" in item and "param_groups" in item)
        return [
            (child, (*path, str(key)), optimizer_like or _optimizer_key(key)) for key, child in item.items()
        ]
    return [(child, (*path, str(i)), in_optimizer) for i, child in enumerate(item)]


def _optimizer_key(key: object) -> bool:
    return isinstance(key, str) and key.lower() in OPTIMIZER_KEYS


def holdings(value: object, budget: ReadBudget) -> Iterator[Sighting]:
    """Every tensor and pickled module under ``value``, in model order, with its path and
    whether it sits in optimizer state."""
    return _Walk(budget).run(value)


__all__ = [
    "BUFFER",
    "PARAMETER",
    "Held",
    "ModuleSeen",
    "PickledModule",
    "Sighting",
    "Unread",
    "holdings",
    "module_record",
]
