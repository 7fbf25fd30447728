"""``keras.layers.TorchModuleWrapper`` (torch backend only): the wrapped module's parameters are
Keras variables, named by their ``state_dict()`` keys; its buffers are no Keras variables, yet
they are the module's state and Keras saves them (``save_own_variables`` writes the whole
``state_dict()``): state tensors here, counted as torch counts them, left out of Keras's totals.
"""

from __future__ import annotations

import keras
import pytest
import torch

import paramscope
from paramscope.core.conventions import keras_differences, keras_lines
from paramscope.core.report import Role
from tests.truth import keras_footer

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch", reason="TorchModuleWrapper needs torch")


def wrapped_model(freeze_wrapper: bool = False):
    """Linear + BatchNorm1d in a TorchModuleWrapper, one parameter with requires_grad=False and
    one buffer that state_dict() does not save, then a Keras Dense head."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    module[0].bias.requires_grad_(False)
    module.register_buffer("step", torch.zeros(2), persistent=False)
    inputs = keras.Input((4,))
    wrapper = keras.layers.TorchModuleWrapper(module, name="wrap", output_shape=(None, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(wrapper(inputs)), name="wrapped")
    wrapper.trainable = not freeze_wrapper
    return model, module


def buffers_of(report) -> dict[str, tuple]:
    return {t.name: (t.shape, t.persistent) for t in report.tensors() if t.persistent is not None}


@pytest.mark.parametrize("freeze_wrapper", [False, True], ids=["trainable", "frozen-wrapper"])
def test_live_wrapper_reports_buffers_as_state(freeze_wrapper: bool) -> None:
    model, module = wrapped_model(freeze_wrapper)
    report = paramscope.inspect(model)
    saved = module.state_dict()
    assert buffers_of(report) == {
        name: (tuple(buffer.shape), name in saved) for name, buffer in module.named_buffers()
    }
    state = report.totals["state"]
    assert state.tensors == len(list(module.buffers()))
    assert state.params == sum(buffer.numel() for buffer in module.buffers())
    wrapper = {
        t.name: t.role for t in report.tensors() if t.path.startswith("wrap/") and t.persistent is None
    }
    assert wrapper == {
        name: Role.TRAINABLE if parameter.requires_grad and not freeze_wrapper else Role.FROZEN
        for name, parameter in module.named_parameters()
    }
    assert report.totals["trainable"].tensors == len(model.trainable_weights)
    assert report.totals["frozen"].tensors == len(model.non_trainable_weights)
    assert [line.rstrip() for line in keras_lines(report)] == keras_footer(model)
    assert any("buffers" in line for line in keras_differences(report))


@pytest.mark.parametrize("freeze_wrapper", [False, True], ids=["trainable", "frozen-wrapper"])
def test_keras_file_holds_the_saved_buffers(freeze_wrapper: bool, tmp_path) -> None:
    model, module = wrapped_model(freeze_wrapper)
    path = tmp_path / "wrapped.keras"
    model.save(path)
    from_file = paramscope.inspect(path)
    parameters = dict(module.named_parameters())
    saved_buffers = {
        name: tuple(t.shape) for name, t in module.state_dict().items() if name not in parameters
    }
    assert {name: shape for name, (shape, _) in buffers_of(from_file).items()} == saved_buffers
    live = {t.path: t.role for t in paramscope.inspect(model).tensors() if t.persistent is not False}
    assert {t.path: t.role for t in from_file.tensors()} == live
    loaded = keras.saving.load_model(path, safe_mode=False)  # our own file: Keras unpickles the module
    assert [line.rstrip() for line in keras_lines(from_file)] == keras_footer(loaded)
    assert from_file.warnings == []
