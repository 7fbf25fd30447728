"""tests/keras on Keras 3's jax backend, lean, in a child process (see tests/backend_suites.py)."""

from tests.backend_suites import JAX_ENV, run_suite


def test_keras_suite_on_jax() -> None:
    run_suite("tests/keras", JAX_ENV)
