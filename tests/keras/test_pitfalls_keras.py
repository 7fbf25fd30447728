"""Each Keras lint rule: a set-up that triggers it and a fixed one that does not."""

from __future__ import annotations

import keras

import paramscope


def rules(findings) -> set[str]:
    return {f.rule for f in findings}


def transfer(training_false: bool):
    base = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.BatchNormalization(name="bn")],
        name="base",
    )
    inputs = keras.Input((4,))
    features = base(inputs, training=False) if training_false else base(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(features)), base


def test_stale_compile() -> None:
    model, base = transfer(True)
    model.compile("adam", "mse")
    base.trainable = False
    (finding,) = [f for f in paramscope.lint(model)[1] if f.rule == "stale-compile"]
    assert finding.severity == "error" and "base" in finding.message
    model.compile("adam", "mse")
    assert "stale-compile" not in rules(paramscope.lint(model)[1])


def test_bn_inference_when_frozen() -> None:
    model, base = transfer(False)
    base.trainable = False
    assert "bn-inference-when-frozen" in rules(paramscope.lint(model)[1])
    plan = paramscope.freeze(transfer(False)[0], freeze=["base"])  # the plan says it too
    assert "bn-inference-when-frozen" in rules(plan.findings)
    fixed, fixed_base = transfer(True)
    fixed_base.trainable = False
    assert "bn-inference-when-frozen" not in rules(paramscope.lint(fixed)[1])


def test_frozen_parent_override_keras3_trains() -> None:
    model, base = transfer(True)
    base.trainable = False
    base.get_layer("bn").trainable = True
    (finding,) = [f for f in paramscope.lint(model)[1] if f.rule == "frozen-parent-override"]
    assert finding.severity == "info" and "Keras 3 trains them" in finding.message
    plain, plain_base = transfer(True)
    plain_base.trainable = False
    assert "frozen-parent-override" not in rules(paramscope.lint(plain)[1])


def test_nothing_to_train() -> None:
    model, _ = transfer(True)
    model.trainable = False
    assert "nothing-to-train" in rules(paramscope.lint(model)[1])
    assert "nothing-to-train" not in rules(paramscope.lint(transfer(True)[0])[1])


def test_freezing_a_compiled_model_says_compile_again() -> None:
    model, _ = transfer(True)
    model.compile("adam", "mse")
    (finding,) = [f for f in paramscope.freeze(model, freeze=["base"]).findings if f.rule == "stale-compile"]
    assert finding.severity == "warning" and "compile() again" in finding.message
    uncompiled, _ = transfer(True)
    assert "stale-compile" not in rules(paramscope.freeze(uncompiled, freeze=["base"]).findings)
