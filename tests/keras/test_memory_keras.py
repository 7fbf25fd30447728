"""memory on live Keras 3 models, on whichever backend this process runs (tests/test_backend_*.py
runs this file on jax and tensorflow too): the seed's numbers, and the truth after one real
training step — the bytes of ``model.weights``, of the gradients Keras computes (one per
trainable variable) and of ``optimizer.variables`` — for every optimizer Keras has."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import paramscope
from paramscope.errors import InputError


def nbytes(variables) -> int:
    """Bytes as the framework holds them: each variable's value converted to numpy."""
    return sum(keras.ops.convert_to_numpy(v).nbytes for v in variables)


def frozen_base(dtype=None):
    """A nested base (Dense, BatchNormalization, Dense) frozen under a two-layer head."""
    base = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, dtype=dtype),
            keras.layers.BatchNormalization(dtype=dtype),
            keras.layers.Dense(12, dtype=dtype),
        ],
        name="base",
    )
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(10, name="hidden", dtype=dtype)(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head", dtype=dtype)(hidden))
    base.trainable = False
    return model


def train_one_step(model, optimizer) -> None:
    model.compile(optimizer, "mse")
    model.train_on_batch(np.ones((4, 8), "float32"), np.ones((4, 3), "float32"))


OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(),
    "momentum": lambda: keras.optimizers.SGD(momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(),
    "adamw": lambda: keras.optimizers.AdamW(amsgrad=True),
    "lion": lambda: keras.optimizers.Lion(),
    "adafactor": lambda: keras.optimizers.Adafactor(),
}


# A lean child run keeps one optimizer with moments and the one with factored moments; the
# others repeat Keras's slot rules, which no backend changes.
LEAN_OPTIMIZERS = {"adam", "adafactor"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in LEAN_OPTIMIZERS else pytest.mark.sweep) for n in OPTIMIZERS]
)
def test_prediction_equals_keras_after_one_real_step(name) -> None:
    model = frozen_base()
    estimate = paramscope.memory(model, optimizer=name, amsgrad=name == "adamw")
    train_one_step(model, OPTIMIZERS[name]())
    assert estimate.weights.bytes == nbytes(model.weights)
    assert estimate.gradients.bytes == nbytes(model.trainable_weights)
    assert estimate.optimizer.bytes == nbytes(model.optimizer.variables)
    assert estimate.master_weights.bytes == 0


@pytest.mark.parametrize(
    ("dtype", "precision"),
    [  # a bfloat16 model named by its dtype or by the argument: the same variables, one run enough
        pytest.param("bfloat16", None, marks=pytest.mark.sweep),
        ("bfloat16", "bf16"),
        ("mixed_bfloat16", "amp"),
    ],
)
def test_precision_prediction_equals_keras_after_one_real_step(dtype, precision) -> None:
    model = frozen_base(dtype)
    estimate = paramscope.memory(model, optimizer="adam", precision=precision)
    train_one_step(model, keras.optimizers.Adam())
    assert estimate.weights.bytes == nbytes(model.weights)
    assert estimate.optimizer.bytes == nbytes(model.optimizer.variables)


def test_lora_prediction_equals_enable_lora_after_one_real_step() -> None:
    estimate = paramscope.memory(frozen_base(), optimizer="adam", lora="r=2,targets=hidden,head")
    model = frozen_base()
    for name in ("hidden", "head"):  # peft's semantics: only the adapters train
        layer = model.get_layer(name)
        layer.enable_lora(2)
        layer.bias.trainable = False
    train_one_step(model, keras.optimizers.Adam())
    assert estimate.gradients.bytes == nbytes(model.trainable_weights)
    assert estimate.weights.bytes == nbytes(model.weights)
    assert estimate.optimizer.bytes == nbytes(model.optimizer.variables)


def test_activations_from_the_first_trainable_layer_on() -> None:
    estimate = paramscope.memory(frozen_base(), batch=5, input_shape=(8,))
    # hidden's input (the base's 12 outputs), hidden's 10 and head's 3, at float32 for 5 samples.
    assert estimate.activations.bytes == 5 * (12 + 10 + 3) * 4
    # Trained, the base would add its input (8) and its layers' outputs (16, 16).
    assert estimate.saved_by_freezing.by_role["trainable"] == 5 * (8 + 16 + 16) * 4
    half = paramscope.memory(frozen_base(), precision="bf16", batch=5, input_shape=(8,))
    assert half.activations.bytes == 5 * (12 + 10 + 3) * 2
    with pytest.raises(InputError, match="does not fit"):
        paramscope.memory(frozen_base(), batch=5, input_shape=(9,))


@pytest.fixture(scope="module")
def seed():
    """The issue's model: MobileNetV2 (pooled) + Dense(23), its base to be frozen by a rule."""
    base = keras.applications.MobileNetV2(weights=None, include_top=False, pooling="avg")
    return keras.Sequential([base, keras.layers.Dense(23, name="head")]), base


def test_seed_numbers(seed) -> None:
    model, base = seed
    estimate = paramscope.memory(model, optimizer="adam", freeze=[base.name], sharding="zero2")
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.get_layer("head").trainable_variables)  # what trains once the base is frozen
    scalars = nbytes(v for v in optimizer.variables if v.path.endswith(("iteration", "learning_rate")))
    assert (estimate.weights.bytes, estimate.gradients.bytes) == (9_149_788, 117_852)
    assert estimate.optimizer.bytes == 235_704 + scalars == nbytes(optimizer.variables)
    assert estimate.total.bytes == 9_503_344 + scalars
    assert estimate.saved_by_freezing.bytes == estimate.saved_by_freezing.by_role["frozen"] == 2_223_872 * 12
    assert estimate.per_device.deepspeed.bytes == 45_748_940  # DeepSpeed ZeRO-2 on one GPU
    assert any("36,599,152" in line for line in estimate.assumptions)  # accelerate's rule


def test_seed_head_activations(seed) -> None:
    model, base = seed
    estimate = paramscope.memory(model, freeze=[base.name], batch=32, input_shape=(224, 224, 3))
    assert estimate.activations.bytes == 32 * (1280 + 23) * 4  # the head's input and output
    assert all(layer.trainable for layer in model._flatten_layers())  # the rule was simulated
