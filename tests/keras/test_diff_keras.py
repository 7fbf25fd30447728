"""diff with Keras 3, on whichever backend runs it: a model fine-tuned for a few real steps with
its base frozen, compared live and through the files Keras writes (``.keras``, legacy ``.h5``).

Truth is Keras's own: the tensors that changed are exactly ``model.trainable_weights``, and
each statistic equals the one NumPy computes in float64 from the weights Keras gives before
and after.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import paramscope
from paramscope.core.report import Role
from paramscope.errors import InputError
from paramscope.sources.values import values_of


def transfer_model():
    """A Dense + BatchNormalization base, frozen and called in inference mode, and a head."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    base = keras.Sequential(
        [keras.layers.Dense(8, activation="relu"), keras.layers.BatchNormalization()], name="base"
    )
    outputs = keras.layers.Dense(3, name="head")(base(inputs, training=False))
    model = keras.Model(inputs, outputs, name="transfer")
    base.trainable = False
    return model


def fine_tune(model, steps: int = 3) -> None:
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 6), dtype=np.float32), rng.random((16, 3), dtype=np.float32)
    for _ in range(steps):
        model.train_on_batch(x, y)


def variables(model) -> dict[str, object]:
    """The model's weights by report path, through the report's record of where each came from."""
    weights = {id(v) for v in model.weights}
    return {path: v for path, v in paramscope.inspect(model).origins.items() if id(v) in weights}


def paths_of(model, chosen) -> set[str]:
    ids = {id(v) for v in chosen}
    return {path for path, v in variables(model).items() if id(v) in ids}


@pytest.fixture
def tuned(tmp_path: Path):
    """(the model after fine-tuning, its weights before by report path, the folder holding the
    files saved before and after)."""
    model = transfer_model()
    model.save(tmp_path / "before.keras")
    model.save(tmp_path / "before.h5")
    before = {path: np.array(v.numpy()) for path, v in variables(model).items()}
    fine_tune(model)
    model.save(tmp_path / "after.keras")
    return model, before, tmp_path


@pytest.mark.parametrize(
    ("before", "after"),
    [  # each reader and the live model once in a lean child run; the other pairings on torch only
        ("before.keras", None),
        pytest.param("before.keras", "after.keras", marks=pytest.mark.sweep),
        ("before.h5", "after.keras"),
        pytest.param("before.h5", None, marks=pytest.mark.sweep),
    ],
)
def test_fine_tuning_changed_only_the_head(tuned, before: str, after: str | None) -> None:
    model, weights, folder = tuned
    diff = paramscope.diff(folder / before, model if after is None else folder / after)
    now = variables(model)
    trainable = paths_of(model, model.trainable_weights)
    assert trainable == {"head/kernel", "head/bias"}
    assert {c.path for c in diff.changed} == trainable
    assert {u.path for u in diff.unchanged} == set(now) - trainable
    assert all(u.identical for u in diff.unchanged) and not diff.not_compared
    statuses = {node.path: node.status for node in diff.nodes}
    assert statuses["base"] == "bit-identical" and statuses["head"] == "changed"
    assert diff.summary == f"2 of {len(model.weights)} tensors changed: head; base bit-identical"
    for change in diff.changed:
        a, b = weights[change.path].astype(np.float64), np.array(now[change.path].numpy(), np.float64)
        assert change.max_abs_delta == np.abs(b - a).max()
        with np.errstate(divide="ignore"):  # the head's bias starts at zeros: infinitely far
            relative = np.linalg.norm(b - a) / np.linalg.norm(a)
        assert change.relative_change == pytest.approx(relative, rel=1e-12)
        assert change.changed_fraction == np.mean(a != b)


def test_unfreezing_is_a_role_change(tuned) -> None:
    model, _, folder = tuned
    model.get_layer("base").trainable = True
    diff = paramscope.diff(folder / "after.keras", model)
    unfrozen = paths_of(model, model.get_layer("base").trainable_weights)
    assert {p.a.path for p in diff.role_changed} == unfrozen
    assert {(p.a.role, p.b.role) for p in diff.role_changed} == {(Role.FROZEN, Role.TRAINABLE)}
    assert not diff.changed and all(u.identical for u in diff.unchanged)


def test_names_from_another_framework_match_by_order(tuned) -> None:
    """The same weights under torch-style names: nothing matches by name, and the diff says so;
    by order and shape every tensor pairs, bit-identical."""
    model, _, folder = tuned
    report = paramscope.inspect(model)
    arrays = {f"layer{i}.w": np.array(report.origins[t.path].numpy()) for i, t in enumerate(report.tensors())}
    np.savez(folder / "port.npz", **arrays)
    by_name = paramscope.diff(model, folder / "port.npz")
    assert not by_name.unchanged and "match='order'" in by_name.notes[0]
    by_order = paramscope.diff(model, folder / "port.npz", match="order")
    assert len(by_order.unchanged) == len(model.weights) and all(u.identical for u in by_order.unchanged)


def test_keras_file_cut_while_compared_is_refused(tuned) -> None:
    _, _, folder = tuned
    path = folder / "after.keras"
    report = paramscope.inspect(path)
    values = values_of(report)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 10)
    kernel = next(t for t in report.tensors() if t.path == "head/kernel")
    with pytest.raises(InputError, match="changed while it was read"):
        list(values.of(kernel).chunks())
