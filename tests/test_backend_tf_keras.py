"""tests/tf_keras (Keras 2 through tf-keras), in full, in a child process (see tests/backend_suites.py)."""

from tests.backend_suites import run_suite


def test_tf_keras_suite() -> None:
    run_suite("tests/tf_keras", {"PARAMSCOPE_TF_KERAS_SUITE": "1"})
