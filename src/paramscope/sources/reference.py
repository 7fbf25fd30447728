"""Model references: ``package.module:factory`` or ``path/to/file.py:factory``.

This runs the user's own code (their module and factory), as ``python -c`` would; it is how a
live model reaches the CLI. It is never used on model *files*, which paramscope only reads.

A factory returns a model, or a dict with ``model`` and optionally ``optimizer``,
``example_inputs`` and ``loss``, which later operations (audit, memory) use.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.errors import InputError
from paramscope.sources.live import live_kind

TARGET_KEYS = ("model", "optimizer", "example_inputs", "loss")


@dataclass
class Target:
    """A live model and the training pieces its factory provided."""

    model: object
    kind: Kind  # KERAS, TF_KERAS or TORCH: a live model
    label: str
    optimizer: object | None = None
    example_inputs: object | None = None
    loss: object | None = None


def parse_factory_args(pairs: list[str] | tuple[str, ...]) -> dict[str, object]:
    """`["weights=None", "classes=10", "name=base"]` -> keyword arguments.

    Values are Python literals where they parse as one (None, False, 3, (224, 224, 3)),
    otherwise plain strings, so `--arg name=base` needs no quotes.
    """
    kwargs: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InputError(f"--arg {pair!r}: expected key=value with a Python name as key")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        kwargs[key.strip()] = value
    return kwargs


def looks_like_reference(text: str) -> bool:
    """Whether MODEL names Python code (`module:factory`) rather than a file."""
    module, sep, attr = text.rpartition(":")
    return bool(sep and module and attr and not Path(text).exists())


def _import(module_ref: str):
    if module_ref.endswith(".py") or "/" in module_ref:
        path = Path(module_ref)
        if not path.is_file():
            raise InputError(f"{module_ref}: no such Python file")
        name = f"_paramscope_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise InputError(f"{module_ref}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))  # its sibling imports work, as in `python file.py`
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise InputError(f"{module_ref}: importing it raised {type(exc).__name__}: {exc}") from exc
        return module
    if os.getcwd() not in sys.path:  # `pkg.mod:factory` from the project root, as `python -m` finds it
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_ref)
    except ModuleNotFoundError as exc:
        raise InputError(f"{module_ref}: cannot import module ({exc})") from exc
    except Exception as exc:
        raise InputError(f"{module_ref}: importing it raised {type(exc).__name__}: {exc}") from exc


def _attribute(module, module_ref: str, attr_path: str):
    obj = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"{module_ref}: has no attribute {attr_path!r}") from None
    return obj


def resolve(reference: str, kwargs: dict[str, object] | None = None) -> Target:
    """Import the reference, call the factory with ``kwargs`` and check it made a model."""
    kwargs = kwargs or {}
    module_ref, _, attr_path = reference.rpartition(":")
    obj = _attribute(_import(module_ref), module_ref, attr_path)
    if live_kind(obj) is None and callable(obj):
        try:
            obj = obj(**kwargs)
        except Exception as exc:
            raise InputError(f"{reference}: the factory raised {type(exc).__name__}: {exc}") from exc
    elif kwargs:
        raise InputError(f"{reference}: is not a factory, so --arg cannot be passed to it")
    return as_target(obj, reference)


def as_target(obj: object, label: str) -> Target:
    """A model, or a factory's dict holding one, as a :class:`Target`."""
    parts: dict[str, object] = {}
    if isinstance(obj, dict):
        unknown = sorted(set(obj) - set(TARGET_KEYS))
        if "model" not in obj or unknown:
            raise InputError(
                f"{label}: a factory's dict needs the key 'model' and may hold "
                f"{', '.join(TARGET_KEYS[1:])}; got {sorted(obj)}"
            )
        parts = {key: obj[key] for key in TARGET_KEYS[1:] if key in obj}
        obj = obj["model"]
    kind = live_kind(obj)
    if kind is None:
        raise InputError(
            f"{label}: got a {type(obj).__module__}.{type(obj).__qualname__}, "
            "which is not a Keras or PyTorch model"
        )
    return Target(model=obj, kind=kind, label=label, **parts)
