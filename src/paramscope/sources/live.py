"""Which framework a live object belongs to, decided without importing any framework.

A framework that is not imported yet cannot have made the object, so we only consult the
modules already in ``sys.modules``. Keras 3 comes first: on its torch backend every Keras
layer is also a ``torch.nn.Module``.
"""

from __future__ import annotations

import sys

from paramscope.core.report import Report


def live_kind(obj: object) -> str | None:
    """`keras`, `tf_keras`, `torch`, or None when the object is no model we know."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "Layer") and isinstance(obj, keras.Layer):
        return "keras"
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is not None and isinstance(obj, tf_keras.layers.Layer):
        return "tf_keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return "torch"
    return None


def inspect_live(obj: object, kind: str) -> Report:
    if kind == "keras":
        from paramscope.sources.keras3 import inspect_keras

        return inspect_keras(obj)
    if kind == "tf_keras":
        from paramscope.sources.tf_keras import inspect_tf_keras

        return inspect_tf_keras(obj)
    from paramscope.sources.torch_module import inspect_torch

    return inspect_torch(obj)
