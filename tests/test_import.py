"""`import paramscope` (and its CLI's start-up) must not import a deep-learning framework."""

import subprocess
import sys

FRAMEWORKS = ("torch", "keras", "tensorflow", "jax", "tf_keras")


def test_import_is_framework_free() -> None:
    code = (
        "import sys, paramscope, paramscope.cli, paramscope.render;"
        f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_help_is_framework_free() -> None:
    code = (
        "import sys; from paramscope.cli import cli\n"
        "try:\n    cli(['summary', '--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {FRAMEWORKS!r} if m in sys.modules], file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "[]"
    assert "--show-tensors" in result.stdout
