"""Every keras.applications model the backend can build, against Keras's own numbers.

On the torch backend (the in-process run) LEAN_SAMPLE, the smallest model of each architecture
family, with its top (and MobileNetV2 without it); every other case only in ``make test-full``
(marked ``full``). A lean child run (jax, tensorflow: tests/backend_suites.py) keeps BACKEND_SAMPLE with
its top: one model per kind of layer a backend could count differently; a larger member of a
family only repeats them, and a plainer architecture (VGG, ResNet) only repeats layers the sample
holds. Without its top a model is a subset of the same layers (kernel shapes do not depend on
the input size), so that variant runs once on torch, the rest in ``make test-full``. NASNetMobile, which Keras cannot build on torch, is in the sample.
Each model is checked as built, fully frozen, and with one sublayer re-enabled inside the
frozen model (Keras 3 trains it: roles are per variable); explain derives every weighted layer
without a wrong formula and with at most 2% generic ones.
"""

from __future__ import annotations

import gc
import inspect as pyinspect

import keras
import pytest

import paramscope
from paramscope.core.report import Role
from paramscope.ops.explain import explain_layers
from tests.truth import assert_matches_keras

ALL_APPS = sorted(
    name for name, obj in vars(keras.applications).items() if pyinspect.isfunction(obj) and name[0].isupper()
)
LEAN_SAMPLE = {
    "ConvNeXtTiny",
    "DenseNet121",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "NASNetMobile",
    "ResNet50",
    "ResNet50V2",
    "VGG16",
    "Xception",
}
# What the lean jax and tensorflow child runs build: one model per kind of weighted layer that a
# backend could track differently (depthwise, squeeze-excite with normalization state,
# LayerScale, separable convolutions: NASNetMobile, which only these runs can build); the rest of
# LEAN_SAMPLE runs on torch (concatenation and activations hold no weights).
BACKEND_SAMPLE = {"ConvNeXtTiny", "EfficientNetB0", "MobileNetV2", "NASNetMobile"}
MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}


def marks_of(name: str, include_top: bool) -> tuple:
    if name not in LEAN_SAMPLE or not (include_top or name == "MobileNetV2"):
        return (pytest.mark.sweep, pytest.mark.full)
    return () if include_top and name in BACKEND_SAMPLE else (pytest.mark.sweep,)


def cases() -> list:
    """Every (model, top) pair; all but the backend sample with its top are marked ``sweep``
    (torch only), the models outside the lean sample and the topless ones ``full`` as well."""
    return [
        pytest.param(
            name,
            include_top,
            marks=marks_of(name, include_top),
            id=f"{name}-{'top' if include_top else 'notop'}",
        )
        for name in ALL_APPS
        for include_top in (True, False)
    ]


def build(name: str, include_top: bool):
    kwargs: dict = {"weights": None, "include_top": include_top}
    if not include_top:
        size = MIN_SIZE.get(name, 32)
        kwargs["input_shape"] = (size, size, 3)
    try:
        return getattr(keras.applications, name)(**kwargs)
    except ValueError as exc:
        if "not available with the" in str(exc):  # Keras's own per-backend restriction
            pytest.skip(str(exc).split(".")[0])
        raise


def last_weighted_layer(model):
    return [layer for layer in model._flatten_layers(include_self=False) if layer.weights][-1]


def test_lean_sample_names_real_applications() -> None:
    """A renamed or removed application must not silently shrink the lean runs."""
    assert LEAN_SAMPLE - set(ALL_APPS) == set()
    assert BACKEND_SAMPLE <= LEAN_SAMPLE


@pytest.mark.parametrize(("name", "include_top"), cases())
def test_application_matches_keras(name: str, include_top: bool) -> None:
    model = build(name, include_top)
    try:
        report = paramscope.inspect(model)
        assert_matches_keras(report, model)
        explained = explain_layers(report)
        assert [e.problem for e in explained if e.problem] == []
        assert sum(e.formula.generic for e in explained) <= 0.02 * len(explained)
        state_before = {t.path for t in report.tensors() if t.role is Role.STATE}
        assert report.totals["frozen"].tensors == 0

        # The transfer-learning set-up: the application nested as the base of an outer model.
        inputs = keras.Input(model.input_shape[1:])
        outer = keras.Model(inputs, model(inputs), name="outer")
        model.trainable = False
        frozen = paramscope.inspect(outer)
        assert_matches_keras(frozen, outer)
        assert frozen.totals["trainable"].tensors == 0
        assert frozen.totals["frozen"].tensors == report.totals["trainable"].tensors
        assert {t.path.removeprefix(model.name + "/") for t in frozen.tensors() if t.role is Role.STATE} == (
            state_before
        )

        inner = last_weighted_layer(model)
        inner.trainable = True  # re-enabled under a frozen parent: Keras 3 trains it
        partial = paramscope.inspect(outer)
        assert_matches_keras(partial, outer)
        assert partial.totals["trainable"].tensors == len(inner.trainable_weights) > 0
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()
