"""Keras 3 quantized layers (``model.quantize("int8" | "int4" | "float8")``), live and saved:
Keras's own summary footer, quantized weights that never train, their scales as state, and
the logical parameters of the unquantized model.

Keras counts each variable by its stored shape: an int4 kernel packs two values per byte, so
its ``count_params()`` is about half the model's; float8's scales and amax histories are
created trainable, so its summary calls them trainable params.
"""

from __future__ import annotations

import math
import warnings

import keras
import pytest

import paramscope
from paramscope.core.conventions import keras_lines
from paramscope.core.report import Role
from tests.truth import keras_footer

HELPERS = frozenset({"scale", "zero-point", "group-index", "amax-history"})  # Tensor.quantized of the rest
QUANTIZED_WEIGHTS = {"emb/embeddings", "ein/kernel", "dense/kernel"}


def build():
    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(11, 8, name="emb")(inputs)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(6, 5), bias_axes="d", name="ein")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(7, name="dense")(x), name="quantized")


CASES = {  # name -> (mode, config, whether the Dense is frozen)
    "int8": ("int8", None, False),
    "int4-grouped": ("int4", None, False),  # Keras's default: 128 input rows share a scale
    "int4-per-channel": ("int4", "per-channel", False),
    "float8": ("float8", None, False),
    "float8-frozen-dense": ("float8", None, True),
}


# A lean child run (tests/backend_suites.py) quantizes each mode once; a second int4 scale
# layout and a frozen float8 layer are checked on torch only.
SWEPT = {"int4-per-channel", "float8-frozen-dense"}


def params_of(cases) -> list:
    return [pytest.param(case, marks=pytest.mark.sweep if case in SWEPT else ()) for case in cases]


def quantized(case: str):
    """The model quantized as ``case`` says, and its parameter count before quantization."""
    mode, config, freeze_dense = CASES[case]
    model = build()
    unquantized = model.count_params()
    if config == "per-channel":
        config = keras.quantizers.Int4QuantizationConfig(block_size=-1)
    with warnings.catch_warnings():  # layers without a quantized form (Flatten; Embedding in float8)
        warnings.simplefilter("ignore")
        model.quantize(mode, config=config) if config is not None else model.quantize(mode)
    if freeze_dense:
        model.get_layer("dense").trainable = False
    return model, unquantized


def roles(report) -> dict[str, tuple]:
    return {t.path: (t.role, t.quantized, t.params, t.shape) for t in report.tensors()}


@pytest.mark.parametrize("case", params_of(CASES))
def test_live_quantized_model_matches_keras(case: str) -> None:
    model, unquantized = quantized(case)
    mode = CASES[case][0]
    report = paramscope.inspect(model)
    assert [line.rstrip() for line in keras_lines(report)] == keras_footer(model)
    assert report.totals["all"].tensors == len(model.weights)
    assert sum(math.prod(t.shape) for t in report.tensors()) == model.count_params()
    assert sum(t.params for t in report.tensors() if t.quantized not in HELPERS) == unquantized
    keras_trainable = {v.path for v in model.trainable_weights}
    tensors = {t.path: t for t in report.tensors()}
    for path in QUANTIZED_WEIGHTS:
        weight = tensors[path]
        if mode == "float8":  # float32 kernels that train; Embedding has no float8 form
            assert weight.quantized == (None if path == "emb/embeddings" else "float8")
            assert (weight.role is Role.TRAINABLE) == (path in keras_trainable)
        else:
            assert (weight.quantized, weight.role) == (mode, Role.FROZEN) and path not in keras_trainable
    helpers = [t for t in tensors.values() if t.quantized in HELPERS]
    assert helpers and all(t.role is Role.STATE for t in helpers)
    # float8's scales are the only variables Keras calls trainable that are not trainable here
    assert {p for p, t in tensors.items() if t.role is Role.TRAINABLE} == keras_trainable - {
        t.path for t in helpers
    }


@pytest.mark.parametrize("case", params_of(["int4-grouped", "int4-per-channel"]))
def test_int4_weight_counts_its_unpacked_shape(case: str) -> None:
    model, _ = quantized(case)
    report = paramscope.inspect(model)
    packed = {t.path: t for t in report.tensors() if t.quantized == "int4"}
    assert set(packed) == QUANTIZED_WEIGHTS
    assert packed["dense/kernel"].params == 30 * 7 and packed["dense/kernel"].shape == (30, 4)
    assert packed["emb/embeddings"].params == 11 * 8 and packed["emb/embeddings"].bytes == 11 * 4
    assert packed["ein/kernel"].params == 8 * 5
    grouped = any(t.quantized == "zero-point" for t in report.tensors())
    assert grouped == (case == "int4-grouped")


@pytest.mark.parametrize("case", params_of(CASES))
def test_keras_file_of_quantized_model_matches_loaded_model(case: str, tmp_path) -> None:
    model, unquantized = quantized(case)
    path = tmp_path / "quantized.keras"
    model.save(path)
    from_file = paramscope.inspect(path)
    loaded = keras.saving.load_model(path)
    assert roles(from_file) == roles(paramscope.inspect(loaded)) == roles(paramscope.inspect(model))
    assert [line.rstrip() for line in keras_lines(from_file)] == keras_footer(loaded)
    assert sum(t.params for t in from_file.tensors() if t.quantized not in HELPERS) == unquantized
    assert from_file.warnings == []


@pytest.mark.parametrize("case", ["int8", "int4-grouped", "float8"])
def test_weights_file_of_quantized_model_counts_what_keras_stores(case: str, tmp_path) -> None:
    model, _ = quantized(case)
    path = tmp_path / "quantized.weights.h5"
    model.save_weights(path)
    report = paramscope.inspect(path)
    assert report.totals["all"].tensors == len(model.weights)
    assert report.totals["all"].params == model.count_params()  # no config: the stored shapes
    assert report.totals["unknown"].tensors == len(model.weights)
