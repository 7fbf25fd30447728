""".keras files written by Keras, read without Keras: the same tensors, roles and summary as
loading them in Keras and inspecting the live model."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import paramscope
from paramscope.core.conventions import keras_lines
from paramscope.ops.explain import explain_layers
from tests.truth import keras_footer

# The torch run reads each kind of block from a file once: the inverted residuals,
# squeeze-excitation and depthwise 7x7 + LayerScale of the first three. A file's format does not
# depend on the backend that wrote it, so a lean child run (tests/backend_suites.py) reads one
# model's; the larger families only in `make test-full`.
MODELS = [
    "MobileNetV2",
    *(pytest.param(name, marks=pytest.mark.sweep) for name in ("EfficientNetB0", "ConvNeXtTiny")),
    *(pytest.param(name, marks=pytest.mark.full) for name in ("ResNet50", "InceptionV3", "DenseNet121")),
]


def transfer(name: str):
    base = getattr(keras.applications, name)(weights=None, include_top=False, input_shape=(96, 96, 3))
    inputs = keras.Input((96, 96, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    return keras.Model(inputs, keras.layers.Dense(7, name="head")(pooled), name="transfer"), base


UNNAMED = re.compile(r"/(variable(_\d+)?|var\d+)$")  # weights created without a name


def roles(report) -> dict[str, str]:
    """Tensor path -> role; a weight Keras created unnamed (numbered at load time) by its layer."""
    return {UNNAMED.sub("/<unnamed>", t.path): t.role.value for t in report.tensors()}


@pytest.mark.parametrize("unfreeze_last", [False, True], ids=["frozen-base", "top-unfrozen"])
@pytest.mark.parametrize("name", MODELS)
def test_keras_file_matches_loaded_model(name: str, unfreeze_last: bool, tmp_path) -> None:
    model, base = transfer(name)
    base.trainable = False
    if unfreeze_last:
        [layer for layer in base.layers if layer.weights][-1].trainable = True
    path = tmp_path / "model.keras"
    model.save(path)
    from_file = paramscope.inspect(path)
    loaded = keras.saving.load_model(path)
    live = paramscope.inspect(loaded)
    assert from_file.source.kind == "keras_file"
    assert roles(from_file) == roles(live)
    assert from_file.totals["trainable"].tensors == len(loaded.trainable_weights)
    assert [line.rstrip() for line in keras_lines(from_file)] == keras_footer(loaded)
    assert from_file.warnings == []
    explained = explain_layers(from_file)
    assert [e.problem for e in explained if e.problem] == []
    assert not any(e.formula.generic for e in explained)


@pytest.mark.parametrize("unfreeze_last", [False, True], ids=["frozen-base", "top-unfrozen"])
@pytest.mark.parametrize(  # Keras cannot reload ConvNeXt from .h5
    "name", ["MobileNetV2", pytest.param("EfficientNetB0", marks=pytest.mark.sweep)]
)
def test_legacy_h5_matches_loaded_model(name: str, unfreeze_last: bool, tmp_path) -> None:
    model, base = transfer(name)
    base.trainable = False
    if unfreeze_last:
        [layer for layer in base.layers if layer.weights][-1].trainable = True
    path = tmp_path / "model.h5"
    model.save(path)
    from_file = paramscope.inspect(path)
    loaded = keras.saving.load_model(path)
    assert from_file.source.kind == "h5"
    assert roles(from_file) == roles(paramscope.inspect(loaded))
    assert [line.rstrip() for line in keras_lines(from_file)] == keras_footer(loaded)


def test_weights_only_h5_has_unknown_roles(tmp_path) -> None:
    model, _ = transfer("MobileNetV2")
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    report = paramscope.inspect(path)
    assert report.totals["all"].params == model.count_params()
    assert report.totals["trainable"].tensors == 0 and report.totals["unknown"].tensors > 0
    assert "stores no trainability" in report.warnings[0]


def test_compiled_keras_file_reports_optimizer(tmp_path) -> None:
    inputs = keras.Input((5, 8))
    x = keras.layers.Bidirectional(keras.layers.LSTM(4), name="bi")(inputs)
    x = keras.layers.Reshape((1, 8))(x)
    x = keras.layers.MultiHeadAttention(2, 3, name="mha")(x, x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    model.compile("adam", "mse")
    model.fit(np.zeros((2, 5, 8)), np.zeros((2, 1, 2)), verbose=0)
    path = tmp_path / "rnn.keras"
    model.save(path)
    from_file, loaded = paramscope.inspect(path), keras.saving.load_model(path)
    assert roles(from_file) == roles(paramscope.inspect(loaded))
    assert from_file.optimizer is not None
    assert from_file.optimizer.totals.tensors == len(loaded.optimizer.variables)
    assert [line.rstrip() for line in keras_lines(from_file)] == keras_footer(loaded)


def test_explain_legacy_h5_says_why_it_is_generic(tmp_path) -> None:
    model, _ = transfer("MobileNetV2")
    model.save(tmp_path / "model.h5")
    explained = explain_layers(paramscope.inspect(tmp_path / "model.h5"))
    assert explained and all(e.formula.generic for e in explained)
    assert "records no input shapes" in explained[0].text
    assert [e.problem for e in explained if e.problem] == []


def _compiled_transfer():
    model, base = transfer("MobileNetV2")
    base.trainable = False
    model.compile("adam", "mse")
    model.fit(np.zeros((2, 96, 96, 3)), np.zeros((2, 7)), verbose=0)
    return model


def test_keras_file_with_npz_weights_matches_the_h5_one(tmp_path) -> None:
    """Keras pickles its backend Variables into npz weights (and then cannot load them with
    allow_pickle=False); the reader must give exactly what the same model saved as h5 gives."""
    from keras.src.saving import saving_lib

    from paramscope.render import document

    model = _compiled_transfer()
    saving_lib.save_model(model, tmp_path / "npz.keras", weights_format="npz")
    model.save(tmp_path / "h5.keras")
    from_npz, from_h5 = paramscope.inspect(tmp_path / "npz.keras"), paramscope.inspect(tmp_path / "h5.keras")
    assert roles(from_npz) == roles(from_h5) == roles(paramscope.inspect(model))
    assert from_npz.totals["trainable"].tensors == len(model.trainable_weights) == 2
    assert from_npz.optimizer.totals.tensors == len(model.optimizer.variables)
    npz_dict, h5_dict = document("summary", from_npz), document("summary", from_h5)
    npz_dict.pop("source"), h5_dict.pop("source")
    assert npz_dict == h5_dict


def test_sharded_weights_match_keras(tmp_path) -> None:
    model = _compiled_transfer()
    path = tmp_path / "model.weights.json"
    model.save_weights(path, max_shard_size=0.002)  # GB: MobileNetV2's weights span several shards
    shards = sorted(tmp_path.glob("model_*.weights.h5"))
    assert len(shards) > 1
    model.save_weights(tmp_path / "single.weights.h5")
    sharded, single = paramscope.inspect(path), paramscope.inspect(tmp_path / "single.weights.h5")
    assert sharded.totals["all"].params == model.count_params()
    assert sharded.optimizer.totals.tensors == len(model.optimizer.variables)
    assert [(t.path, t.shape) for t in sharded.tensors()] == [(t.path, t.shape) for t in single.tensors()]
    assert f"read from {len(shards)} HDF5 shard(s)" in sharded.warnings[-1]
    model.load_weights(path)  # Keras itself accepts the set paramscope read
