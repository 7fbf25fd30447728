"""Layer specs: what a layer class creates, from its configuration and input shape alone.

A spec function takes plain data — the layer's config dict and its build shapes (Keras
``get_build_config()``; torch modules are built eagerly and need none) — and returns the
variables the layer creates (name, shape, trainable or state) and the formula that counts
them. It never sees a live object, so the same registry serves live models, the ``.keras``
reader (naming ``vars/0..n``) and lint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from paramscope.specs.expr import Expr

ANY_NAME = "*"  # for weights a layer creates without a name (Keras calls them `variable_N`)


@dataclass(frozen=True)
class VarSpec:
    name: str
    shape: tuple[int, ...]
    state: bool = False  # created non-trainable (moving statistics, counters)

    @property
    def params(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class LayerSpec:
    variables: tuple[VarSpec, ...]
    formula: Expr
    why: str


SpecFunction = Callable[[dict, dict], LayerSpec]

KERAS: dict[str, SpecFunction] = {}
KERAS2: dict[str, SpecFunction] = {}  # where tf.keras (Keras 2) builds a layer differently
TORCH: dict[str, SpecFunction] = {}


def register(registry: dict[str, SpecFunction], *class_names: str):
    """Register a spec function for one or more layer class names."""

    def decorate(function: SpecFunction) -> SpecFunction:
        for name in class_names:
            registry[name] = function
        return function

    return decorate


def input_shape(build: dict) -> tuple:
    """The single input shape recorded at build time (batch dimension first)."""
    shape = build.get("input_shape")
    if shape is None:
        shapes = build.get("shapes_dict") or {}
        shape = next(iter(shapes.values()), None)
    if shape is None:
        raise KeyError("no input shape recorded")
    return tuple(shape)
