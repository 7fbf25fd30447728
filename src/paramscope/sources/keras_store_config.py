"""A saved Keras model's configuration as typed records, validated once.

``config.json`` and ``metadata.json`` of a ``.keras`` archive and the ``model_config``
attribute of a legacy ``.h5`` are JSON written by Keras — or by anyone. They are parsed within
the budget (``boundary.load_json``: size and value count bounded before parsing) and validated
here into :class:`LayerConfig` records, which the readers behind trust: ``class_name`` and
``name`` are bounded text, ``config`` and ``build_config`` objects, ``trainable`` true or false,
sublayers come from lists of objects, and layers nest at most ``depth`` deep. The raw
``config`` object is kept for the layer specs, which evaluate it under their own guard
(specs/lookup.py). Two of its parts decide what a layer saves, and are read here: the dtype
policy of a quantized layer (:func:`quantization_of`) and the torch module a
``TorchModuleWrapper`` pickles into its config (:func:`torch_module_tensors`, never unpickled).
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from dataclasses import dataclass, field

from paramscope.errors import InputError
from paramscope.sources.archive import open_zip, read_member
from paramscope.sources.boundary import expect, load_json, name_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.pickle_walker import walk
from paramscope.sources.torch_pickled import BUFFER, Held, holdings

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


QUANTIZATION_MODES = frozenset({"int8", "int4", "float8"})
QUANTIZED_WEIGHTS = frozenset({"kernel", "embeddings", "reverse_embeddings"})


@dataclass(frozen=True)
class Quantization:
    """How ``layer.quantize(mode)`` left a layer: its variables follow from the mode."""

    mode: str  # "int8", "int4" or "float8"
    block_size: int = -1  # int4: input rows sharing one scale and zero point; -1: one per channel

    @property
    def grouped(self) -> bool:
        """Sub-channel int4 keeps a zero point and a group index beside each scale."""
        return self.mode == "int4" and self.block_size > 0


def quantization_of(config: dict) -> Quantization | None:
    """The quantization a layer's saved dtype policy records, else None.

    Keras writes the policy as ``{"class_name": "Int4DTypePolicy", "config": {"mode":
    "int4/128", …}}`` (older versions ``{"name": "int8_from_float32"}`` or the bare name).
    GPTQ and AWQ modes are not named here: their layers keep unknown roles.
    """
    policy = config.get("dtype")
    if isinstance(policy, dict):
        inner = policy.get("config")
        policy = (inner.get("mode") or inner.get("name")) if isinstance(inner, dict) else None
    if not isinstance(policy, str):
        return None
    mode, _, block = policy.split("_from_", 1)[0].partition("/")
    if mode not in QUANTIZATION_MODES:
        return None
    digits = block.removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) < 10):
        return Quantization(mode)
    return Quantization(mode, int(block))


def quantized_marker(name: str, mode: str) -> str | None:
    """What ``Tensor.quantized`` says of the variable ``name`` of a layer quantized to ``mode``:
    the mode for the quantized weight itself, what the others are for, None for the rest (a
    bias stays an ordinary weight)."""
    if name in QUANTIZED_WEIGHTS:
        return mode
    if name.endswith("_amax_history"):
        return "amax-history"
    if name.endswith("_scale"):
        return "scale"
    if name.endswith("_zero"):
        return "zero-point"
    if name == "g_idx":
        return "group-index"
    return None


@dataclass(frozen=True)
class TorchTensor:
    """One entry of a wrapped torch module's ``state_dict()``."""

    buffer: bool  # a buffer (BatchNorm running statistics), not a parameter
    requires_grad: bool


def torch_module_tensors(config: dict, budget: ReadBudget, what: str) -> dict[str, TorchTensor] | None:
    """The state_dict entries of a ``TorchModuleWrapper``'s module, which tell its parameters
    from its buffers; None when the config holds no module.

    Keras saves the module's ``state_dict()`` under its names and the module itself in the
    config, ``torch.save``d and base64-encoded (``keras/src/utils/torch_utils.py``); Keras
    unpickles it only with ``safe_mode=False``. We walk its ``data.pkl`` inertly
    (pickle_walker.py, torch_pickled.py): the module's ``_parameters`` and ``_buffers`` name
    every entry.
    """
    text = config.get("module")
    if not isinstance(text, str):
        return None
    try:
        blob = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise InputError(f"{what}: the TorchModuleWrapper's module is not base64 text") from None
    label = f"{what}: the TorchModuleWrapper's module"
    with tempfile.TemporaryFile() as handle:  # open_zip checks the directory before zipfile reads it
        handle.write(blob)
        with open_zip(handle, budget, label) as archive:
            pickles = [
                name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1
            ]
            if len(pickles) != 1:
                raise InputError(f"{label} is not a torch archive (no single */data.pkl)")
            data = read_member(archive, pickles[0], budget, "pickle_bytes")
    entries = {}
    for found in holdings(walk(data, budget=budget), budget):
        if isinstance(found, Held) and found.slot is not None:
            buffer = found.slot == BUFFER
            requires_grad = not buffer and getattr(found.tensor, "requires_grad", False)
            entries[name_of(".".join(found.path), budget, what)] = TorchTensor(buffer, requires_grad)
    return entries
