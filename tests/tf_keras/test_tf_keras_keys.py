"""Tensor keys where TensorFlow names them (see tests/test_tensor_keys.py for the others): a
live tf.keras weight's ``name``, a legacy ``.h5``'s dataset paths, a SavedModel's checkpoint
keys, a TFLite model's tensor names; each against TensorFlow's or h5py's own listing.

Run in the tf.keras child process (tests/test_backend_tf_keras.py), where TensorFlow runs.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import tensorflow as tf
import tf_keras

import paramscope
from paramscope.core.report import Report

OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def keys(report: Report) -> list[str | None]:
    groups = [g for g in (report.optimizer, report.metrics) if g is not None]
    return [t.key for t in report.tensors()] + [t.key for g in groups for t in g.tensors]


def small_model() -> tf_keras.Model:
    base = tf_keras.Sequential(
        [
            tf_keras.Input((4,)),
            tf_keras.layers.Dense(3, name="d"),
            tf_keras.layers.BatchNormalization(name="bn"),
        ],
        name="base",
    )
    return tf_keras.Sequential([tf_keras.Input((4,)), base, tf_keras.layers.Dense(2, name="head")])


class Scaled(tf.Module):
    """Two variables and a step counter: what a SavedModel and a TFLite model keep of them."""

    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(tf.ones((3, 2)), name="w")
        self.b = tf.Variable(tf.zeros((2,)), name="b")
        self.steps = tf.Variable(0, trainable=False, name="steps")

    @tf.function(input_signature=[tf.TensorSpec((1, 3))])
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return x @ self.w + self.b


def test_live_tf_keras_keys_are_weight_names() -> None:
    model = small_model()
    assert keys(paramscope.inspect(model)) == [w.name for w in model.weights]


def test_legacy_h5_keys_are_its_dataset_paths(tmp_path: Path) -> None:
    model = small_model()
    model.save(tmp_path / "model.h5")
    found: list[str] = []
    with h5py.File(tmp_path / "model.h5", "r") as stored:
        stored.visititems(lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None)
    assert sorted(keys(paramscope.inspect(tmp_path / "model.h5"))) == sorted(found)


def test_savedmodel_keys_are_its_checkpoint_keys(tmp_path: Path) -> None:
    tf.saved_model.save(Scaled(), str(tmp_path / "saved"))
    listed = [name for name, _ in tf.train.list_variables(str(tmp_path / "saved/variables/variables"))]
    assert len(listed) == 4  # w, b, steps and the object graph
    assert sorted(keys(paramscope.inspect(tmp_path / "saved"))) == sorted(set(listed) - {OBJECT_GRAPH})


def test_tflite_keys_are_the_names_of_the_tensors_holding_data(tmp_path: Path) -> None:
    from tensorflow.lite.python import schema_py_generated as schema

    module = Scaled()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module
    )
    (tmp_path / "model.tflite").write_bytes(converter.convert())
    model = schema.ModelT.InitFromPackedBuf((tmp_path / "model.tflite").read_bytes(), 0)
    held = [
        t.name.decode()
        for s in model.subgraphs
        for t in s.tensors
        if model.buffers[t.buffer].data is not None or model.buffers[t.buffer].offset > 1
    ]
    assert held  # the converter's constants, named by the ops it folded them into
    assert sorted(keys(paramscope.inspect(tmp_path / "model.tflite"))) == sorted(held)
