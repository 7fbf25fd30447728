"""Live tf.keras (Keras 2, the ``tf-keras`` package) models.

tf.keras decides trainability per *parent*: ``layer.trainable_weights`` is empty as soon as
the layer or any ancestor is frozen, whatever the children's own flags say. So a sublayer
re-enabled under a frozen parent stays frozen here, where Keras 3 would train it. Roles are
read from the root model's ``trainable_weights``, which applies exactly that rule; the
weights a layer created trainable but training skips are ``frozen``; weights created
non-trainable (BatchNorm moving statistics) are ``state``.

After ``compile()``, tf.keras keeps the trainable list it captured then
(``_collected_trainable_weights``); ``model.summary()`` and ``fit()`` use that stale list.
We record it so the Keras lines we print match the framework's, and later checks can say so.
"""

from __future__ import annotations

from paramscope.core.report import Node, Report, Role, Source
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.sources.common import unbuilt_warning


def _own_weights(layer) -> list:
    seen, own = set(), []
    for weight in [*layer._trainable_weights, *layer._non_trainable_weights]:
        if id(weight) not in seen:
            seen.add(id(weight))
            own.append(weight)
    return own


def _weight_name(weight) -> str:
    """`dense/kernel:0` -> `kernel`."""
    return weight.name.rsplit("/", 1)[-1].split(":", 1)[0]


def _children(layer) -> list:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def inspect_tf_keras(model) -> Report:
    """Report of a live tf.keras layer or model, untouched."""
    import tf_keras

    builder = TreeBuilder()
    trainable_ids = {id(w) for w in model.trainable_weights}
    created_trainable = {id(w) for layer in model._flatten_layers() for w in layer._trainable_weights}

    def role_of(weight) -> Role:
        if id(weight) in trainable_ids:
            return Role.TRAINABLE
        if id(weight) in created_trainable:
            return Role.FROZEN
        return Role.STATE

    def visit(layer, path: str, name: str) -> Node:
        node = Node(path=path, name=name, type=type(layer).__name__, trainable=layer.trainable)
        tensor_names = UniqueNames()
        for weight in _own_weights(layer):
            node.tensors.append(
                builder.tensor(
                    weight,
                    path,
                    tensor_names(_weight_name(weight)),
                    weight.shape.as_list(),
                    weight.dtype,
                    role_of(weight),
                )
            )
        child_names = UniqueNames()
        for child in _children(layer):
            child_name = child_names(child.name)
            node.children.append(visit(child, join_path(path, child_name), child_name))
        return node

    root = visit(model, "", model.name)
    collected = getattr(model, "_collected_trainable_weights", None)
    report = Report(
        source=Source(kind="tf_keras", framework_version=tf_keras.__version__, backend="tensorflow"),
        root=root,
        warnings=unbuilt_warning([layer.name for layer in model._flatten_layers() if not layer.built]),
    )
    if collected is not None:
        report.compiled_trainable = [builder.path_of(w) or _weight_name(w) for w in collected]
    return report
