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


def test_guard_modules_import_their_framework_only_when_used() -> None:
    """paramscope.guard and paramscope.keras import nothing until a guard is built (the Keras
    callback classes are made on first access); paramscope.lightning and paramscope.hf are
    the frameworks' own callbacks, so importing them imports their framework, and only that."""
    code = (
        "import sys, paramscope, paramscope.guards, paramscope.keras;"
        "assert callable(paramscope.guard);"
        f"print([m for m in {(*FRAMEWORKS, 'lightning', 'transformers')!r} if m in sys.modules])"
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


def test_json_output_does_not_import_rich(tmp_path) -> None:
    """rich is a tenth of a cold `--format json` run on a file; the JSON path leaves it out."""
    import numpy as np

    np.save(tmp_path / "a.npy", np.zeros((2, 3), np.float32))
    code = (
        "import sys; from paramscope.cli import cli\n"
        f"cli(['summary', {str(tmp_path / 'a.npy')!r}, '--format', 'json'], standalone_mode=False)\n"
        "print('rich' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "False"
    assert '"params": 6' in result.stdout


def test_python_dash_m_runs_the_command() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "paramscope", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("paramscope"), result.stderr
