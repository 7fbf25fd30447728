"""tests/keras on Keras 3's tensorflow backend, in a child process (see tests/backend_suites.py)."""

from tests.backend_suites import run_suite


def test_keras_suite_on_tensorflow() -> None:
    run_suite("tests/keras", {"KERAS_BACKEND": "tensorflow", "PARAMSCOPE_APPS": "third"})
