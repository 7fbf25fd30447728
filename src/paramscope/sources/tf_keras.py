"""Live tf.keras (Keras 2, the ``tf-keras`` package) models.

tf.keras decides trainability per *parent*: ``layer.trainable_weights`` is empty as soon as
the layer or any ancestor is frozen, whatever the children's own flags say. So a sublayer
re-enabled under a frozen parent stays frozen here, where Keras 3 would train it; reading
roles from the root's ``trainable_weights`` (keras_tree.py) applies exactly that rule.

Legacy (v1 graph-mode) tf.keras keeps the trainable list it captured at ``compile()``
(``_collected_trainable_weights``), and ``model.summary()`` prints that stale list. We record
it so the Keras lines we print match the framework's, and later checks can say so.
"""

from __future__ import annotations

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Source
from paramscope.core.tree import TreeBuilder
from paramscope.sources.common import unbuilt_warning
from paramscope.sources.keras_tree import KerasAccessors, changed_since_compile, keras_tree


def _short_name(weight) -> str:
    """`dense/kernel:0` -> `kernel`."""
    return weight.name.rsplit("/", 1)[-1].split(":", 1)[0]


ACCESSORS = KerasAccessors(
    created_trainable=lambda layer: layer._trainable_weights,
    created_non_trainable=lambda layer: layer._non_trainable_weights,
    children=lambda layer: list(layer._flatten_layers(include_self=False, recursive=False)),
    name=_short_name,
    key=lambda weight: weight.name,
    shape=lambda weight: weight.shape.as_list(),
    build_config=lambda layer: layer.get_build_config(),
)


def inspect_tf_keras(model) -> Report:
    """Report of a live tf.keras layer or model, untouched."""
    import tf_keras

    builder = TreeBuilder()
    root, paths = keras_tree(model, builder, ACCESSORS)
    report = Report(
        source=Source(kind=Kind.TF_KERAS, framework_version=tf_keras.__version__, backend="tensorflow"),
        root=root,
        warnings=unbuilt_warning([layer.name for layer in model._flatten_layers() if not layer.built]),
        changed_since_compile=changed_since_compile(model, paths),
        origins=builder.origins(),
    )
    collected = getattr(model, "_collected_trainable_weights", None)
    if collected is not None:
        report.compiled_trainable = [builder.path_of(w) or _short_name(w) for w in collected]
    return report
