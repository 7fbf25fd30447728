"""The Python API; the CLI calls exactly these functions."""

from __future__ import annotations

import os

from paramscope.core.report import Report
from paramscope.errors import InputError
from paramscope.sources.live import inspect_live
from paramscope.sources.reference import Target, as_target, looks_like_reference, resolve


def load(model: object, **factory_args: object) -> Target:
    """Resolve what the user gave (a live model, a factory's dict, or a reference string)."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if looks_like_reference(text):
            return resolve(text, factory_args)
        if os.path.exists(text):
            raise InputError(f"{text}: reading model files is not supported yet")
        raise InputError(f"{text}: no such file, and not a module:factory reference")
    if factory_args:
        raise InputError("factory arguments need a module:factory reference")
    return as_target(model, type(model).__name__)


def inspect(model: object, **factory_args: object) -> Report:
    """Everything paramscope knows about ``model``: tensors, roles, totals, conventions.

    ``model`` is a live Keras 3, tf.keras or PyTorch model, a factory's dict holding one, or a
    ``"package.module:factory"`` / ``"file.py:factory"`` reference (``factory_args`` are passed
    to the factory). The model is not changed in any way.
    """
    target = load(model, **factory_args)
    return inspect_live(target.model, target.kind)


def explain(model: object, layer: str | None = None, **factory_args: object):
    """Why each count is what it is: every weighted layer's formula, checked against its tensors,
    and the user's three numbers (tensors, parameters, layers) answered for this model.

    ``layer`` limits the layer formulas to a node path or glob; the answer covers the whole model.
    """
    from paramscope.ops.explain import explain_report

    return explain_report(inspect(model, **factory_args), layer)
