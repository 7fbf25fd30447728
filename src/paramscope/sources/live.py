"""Live models: which framework an object belongs to, its report, its trainable flags.

The framework is decided without importing any: a framework that is not imported yet cannot
have made the object, so we only consult the modules already in ``sys.modules``. Keras 3
comes first: on its torch backend every Keras layer is also a ``torch.nn.Module``.
"""

from __future__ import annotations

import sys

from paramscope.core.kinds import Family, Freezing, Kind
from paramscope.core.report import Report
from paramscope.errors import InputError

# (object, attribute, value): a flag a freeze plan can change, as it was
Flag = tuple[object, str, bool]


def live_kind(obj: object) -> Kind | None:
    """`Kind.KERAS`, `Kind.TF_KERAS`, `Kind.TORCH`, or None when the object is no model we know."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "Layer") and isinstance(obj, keras.Layer):
        return Kind.KERAS
    # A module half-imported (an import that failed midway, or still running) has no `layers` yet.
    tf_layer = getattr(getattr(sys.modules.get("tf_keras"), "layers", None), "Layer", None)
    if tf_layer is not None and isinstance(obj, tf_layer):
        return Kind.TF_KERAS
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return Kind.TORCH
    return None


def inspect_live(obj: object, kind: Kind) -> Report:
    if kind.family is Family.KERAS:
        from paramscope.sources.keras3 import inspect_keras

        return inspect_keras(obj)
    if kind.family is Family.TF_KERAS:
        from paramscope.sources.tf_keras import inspect_tf_keras

        return inspect_tf_keras(obj)
    from paramscope.sources.torch_module import inspect_torch

    return inspect_torch(obj)


def load_keras_model(path: str) -> object:
    """A ``.keras`` or ``.h5`` file loaded by Keras itself, to be run (audit): safe mode, so
    Lambda layers are refused. A weights-only checkpoint has no forward to run."""
    if not path.endswith((".keras", ".h5")):
        raise InputError(f"{path}: audit needs a model it can run; pass a module:factory reference")
    import keras

    try:
        return keras.saving.load_model(path)
    except Exception as exc:
        raise InputError(
            f"{path}: Keras could not load it ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None


def trainable_flags(model: object, kind: Kind) -> list[Flag]:
    """Every flag a freeze plan can change, outermost first (Keras sets children from parents)."""
    if kind.freezing is Freezing.PER_PARAMETER:
        return [(p, "requires_grad", p.requires_grad) for p in model.parameters()]
    return [(layer, "trainable", layer.trainable) for layer in model._flatten_layers()]


def restore_flags(flags: list[Flag]) -> None:
    """Only the flags that changed: a lazy module's placeholder refuses requires_grad_()."""
    for obj, attribute, value in flags:
        if getattr(obj, attribute) == value:
            continue
        if attribute == "requires_grad":
            obj.requires_grad_(value)
        else:
            setattr(obj, attribute, value)
