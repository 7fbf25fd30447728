"""Plain, JSON-able data from the inert records of a pickle: what a checkpoint says about itself.

A Lightning checkpoint's ``hyper_parameters`` (or a script's ``args``) hold whatever the user
passed: numbers and strings, but also OmegaConf ``DictConfig``/``ListConfig`` objects,
``argparse.Namespace``, enums, tensors. The walker left each object a :class:`Call` record; here
the ones whose layout is known become the plain values they stand for, and every other record
becomes a short text naming its class (``"<mypackage.Schedule>"``), never imported.

OmegaConf pickles a container's ``__dict__`` (``BaseContainer.__getstate__``): ``_content`` is
a dict of key -> node for a ``DictConfig``, a list of nodes for a ``ListConfig``, or, for the
whole container, ``None`` or a string (``"???"`` missing, ``"${…}"`` an interpolation); a value
node (``omegaconf.nodes.AnyNode``, ``IntegerNode``…) keeps its value in ``_val``. Every node
also points at its ``_parent``, a cycle we never follow.

Bounded whatever the pickle: each value is charged to ``metadata_entries``; past ``MAX_VALUES``
values, ``MAX_DEPTH`` levels or ``MAX_ITEMS`` items of one container the rest becomes ``"…"``;
strings are cut to ``MAX_TEXT`` characters; a container inside itself becomes ``"<cycle>"``.
"""

from __future__ import annotations

import math

from paramscope.sources.budget import ReadBudget
from paramscope.sources.pickle_numpy import ArrayRef, numpy_array
from paramscope.sources.pickle_walker import Call, Global, Opaque, TensorRef

MAX_VALUES = 10_000  # values one conversion produces
MAX_DEPTH = 32
MAX_ITEMS = 1_000  # items of one dict or list
MAX_TEXT = 1_000  # characters of one string
MORE = "…"
NAMESPACES = frozenset({Global("argparse", "Namespace"), Global("types", "SimpleNamespace")})


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + MORE


def _scalar(value: object) -> object:
    """A plain scalar as JSON can hold it (NaN and infinities as text), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value):,} bytes>"
    if isinstance(value, Opaque):
        return f"<{value.description}>"
    if isinstance(value, TensorRef):
        return f"<tensor {value.storage.dtype} {list(value.shape)}>"
    if isinstance(value, Global):
        return f"<{_text(value.dotted)}>"
    return value


def _key(key: object) -> str:
    """A dict key as text; a tuple key's parts are cut one by one, never joined whole first."""
    if isinstance(key, tuple):
        return _text("(" + ", ".join(str(_scalar(part)) for part in key) + ")")
    return _text(str(_scalar(key)))


def _dotted(call: Call) -> str:
    return _text(call.function.dotted) if isinstance(call.function, Global) else "?"


class _Plain:
    def __init__(self, budget: ReadBudget) -> None:
        self.budget = budget
        self.values = 0
        self.inside: set[int] = set()  # containers being converted: one inside itself is a cycle

    def convert(self, value: object, depth: int) -> object:
        if isinstance(
            value, (type(None), bool, int, float, str, bytes, bytearray, Opaque, TensorRef, Global)
        ):
            self.charge()
            return _scalar(value)
        if self.values >= MAX_VALUES or depth >= MAX_DEPTH:
            return MORE
        if id(value) in self.inside:
            return "<cycle>"
        self.charge()
        self.inside.add(id(value))
        try:
            return self.container(value, depth + 1)
        finally:
            self.inside.discard(id(value))

    def charge(self) -> None:
        self.values += 1
        self.budget.charge("metadata_entries", 1, "the checkpoint's metadata")

    def container(self, value: object, depth: int) -> object:
        if isinstance(value, dict):
            return self.mapping(value, depth)
        if isinstance(value, (list, tuple)):
            return self.sequence(value, depth)
        if isinstance(value, Call):
            return self.record(value, depth)
        return f"<{type(value).__name__}>"

    def mapping(self, value: dict, depth: int) -> dict:
        result: dict[str, object] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= MAX_ITEMS or self.values >= MAX_VALUES:
                result[MORE] = f"{len(value) - i:,} more"
                break
            result[_key(key)] = self.convert(item, depth)
        return result

    def sequence(self, value: list | tuple, depth: int) -> list:
        result = []
        for i, item in enumerate(value):
            if i >= MAX_ITEMS or self.values >= MAX_VALUES:
                result.append(f"{MORE} {len(value) - i:,} more")
                break
            result.append(self.convert(item, depth))
        return result

    def record(self, call: Call, depth: int) -> object:
        """The plain value a record of a known layout stands for, else its class as text."""
        function = call.function
        state = call.state
        if isinstance(function, Global) and function.module.split(".", 1)[0] == "omegaconf":
            if isinstance(state, dict) and "_content" in state:  # DictConfig, ListConfig
                return self.convert(state["_content"], depth)
            if isinstance(state, dict) and "_val" in state:  # a value node
                return self.convert(state["_val"], depth)
        if call.items is not None:  # a dict subclass (Lightning's AttributeDict)
            return self.mapping(call.items, depth)
        if call.listitems is not None:  # a list subclass
            return self.sequence(call.listitems, depth)
        if isinstance(function, Global) and function in NAMESPACES and isinstance(state, dict):
            return self.mapping(state, depth)
        array = numpy_array(call, self.budget)
        if isinstance(array, ArrayRef):
            return f"<numpy {array.dtype} array {list(array.shape)}>"
        return f"<{_dotted(call)}>"


def plain(value: object, budget: ReadBudget) -> object:
    """``value`` (inert pickle data) as plain JSON-able data, bounded; see the module docstring."""
    return _Plain(budget).convert(value, 0)


__all__ = ["plain"]
