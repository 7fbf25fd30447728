"""Re-run the Keras suites in child processes: Keras 3 on jax and tensorflow, and tf.keras.

A backend is chosen once per process (KERAS_BACKEND is read at import), so these suites
cannot share the torch-backed process of the main run. Each child is a real pytest run; its
output is shown when it fails, and it must have passed tests, not merely exited 0. Each suite
has a test file of its own (tests/test_backend_*.py), so that pytest-xdist, which keeps a
file on one worker, runs them on different cores.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
