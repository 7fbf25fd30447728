"""Keras HDF5 files: legacy ``.h5`` (``model.save("x.h5")``, ``save_weights``) from Keras 2 or 3,
and Keras 3's own ``.weights.h5``.

The structure is walked in the sandbox (hdf5_structure.py). A Keras 3 ``.weights.h5`` has the
per-layer layout of a ``.keras`` archive but no config: every variable is numbered and its
role unknown. A legacy file lists its layers and their weights by name (keras_store.py);
``model_config`` gives each layer's class and saved ``trainable`` flag. Keras 3 decides roles
per layer, Keras 2 per parent, without restoring a nested model's own flag (a base frozen
with ``base.trainable = False`` loads trainable — reported with a warning); weights named as
statistics are state (keras_store_report.py). A weights-only file stores no flags: roles are
unknown except those statistics.
"""

from __future__ import annotations

from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.boundary import name_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_structure import Attributes, Hdf5Structure, read_structure
from paramscope.sources.keras_store import is_keras3_layout, legacy_store
from paramscope.sources.keras_store_config import LayerConfig, model_config
from paramscope.sources.keras_store_report import keras_tree, weights_only_report


def _text(attributes: Attributes, key: str) -> str | None:
    value = attributes.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"attribute {key} should be text, not a list")
    return value


def _legacy_config(structure: Hdf5Structure, budget: ReadBudget) -> LayerConfig | None:
    text = _text(structure.root, "model_config")
    if not text:
        return None
    return model_config(text.encode("utf-8", "surrogatepass"), budget, "model_config")


def _version(structure: Hdf5Structure, budget: ReadBudget) -> str:
    weights = structure.groups.get("model_weights", {})
    version = _text(structure.root, "keras_version") or _text(weights, "keras_version") or ""
    return name_of(version, budget, "keras_version")


def read_h5(path: Path, budget: ReadBudget) -> Report:
    structure = read_structure(path, budget)
    if "layer_names" not in structure.root and is_keras3_layout(structure):  # Keras 3 save_weights()
        return weights_only_report(structure, budget, str(path), path.name)
    store = legacy_store(structure, budget)
    version = _version(structure, budget)
    config = _legacy_config(structure, budget)
    tree = keras_tree(store, config, path.name, per_parent=version.startswith("2"), budget=budget)
    warnings = tree.storage_warnings()
    if config is None:
        warnings.append(
            "a weights-only file stores no trainability: roles are unknown except statistics (state)."
        )
    if tree.lost:
        warnings.append(
            "saved frozen, loads trainable: tf.keras restores the trainable flags of layers but not of nested "
            f"models ({', '.join(tree.lost[:3])}); roles here are as loading gives them. Set the flag again after "
            "load_model(), or save in the .keras format."
        )
    return Report(
        source=Source(kind=Kind.H5, framework_version=version or None, path=str(path)),
        root=tree.root,
        optimizer=tree.optimizer,
        warnings=warnings,
    )
