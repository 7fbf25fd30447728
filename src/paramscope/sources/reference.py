"""Model references: ``package.module:factory`` or ``path/to/file.py:factory``.

This runs the user's own code (their module and factory), as ``python -c`` would; it is how a
live model reaches the CLI. It is never used on model *files*, which paramscope only reads.

A factory returns a model, or a dict with ``model`` and optionally ``optimizer``, ``inputs``
and ``loss``, which later operations (audit, memory) use: the same words as the keywords of
``paramscope.audit``. The key ``example_inputs`` (before 0.2) is still read, with a warning.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.errors import InputError
from paramscope.sources.live import live_kind

TARGET_KEYS = ("model", "optimizer", "inputs", "loss")
DEPRECATED_KEYS = {"example_inputs": "inputs"}


@dataclass
class Target:
    """A live model and the training pieces its factory provided."""

    model: object
    kind: Kind  # KERAS, TF_KERAS or TORCH: a live model
    label: str
    optimizer: object | None = None
    inputs: object | None = None
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


def factories(module) -> list[str]:
    """What a ``module:NAME`` reference can name in ``module``, in the module's order: the public
    functions and classes it defines (not those it imports) and the models it holds; for a
    package that only re-exports (``keras.applications``), its public callables."""
    public = {name: value for name, value in vars(module).items() if not name.startswith("_")}
    own = [
        name
        for name, value in public.items()
        if (callable(value) and getattr(value, "__module__", None) == module.__name__)
        or live_kind(value) is not None
    ]
    return own or [name for name, value in public.items() if callable(value)]


def _listing(names: list[str]) -> str:
    return f"it defines {', '.join(names)}" if names else "it defines no public function or model"


def _attribute(module, module_ref: str, attr_path: str):
    obj = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = factories(obj) if obj is module else [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else _listing(names)
            raise InputError(f"{module_ref}: has no attribute {attr_path!r} ({hint})") from None
    return obj


def module_without_factory(text: str) -> InputError | None:
    """The error for a MODEL that names a Python module but no factory in it (``models.py``,
    ``pkg.models``): which factories it defines, to pick one. None if ``text`` is no module."""
    if text.endswith(".py") and Path(text).is_file():
        module = _import(text)
    elif all(part.isidentifier() for part in text.split(".")) and not Path(text).exists():
        try:
            module = _import(text)
        except InputError:
            return None
    else:
        return None
    names = factories(module)
    example = f", e.g. {text}:{names[0]}" if names else ""
    return InputError(
        f"{text}: a Python module; name the factory or model in it as {text}:NAME{example} ({_listing(names)})"
    )


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


def _renamed_keys(parts: dict, label: str) -> dict:
    """The factory's dict with deprecated keys under their current names (warned once each)."""
    renamed = dict(parts)
    for old, new in DEPRECATED_KEYS.items():
        if old in renamed and new not in renamed:
            warnings.warn(
                f"{label}: the factory key {old!r} is now {new!r}, the keyword of paramscope.audit",
                DeprecationWarning,
                stacklevel=4,
            )
            renamed[new] = renamed.pop(old)
    return renamed


def as_target(obj: object, label: str) -> Target:
    """A model, or a factory's dict holding one, as a :class:`Target`."""
    parts: dict[str, object] = {}
    if isinstance(obj, dict):
        obj = _renamed_keys(obj, label)
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
