"""The layer walk both Keras generations share; they differ only in attribute names.

Roles, decided for every variable the same way in both:

* in the root model's ``trainable_weights`` -> ``trainable`` (the framework has applied its
  own rule: per variable in Keras 3, per parent in tf.keras);
* created trainable by its layer, yet not trained -> ``frozen``;
* created non-trainable (BatchNorm moving statistics, counters) -> ``state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paramscope.core.report import Node, Role
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path


@dataclass(frozen=True)
class KerasAccessors:
    """How one Keras generation exposes a layer's own variables and sublayers."""

    created_trainable: Callable[[object], list]  # the variables a layer created trainable
    created_non_trainable: Callable[[object], list]
    children: Callable[[object], list]
    name: Callable[[object], str]  # a variable's short name (`kernel`)
    shape: Callable[[object], list[int]]


def own_variables(layer, accessors: KerasAccessors) -> list:
    seen, own = set(), []
    for variable in [*accessors.created_trainable(layer), *accessors.created_non_trainable(layer)]:
        if id(variable) not in seen:
            seen.add(id(variable))
            own.append(variable)
    return own


def keras_tree(model, builder: TreeBuilder, accessors: KerasAccessors) -> Node:
    """The Node tree of a Keras model, every variable given its role."""
    trainable_ids = {id(v) for v in model.trainable_weights}
    created_trainable = {
        id(v) for layer in model._flatten_layers() for v in accessors.created_trainable(layer)
    }

    def role_of(variable) -> Role:
        if id(variable) in trainable_ids:
            return Role.TRAINABLE
        if id(variable) in created_trainable:
            return Role.FROZEN
        return Role.STATE

    def visit(layer, path: str, name: str) -> Node:
        node = Node(path=path, name=name, type=type(layer).__name__, trainable=layer.trainable)
        tensor_names = UniqueNames()
        for variable in own_variables(layer, accessors):
            node.tensors.append(
                builder.tensor(
                    variable,
                    path,
                    tensor_names(accessors.name(variable)),
                    accessors.shape(variable),
                    variable.dtype,
                    role_of(variable),
                )
            )
        child_names = UniqueNames()
        for child in accessors.children(layer):
            child_name = child_names(child.name)
            node.children.append(visit(child, join_path(path, child_name), child_name))
        return node

    return visit(model, "", model.name)
