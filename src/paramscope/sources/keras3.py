"""Live Keras 3 models, on any backend (torch, jax, tensorflow).

Keras 3 decides trainability per variable: a sublayer re-enabled under a frozen parent
trains. We walk ``layer._layers`` and each layer's own variable lists because that is exactly
what ``Layer.weights`` walks: seed-generator state and metric variables are not weights, and
re-using Keras's traversal is what makes our totals equal Keras's own. Roles: keras_tree.py.

Two kinds of layer hold tensors Keras's lists misdescribe:

* a quantized layer (``layer.quantize("int8" | "int4" | "float8")``): its int8/int4 weight is
  created non-trainable, yet it is a weight that never trains (frozen), not a statistic; an
  int4 weight packs two values per byte, so its parameters are its unquantized shape's; the
  scales, zero points and float8 amax histories are state — Keras creates float8's trainable
  and overwrites them with their "gradient", the optimizer never descends along one;
* a ``TorchModuleWrapper``: its module's parameters are Keras variables, named here by their
  ``state_dict()`` keys as the saved file names them, and a parameter with
  ``requires_grad=False`` is frozen; its buffers are no Keras variables, yet Keras saves them
  with the module's ``state_dict()``: they are state.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from paramscope.core.kinds import Kind
from paramscope.core.report import Node, Report, Role, Source, Tensor, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames
from paramscope.sources.common import unbuilt_warning
from paramscope.sources.keras_store_config import QUANTIZATION_MODES, quantized_marker
from paramscope.sources.keras_tree import KerasAccessors, changed_since_compile, keras_tree
from paramscope.specs.lookup import spec_for


def _wrapper_class(keras) -> type | None:
    return getattr(keras.layers, "TorchModuleWrapper", None)


def _torch_parameter_names(model, keras) -> dict[int, str]:
    """id(variable) -> the ``state_dict()`` key of the torch parameter it holds, for every
    TorchModuleWrapper (on the torch backend a variable's value is the module's parameter)."""
    wrapper = _wrapper_class(keras)
    if wrapper is None:
        return {}
    names = {}
    for layer in model._flatten_layers():
        if isinstance(layer, wrapper):
            keys = {id(parameter): key for key, parameter in layer.module.named_parameters()}
            for variable in layer.weights:
                key = keys.get(id(getattr(variable, "value", None)))
                if key is not None:
                    names[id(variable)] = key
    return names


def _accessors(keras, torch_names: dict[int, str]) -> KerasAccessors:
    wrapper = _wrapper_class(keras)

    def children(layer) -> list:
        # A Sequential's InputLayer is left out, as Keras's own `layers` list does.
        return layer.layers if isinstance(layer, keras.Sequential) else layer._layers

    def created_trainable(layer) -> list:
        # A wrapped module's variables are all torch parameters: requires_grad=False is frozen.
        if wrapper is not None and isinstance(layer, wrapper):
            return [*layer._trainable_variables, *layer._non_trainable_variables]
        return layer._trainable_variables

    return KerasAccessors(
        created_trainable=created_trainable,
        created_non_trainable=lambda layer: layer._non_trainable_variables,
        children=children,
        name=lambda variable: torch_names.get(id(variable)) or variable.name.rsplit("/", 1)[-1],
        key=lambda variable: variable.path,
        shape=lambda variable: variable.shape,
        build_config=lambda layer: layer.get_build_config(),
    )


def inspect_keras(model) -> Report:
    """Report of a live Keras 3 layer or model, untouched."""
    import keras

    builder = TreeBuilder()
    root, paths = keras_tree(model, builder, _accessors(keras, _torch_parameter_names(model, keras)))
    wrapper = _wrapper_class(keras)
    for node in root.walk():
        node.output_shape = _output_shape(node.origin)
        node.config_loader = _without_tensorflow_probe(node.config_loader)
        if wrapper is not None and isinstance(node.origin, wrapper):
            _add_torch_buffers(node, node.origin.module, builder)
        elif getattr(node.origin, "quantization_mode", None) in QUANTIZATION_MODES:
            _mark_quantized(node, node.origin)
    return Report(
        source=Source(kind=Kind.KERAS, framework_version=keras.__version__, backend=keras.backend.backend()),
        root=root,
        optimizer=_optimizer_group(model, builder),
        metrics=_metrics_group(model, builder),
        warnings=unbuilt_warning([layer.name for layer in model._flatten_layers() if not layer.built]),
        changed_since_compile=changed_since_compile(model, paths),
        origins=builder.origins(),
    )


@contextmanager
def tensorflow_unprobed() -> Iterator[None]:
    """Keras without the TensorFlow import its questions would cause, for the ``with`` block.

    Keras asks ``tf.available`` to spot TensorFlow objects (in ``get_config()``, in optimizer
    serialization, in its data adapters), and that question imports TensorFlow — seconds, and
    its log lines on stderr — on the torch and jax backends too. While TensorFlow is not
    imported nothing can hold one of its objects, so the answer is no; it is given inside the
    block only, and Keras asks afresh after.
    """
    from keras.src.utils import module_utils

    probe = module_utils.tensorflow
    if probe._available is not None or "tensorflow" in sys.modules:
        yield
        return
    probe._available = False
    try:
        yield
    finally:
        probe._available = None


def _without_tensorflow_probe(load):
    """A layer's config loader that asks Keras for the config under ``tensorflow_unprobed``."""
    if load is None:
        return None

    def loaded():
        with tensorflow_unprobed():
            return load()

    return loaded


def _output_shape(layer) -> tuple[int | None, ...] | None:
    """The symbolic output shape a functional graph recorded for ``layer``: no forward pass.
    None for a layer called more than once (its output is ambiguous), never called, or with
    several outputs."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):  # no inbound node, or several
        return None
    return tuple(shape) if isinstance(shape, tuple) else None


def _add_torch_buffers(node: Node, module, builder: TreeBuilder) -> None:
    """A wrapped module's buffers, as torch lists them in ``named_buffers()``, marked saved
    (in ``state_dict()``) or not."""
    names = UniqueNames()
    for tensor in node.tensors:
        names(tensor.name)
    for prefix, owner in module.named_modules():
        for name, buffer in owner._buffers.items():
            if buffer is not None:
                key = f"{prefix}.{name}" if prefix else name
                persistent = name not in owner._non_persistent_buffers_set
                node.tensors.append(
                    builder.tensor(
                        buffer,
                        node.path,
                        names(key),
                        buffer.shape,
                        buffer.dtype,
                        Role.STATE,
                        persistent,
                        key=key,  # no Keras variable: its state_dict() key, as the saved file has it
                    )
                )


def _logical_shapes(layer) -> dict[str, tuple[int, ...]]:
    """The shapes of a quantized layer's weights before quantization, from its spec."""
    try:
        spec = spec_for("keras", type(layer).__name__, layer.get_config(), layer.get_build_config())
    except Exception:  # a subclass whose config the spec cannot read: its weights count as stored
        return {}
    return {} if spec is None else {variable.name: variable.shape for variable in spec.variables}


def _mark_quantized(node: Node, layer) -> None:
    """Each variable of a quantized layer marked with what it is (see the module docstring)."""
    mode = layer.quantization_mode
    logical = _logical_shapes(layer) if mode == "int4" else {}
    node.tensors = [_quantized_tensor(tensor, mode, logical) for tensor in node.tensors]


def _quantized_tensor(tensor: Tensor, mode: str, logical: dict[str, tuple[int, ...]]) -> Tensor:
    marker = quantized_marker(tensor.name, mode)
    if marker is None:
        return tensor
    if marker != mode:
        return replace(tensor, role=Role.STATE, quantized=marker)
    if mode == "float8":  # a float32 kernel that trains; float8 is how the layer computes with it
        return replace(tensor, quantized=marker)
    params = math.prod(logical[tensor.name]) if tensor.name in logical else tensor.params
    role = Role.FROZEN if tensor.role is Role.STATE else tensor.role
    return replace(tensor, role=role, quantized=marker, params=params)  # bytes: as stored


def _optimizer_group(model, builder: TreeBuilder) -> TensorGroup | None:
    """Optimizer variables, as Keras's summary counts them: only once the optimizer is built."""
    optimizer = getattr(model, "optimizer", None)
    if not getattr(model, "compiled", False) or optimizer is None or not optimizer.built:
        return None
    return _group("optimizer", optimizer.variables, builder)


def _metrics_group(model, builder: TreeBuilder) -> TensorGroup | None:
    if not getattr(model, "compiled", False):
        return None
    variables = model.metrics_variables
    return _group("metrics", variables, builder) if variables else None


def _group(name: str, variables, builder: TreeBuilder) -> TensorGroup:
    names = UniqueNames()
    tensors = [
        builder.tensor(v, name, names(v.path), v.shape, v.dtype, Role.STATE, key=v.path) for v in variables
    ]
    return TensorGroup(name=name, tensors=tensors)
