"""Test set-up shared by the whole suite.

Keras 3 reads KERAS_BACKEND once, at import: the in-process suite runs on the torch backend,
and tests/test_backend_*.py re-runs tests/keras under jax and tensorflow in child processes.
tests/tf_keras runs only in its own child process, so TensorFlow's tf.keras never shares a
process with torch-backed Keras.
"""

import os

import pytest

pytest.register_assert_rewrite("tests.truth")

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# A reader exception that is not an InputError is a bug hostile bytes found: fail the test
# instead of turning it into the user's one-line "malformed FILE" error (see sources/detect.py).
os.environ.setdefault("PARAMSCOPE_STRICT", "1")

collect_ignore = [] if os.environ.get("PARAMSCOPE_TF_KERAS_SUITE") else ["tf_keras"]
