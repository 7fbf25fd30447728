"""Live Keras 3 models, on any backend (torch, jax, tensorflow).

Roles follow Keras 3's own semantics, decided per variable:

* a variable listed in the root model's ``trainable_weights`` is ``trainable``;
* a variable the layer created trainable (``layer._trainable_variables``) that training will
  not update is ``frozen``: its layer, or an ancestor, or the variable itself was switched off;
* a variable created non-trainable (BatchNorm moving statistics, Normalization mean and
  variance, counters) is ``state``.

We walk ``layer._layers`` and each layer's own variable lists because that is exactly what
``Layer.weights`` walks: seed-generator state and metric variables are not weights, and
re-using Keras's traversal is what makes our totals equal Keras's own.
"""

from __future__ import annotations

from paramscope.core.report import Node, Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.sources.common import unbuilt_warning


def _own_variables(layer) -> list:
    seen, own = set(), []
    for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
        if id(variable) not in seen:
            seen.add(id(variable))
            own.append(variable)
    return own


def _children(layer, keras) -> list:
    """Sublayers in model order; a Sequential's InputLayer is left out, as Keras's own list does."""
    if isinstance(layer, keras.Sequential):
        return layer.layers
    return layer._layers


def _variable_name(variable) -> str:
    return variable.name.rsplit("/", 1)[-1]


def inspect_keras(model) -> Report:
    """Report of a live Keras 3 layer or model, untouched."""
    import keras

    builder = TreeBuilder()
    trainable_ids = {id(v) for v in model.trainable_weights}
    created_trainable = {id(v) for layer in model._flatten_layers() for v in layer._trainable_variables}

    def role_of(variable) -> Role:
        if id(variable) in trainable_ids:
            return Role.TRAINABLE
        if id(variable) in created_trainable:
            return Role.FROZEN
        return Role.STATE

    def visit(layer, path: str, name: str) -> Node:
        node = Node(path=path, name=name, type=type(layer).__name__, trainable=layer.trainable)
        tensor_names = UniqueNames()
        for variable in _own_variables(layer):
            node.tensors.append(
                builder.tensor(
                    variable,
                    path,
                    tensor_names(_variable_name(variable)),
                    variable.shape,
                    variable.dtype,
                    role_of(variable),
                )
            )
        child_names = UniqueNames()
        for child in _children(layer, keras):
            child_name = child_names(child.name)
            node.children.append(visit(child, join_path(path, child_name), child_name))
        return node

    root = visit(model, "", model.name)
    return Report(
        source=Source(kind="keras", framework_version=keras.__version__, backend=keras.backend.backend()),
        root=root,
        optimizer=_optimizer_group(model, builder),
        metrics=_metrics_group(model, builder),
        warnings=unbuilt_warning([layer.name for layer in model._flatten_layers() if not layer.built]),
    )


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
    tensors = [builder.tensor(v, name, names(v.path), v.shape, v.dtype, Role.STATE) for v in variables]
    return TensorGroup(name=name, tensors=tensors)
