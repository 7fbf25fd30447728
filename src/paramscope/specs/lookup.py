"""Finding a node's spec: its class name in the framework's registry, fed plain config data."""

from __future__ import annotations

from paramscope.specs import keras_layers, torch_modules  # noqa: F401  (they fill the registries)
from paramscope.specs.spec import KERAS, KERAS2, TORCH, LayerSpec

REGISTRY_OF_KIND = {
    "keras": KERAS,
    "tf_keras": {**KERAS, **KERAS2},
    "keras_file": KERAS,
    "h5": KERAS,
    "torch": TORCH,
}


def keras_spec(class_name: str, config: dict, build: dict) -> LayerSpec | None:
    function = KERAS.get(class_name)
    return None if function is None else function(config, build)


def spec_for(kind: str, class_name: str, config: dict | None, build: dict | None) -> LayerSpec | None:
    """The spec of a layer, or None when its class has no formula (or no config is known)."""
    function = REGISTRY_OF_KIND.get(kind, {}).get(class_name)
    if function is None or config is None:
        return None
    return function(config, build or {})
