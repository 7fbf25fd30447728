"""Re-run the Keras suites in child processes: Keras 3 on jax and tensorflow, and tf.keras.

A backend is chosen once per process (KERAS_BACKEND is read at import), so these suites
cannot share the torch-backed process of the main run. Each child is a real pytest run; its
output is shown when it fails, and it must have passed tests, not merely exited 0.

Lean, not partial. The main run (Keras 3 on torch) runs every sweep in full. The jax and
tensorflow children set PARAMSCOPE_LEAN=1: tests/conftest.py deselects the cases marked
``sweep`` and ``LEAN`` lowers the number of examples drawn. Every test of tests/keras still
runs on every backend, every count assertion in it included; what shrinks is the number of
models a sweep goes through, to the sample its file's docstring names: the smallest
keras.applications model of each architecture family, each file format once, each layer
kind's formula. tests/tf_keras runs in full: tf.keras has no other run. ``make test-full``
sets PARAMSCOPE_FULL=1: then the children run every sweep too.

One child per backend: a model built twice in one jax process compiles its initializers
once, and the two parts a split would give cost more than they balance. tests/conftest.py
starts these children first, one per worker, so that they end with the parallel run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEAN = os.environ.get("PARAMSCOPE_LEAN") == "1"
CHILD_RUN_FILES = re.compile(r"tests/test_backend_\w+\.py")  # tests/conftest.py runs them first

FULL = os.environ.get("PARAMSCOPE_FULL") == "1"
LEAN_ENV = {} if FULL else {"PARAMSCOPE_LEAN": "1"}
# XLA compiles each random initializer once per weight shape, which is most of building a
# model on jax; unoptimised code compiles in half the time or less and creates the same weights.
JAX_ENV = {**LEAN_ENV, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_backend_optimization_level=0"}
TENSORFLOW_ENV = {**LEAN_ENV, "KERAS_BACKEND": "tensorflow"}


def run_suite(path: str, env_extra: dict[str, str]) -> None:
    env = {**os.environ, **env_extra, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider", "-x"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    closing = output.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", closing), output[-3000:]
    assert not re.search(r"\b\d+ (failed|error)", closing), output[-6000:]
