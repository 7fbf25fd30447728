"""Finding a node's spec: its class name in the framework's registry, fed plain config data.

Specs are written for configs the framework produced. A config read from a file can hold
anything — ``groups: 0``, a list where a number belongs, ``filters: 2**100``, a million axes
— so for file sources every spec is evaluated here, under one guard, instead of hardening
each spec. Before: every integer must fit in 64 bits and every list of integers hold at most
64, as real shapes, axes and kernel sizes do, so that no spec's arithmetic can grow without
bound. After: any failure, a shape that is not a real shape or a formula that is not a count
is a clean :class:`NoFormula`, and the layer gets the generic count of its tensors.
"""

from __future__ import annotations

from collections.abc import Mapping

from paramscope.core.kinds import Family, Kind
from paramscope.specs import keras_layers, torch_modules  # noqa: F401  (they fill the registries)
from paramscope.specs.spec import KERAS, KERAS2, TORCH, LayerSpec, SpecFunction

TF_KERAS = {**KERAS, **KERAS2}  # tf.keras builds a few layers differently from Keras 3
MAX_DIMS = 64  # as the read budget's default `dims`
MAX_ELEMENTS = 2**63 - 1  # as boundary.shape_of: a count must fit in a signed 64-bit integer


class NoFormula(ValueError):
    """A layer config from a file that its class's spec cannot evaluate."""


def registry(kind: Kind) -> Mapping[str, SpecFunction]:
    """The formulas that describe a source's layers. A live tf.keras model was built by Keras 2;
    a saved Keras model (``.keras``, or an ``.h5`` that Keras 3 or 2 may have written) is read
    with Keras 3's formulas; a live torch module with torch's. Other sources have none."""
    if kind.keras_like:
        return TF_KERAS if kind.live and kind.family is Family.TF_KERAS else KERAS
    return TORCH if kind.live and kind.family is Family.TORCH else {}


def spec_for(kind: Kind | str, class_name: str, config: dict | None, build: dict | None) -> LayerSpec | None:
    """The spec of a layer, or None when its class has no formula (or no config is known).

    For a file source, whose config is untrusted, a config the spec cannot evaluate raises
    :class:`NoFormula`.
    """
    kind = Kind(kind)
    function = registry(kind).get(class_name)
    if function is None or config is None:
        return None
    if kind.is_file:
        return _guarded(function, class_name, config, build or {})
    return function(config, build or {})


def _small_numbers(*values: object) -> bool:
    """Whether every integer in ``values`` fits in 64 bits and every list of integers holds at
    most ``MAX_DIMS``: then no product a spec takes over them can blow up."""
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            if len(value) > MAX_DIMS and any(type(item) is int for item in value):
                return False
            stack.extend(value)
        elif type(value) is int and not -MAX_ELEMENTS <= value <= MAX_ELEMENTS:
            return False
    return True


def _is_shape(shape: object) -> bool:
    if not isinstance(shape, tuple) or len(shape) > MAX_DIMS:
        return False
    elements = 1
    for dim in shape:
        if type(dim) is not int or dim < 0:
            return False
        elements *= dim or 1
        if elements > MAX_ELEMENTS:
            return False
    return True


def _message(exc: Exception) -> str:
    try:
        return str(exc)[:80]
    except Exception:  # str() of an exception holding a number too long to print
        return ""


def _guarded(function: SpecFunction, class_name: str, config: dict, build: dict) -> LayerSpec:
    what = f"the file's {class_name} config"
    if not _small_numbers(config, build):
        raise NoFormula(f"{what} holds numbers no layer has (over 64 bits, or over {MAX_DIMS} in a list)")
    try:
        spec = function(config, build)
        shapes_real = all(_is_shape(variable.shape) for variable in spec.variables)
        value = spec.formula.value if shapes_real else None
    except Exception as exc:  # a spec on an untrusted config may fail in any way: the guard's purpose
        raise NoFormula(f"{what} has no formula ({type(exc).__name__}: {_message(exc)})") from None
    if not shapes_real:
        raise NoFormula(f"{what} gives a variable a shape that is not a real shape")
    if type(value) is not int or not 0 <= value <= MAX_ELEMENTS:
        raise NoFormula(f"{what} gives a count that is not a number of parameters")
    return spec
