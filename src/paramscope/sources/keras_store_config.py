"""A saved Keras model's configuration as typed records, validated once.

``config.json`` and ``metadata.json`` of a ``.keras`` archive and the ``model_config``
attribute of a legacy ``.h5`` are JSON written by Keras — or by anyone. They are parsed within
the budget (``boundary.load_json``: size and value count bounded before parsing) and validated
here into :class:`LayerConfig` records, which the readers behind trust: ``class_name`` and
``name`` are bounded text, ``config`` and ``build_config`` objects, ``trainable`` true or false,
sublayers come from lists of objects, and layers nest at most ``depth`` deep. The raw
``config`` object is kept for the layer specs, which evaluate it under their own guard
(specs/lookup.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paramscope.errors import InputError
from paramscope.sources.boundary import expect, load_json, name_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget

WRAPPED = ("layer", "backward_layer")  # the config keys of the layers a wrapper holds


@dataclass(frozen=True)
class LayerConfig:
    name: str
    class_name: str
    config: dict
    build: dict
    trainable: bool  # the flag as saved
    children: dict[str, LayerConfig] = field(default_factory=dict)  # by name, in config order


def _object(parent: dict, key: str, what: str) -> dict:
    """``parent[key]`` as an object; absent or null is an empty one."""
    value = parent.get(key)
    return {} if value is None else expect(value, dict, f"{what}: {key}")


def _text(parent: dict, key: str, budget: ReadBudget, what: str) -> str:
    value = parent.get(key, "")
    if not isinstance(value, str):
        raise InputError(f"{what}: {key} should be text, not {type(value).__name__}")
    return name_of(value, budget, f"{what}: {key}")


def _sublayers(config: dict) -> list[dict]:
    """The layers a container lists and a wrapper wraps. A custom layer may use ``layers`` for
    something else (a list of widths): only objects in it are layers."""
    listed = config.get("layers")
    nested = [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []
    return nested + [config[key] for key in WRAPPED if isinstance(config.get(key), dict)]


def layer_config(value: object, budget: ReadBudget, what: str, depth: int = 0) -> LayerConfig:
    """A layer's serialized form (``{"class_name": …, "config": {…}}``) as a typed record."""
    if depth > budget.limits.depth:
        raise BudgetExceeded("depth", budget.limits.depth, f"{what}: nested layers")
    budget.tick()
    serialized = expect(value, dict, f"{what}: a layer")
    class_name = _text(serialized, "class_name", budget, what)
    config = _object(serialized, "config", what)
    trainable = config.get("trainable", True)
    if not isinstance(trainable, bool):
        raise InputError(f"{what}: trainable should be true or false, not {trainable!r:.40}")
    name, build = _text(config, "name", budget, what), _object(serialized, "build_config", what)
    children = {}
    for child in _sublayers(config):
        parsed = layer_config(child, budget, what, depth + 1)
        children[parsed.name] = parsed
    return LayerConfig(name, class_name, config, build, trainable, children)


def model_config(data: bytes, budget: ReadBudget, what: str) -> LayerConfig:
    """The root layer of a JSON model config (config.json, a legacy ``model_config``)."""
    return layer_config(load_json(data, budget, what), budget, what)


def keras_version(data: bytes, budget: ReadBudget, what: str) -> str | None:
    """The Keras version a ``metadata.json`` records, if any."""
    metadata = expect(load_json(data, budget, what), dict, what)
    version = metadata.get("keras_version")
    return None if version is None else _text(metadata, "keras_version", budget, what)
