"""tests/keras on Keras 3's tensorflow backend, lean, in a child process (see tests/backend_suites.py)."""

from tests.backend_suites import TENSORFLOW_ENV, run_suite


def test_keras_suite_on_tensorflow() -> None:
    run_suite("tests/keras", TENSORFLOW_ENV)
