"""freeze on live Keras 3 models: the seed's numbers, selectors, order, and simulation == reality."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import paramscope
from paramscope.demo import build_transfer_model
from paramscope.errors import InputError
from tests.truth import assert_matches_keras

BASE = "mobilenetv2_1.00_224"


@pytest.fixture(scope="module")
def seed():
    """One seed model for the module; ``applied_seed`` undoes what a test applies to it."""
    model, _ = build_transfer_model()
    return model


@pytest.fixture
def applied_seed(seed):
    """The seed for a test that changes its flags, handed back with every layer trainable."""
    assert all(layer.trainable for layer in seed._flatten_layers())
    yield seed
    for layer in seed._flatten_layers():  # each flag: on tensorflow a parent's does not reach them
        layer.trainable = True


def roles(report):
    return {t.path: t.role for t in report.tensors()}


def test_seed_freeze_numbers(seed) -> None:
    plan = paramscope.freeze(seed, freeze=[BASE])
    before, after = plan.report.totals, plan.after
    assert (before["trainable"].tensors, before["trainable"].params) == (158, 2_253_335)
    assert (after["trainable"].tensors, after["trainable"].params) == (2, 29_463)
    assert (after["frozen"].tensors, after["frozen"].params) == (156, 2_223_872)
    assert after["state"].params == 34_112
    assert "model.get_layer('mobilenetv2_1.00_224').trainable = False" in plan.snippet
    assert "model.compile(" in plan.snippet
    assert all(layer.trainable for layer in seed._flatten_layers())  # simulation changed nothing


def test_unfreezing_a_block_adds_exactly_its_counts(seed) -> None:
    frozen = paramscope.freeze(seed, freeze=[BASE]).after
    plan = paramscope.freeze(seed, rules=[("freeze", BASE), ("unfreeze", f"{BASE}/block_16_*")])
    block = [
        t
        for t in plan.report.tensors()
        if t.path.startswith(f"{BASE}/block_16_") and t.role.value == "trainable"
    ]
    assert plan.after["trainable"].params == frozen["trainable"].params + sum(t.params for t in block)
    assert plan.after["trainable"].tensors == frozen["trainable"].tensors + len(block)


def test_later_rules_win(seed) -> None:
    unfrozen_last = paramscope.freeze(seed, rules=[("freeze", BASE), ("unfreeze", f"{BASE}/block_16_*")])
    frozen_last = paramscope.freeze(seed, rules=[("unfreeze", f"{BASE}/block_16_*"), ("freeze", BASE)])
    assert unfrozen_last.after["trainable"].tensors > 2
    assert frozen_last.after["trainable"].tensors == 2


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("type:BatchNormalization", 52),
        ("re:block_1[56]_project$", 2),
        (f"until:{BASE}/Conv1", 1),
        (f"from:{BASE}/Conv_1", 3),  # Conv_1, Conv_1_bn, then the head
        ("last:2", 2),
        ("all", 2),  # the top-level layers that hold weights (base, head), never the root
    ],
)
def test_selector_forms(seed, selector: str, expected: int) -> None:
    plan = paramscope.freeze(seed, freeze=[selector])
    assert len(plan.selected[0][1]) == expected


def test_selector_matching_nothing_names_it_and_suggests(seed) -> None:
    with pytest.raises(InputError, match=r"selector 'mobilenetv2_1.00_22' matches no layer \(did you mean"):
        paramscope.freeze(seed, freeze=["mobilenetv2_1.00_22"])


@pytest.mark.parametrize(
    "rules",
    [
        [("freeze", BASE)],
        [("freeze", BASE), ("unfreeze", f"{BASE}/block_16_*")],
        [("freeze", "type:BatchNormalization")],
        [("freeze", "all"), ("unfreeze", "dense")],
    ],
    ids=["base", "base-then-top", "batchnorm", "all-then-head"],
)
def test_simulation_equals_applying(applied_seed, rules) -> None:
    model = applied_seed
    plan = paramscope.freeze(model, rules=rules)
    simulated = {path: role for path, role in plan.roles_after.items()}
    applied = paramscope.freeze(model, rules=rules, apply=True)
    assert applied.applied
    assert applied.roles_after == simulated
    assert_matches_keras(paramscope.inspect(model), model)  # and Keras agrees


def test_simulation_leaves_model_bit_identical(seed) -> None:
    values = [np.array(keras.ops.convert_to_numpy(v)) for v in seed.weights]
    flags = [layer.trainable for layer in seed._flatten_layers()]
    paramscope.freeze(seed, rules=[("freeze", BASE), ("unfreeze", "last:3")])
    assert [layer.trainable for layer in seed._flatten_layers()] == flags
    after = [np.array(keras.ops.convert_to_numpy(v)) for v in seed.weights]
    assert all(np.array_equal(a, b) for a, b in zip(values, after, strict=True))


def test_out_keras_reloads_with_the_planned_roles(seed, tmp_path) -> None:
    rules = [("freeze", BASE), ("unfreeze", f"{BASE}/block_16_*")]
    plan = paramscope.freeze(seed, rules=rules)
    from paramscope.sources.freeze_out import write_plan

    out = write_plan(plan, tmp_path / "frozen.keras")
    assert all(layer.trainable for layer in seed._flatten_layers())  # the live model is untouched
    reloaded = keras.saving.load_model(out)
    in_keras = {t.path: t.role for t in paramscope.inspect(reloaded).tensors()}
    from_file = {t.path: t.role for t in paramscope.inspect(out).tensors()}
    assert in_keras == from_file == plan.roles_after
    assert len(reloaded.trainable_weights) == plan.after["trainable"].tensors
    with pytest.raises(InputError, match="already exists"):
        write_plan(plan, out)
    again = paramscope.freeze(out, freeze=[BASE])  # a .keras input is rewritten without Keras
    write_plan(again, tmp_path / "again.keras")
    assert paramscope.inspect(tmp_path / "again.keras").totals["trainable"].tensors == 2


@pytest.mark.sweep  # the CLI freezes a torch module whatever KERAS_BACKEND is: one run is enough
def test_cli_out_refuses_to_overwrite(tmp_path) -> None:
    import subprocess
    import sys

    target = tmp_path / "plan.json"
    target.write_text("keep")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "paramscope.cli",
            "freeze",
            "tests/fixtures/models.py:tiny",
            "--freeze",
            "0",
            "--out",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "already exists" in result.stderr
    assert target.read_text() == "keep"


def test_out_h5_refused_with_the_reason(seed, tmp_path) -> None:
    """Rewriting flags in a legacy .h5 would break Keras's own loader (weights are listed
    trainable-first); paramscope refuses instead of writing an unloadable file."""
    source = tmp_path / "model.h5"
    seed.save(source)
    plan = paramscope.freeze(source, freeze=[BASE])
    assert plan.after["trainable"].tensors == 2  # planning a file still works
    from paramscope.sources.freeze_out import write_plan

    with pytest.raises(InputError, match=r"save it as \.keras"):
        write_plan(plan, tmp_path / "frozen.h5")
    assert not (tmp_path / "frozen.h5").exists()
