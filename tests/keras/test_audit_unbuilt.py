"""An audit that cannot take a step on the real weights checks nothing: an unbuilt Keras model
is an input error with the way forward, never a silent pass."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import paramscope
from paramscope.errors import InputError


class TwoDense(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(3)
        self.out = keras.layers.Dense(2)

    def call(self, x, training=False):  # jax's train step passes training=
        return self.out(self.hidden(x))


def test_subclassed_model_never_called() -> None:
    model = TwoDense()
    with pytest.raises(InputError, match=r"not built yet.*call it once"):
        paramscope.audit(model, optimizer_name="sgd", input_shape=(4, 5))
    model(np.zeros((4, 5), "float32"))
    result = paramscope.audit(model, optimizer_name="sgd", input_shape=(4, 5))
    assert result.restored and all(v.changed for v in result.verdicts)
