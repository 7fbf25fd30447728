"""Live Keras 3 models, on any backend (torch, jax, tensorflow).

Keras 3 decides trainability per variable: a sublayer re-enabled under a frozen parent
trains. We walk ``layer._layers`` and each layer's own variable lists because that is exactly
what ``Layer.weights`` walks: seed-generator state and metric variables are not weights, and
re-using Keras's traversal is what makes our totals equal Keras's own. Roles: keras_tree.py.
"""

from __future__ import annotations

from paramscope.core.report import Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames
from paramscope.sources.common import unbuilt_warning
from paramscope.sources.keras_tree import KerasAccessors, changed_since_compile, keras_tree


def _accessors(keras) -> KerasAccessors:
    def children(layer) -> list:
        # A Sequential's InputLayer is left out, as Keras's own `layers` list does.
        return layer.layers if isinstance(layer, keras.Sequential) else layer._layers

    return KerasAccessors(
        created_trainable=lambda layer: layer._trainable_variables,
        created_non_trainable=lambda layer: layer._non_trainable_variables,
        children=children,
        name=lambda variable: variable.name.rsplit("/", 1)[-1],
        shape=lambda variable: variable.shape,
        build_config=lambda layer: layer.get_build_config(),
    )


def inspect_keras(model) -> Report:
    """Report of a live Keras 3 layer or model, untouched."""
    import keras

    builder = TreeBuilder()
    root, paths = keras_tree(model, builder, _accessors(keras))
    return Report(
        source=Source(kind="keras", framework_version=keras.__version__, backend=keras.backend.backend()),
        root=root,
        optimizer=_optimizer_group(model, builder),
        metrics=_metrics_group(model, builder),
        warnings=unbuilt_warning([layer.name for layer in model._flatten_layers() if not layer.built]),
        changed_since_compile=changed_since_compile(model, paths),
        origins=builder.origins(),
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
