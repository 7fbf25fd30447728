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
    key: Callable[[object], str]  # its full name as the framework spells it (see Tensor.key)
    shape: Callable[[object], list[int]]
    build_config: Callable[[object], dict | None]  # the input shapes recorded at build()


def layer_config_loader(layer, accessors: KerasAccessors):
    """A loader of (config, build shapes) for formulas; layers without a config give (None, None)."""

    def load() -> tuple[dict | None, dict | None]:
        try:
            return layer.get_config(), accessors.build_config(layer) or {}
        except Exception:  # custom layers may not implement get_config(); no formula then
            return None, None

    return load


def changed_since_compile(model, paths: dict[int, str]) -> list[str] | None:
    """Layers whose `trainable` flag differs from the one captured at compile().

    Both generations keep ``model._compiled_trainable_state`` (layer -> flag). tf.keras's fit()
    restores those flags for training; Keras 3 warns that the compiled optimizer and loss may
    not track the right variables. Either way the cure is compile() again.
    """
    state = getattr(model, "_compiled_trainable_state", None)
    if not getattr(model, "compiled", getattr(model, "_is_compiled", False)) or state is None:
        return None
    changed = []
    for layer in model._flatten_layers():
        if layer in state and state[layer] != layer.trainable:
            changed.append(paths.get(id(layer), layer.name) or layer.name)
    return changed


def own_variables(layer, accessors: KerasAccessors) -> list:
    seen, own = set(), []
    for variable in [*accessors.created_trainable(layer), *accessors.created_non_trainable(layer)]:
        if id(variable) not in seen:
            seen.add(id(variable))
            own.append(variable)
    return own


def keras_tree(model, builder: TreeBuilder, accessors: KerasAccessors) -> tuple[Node, dict[int, str]]:
    """The Node tree of a Keras model, every variable given its role, and each layer's path."""
    paths: dict[int, str] = {}
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
        node = Node(
            path=path,
            name=name,
            type=type(layer).__name__,
            trainable=layer.trainable,
            config_loader=layer_config_loader(layer, accessors),
            origin=layer,
        )
        paths.setdefault(id(layer), path)
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
                    key=accessors.key(variable),
                )
            )
        child_names = UniqueNames()
        for child in accessors.children(layer):
            child_name = child_names(child.name)
            node.children.append(visit(child, join_path(path, child_name), child_name))
        return node

    return visit(model, "", model.name), paths
