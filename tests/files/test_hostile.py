"""Hostile and broken files: a one-line error, exit 2, nothing executed, nothing hangs."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paramscope
from paramscope.errors import InputError
from tests.files.corpus import broken_files, dangerous_payloads, legacy_torch, torch_zip

ROOT = Path(__file__).resolve().parents[2]
MARKER = Path("/tmp/paramscope-pwned-marker")
PAYLOADS = dangerous_payloads(MARKER)
BROKEN = broken_files()


@pytest.fixture(autouse=True)
def no_marker():
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a payload ran"


def run_cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "paramscope.cli",
            "summary",
            str(path),
            "--format",
            "json",
            "--output",
            str(path.parent / "out.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_dangerous_pickle_refused_naming_the_global(name: str, container: str, tmp_path: Path) -> None:
    payload, dotted = PAYLOADS[name]
    path = tmp_path / "model.pt"
    path.write_bytes(torch_zip(payload) if container == "zip" else legacy_torch(payload))
    with pytest.raises(InputError) as caught:
        paramscope.inspect(path)
    assert dotted in str(caught.value)
    assert str(path) in str(caught.value) or "model.pt" in str(caught.value)


@pytest.mark.parametrize(
    "name",
    ["os-system-global", "builtins-eval-stack-global-memo", "subprocess-popen-inst", "runpy-run-path-obj"],
)
def test_cli_refuses_in_one_line_exit_2(name: str, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(torch_zip(PAYLOADS[name][0]))
    result = run_cli(path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"paramscope: error: {path}: refused")
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_clean_error(name: str, tmp_path: Path) -> None:
    filename, data, phrase = BROKEN[name]
    path = tmp_path / filename
    path.write_bytes(data)
    before = path.read_bytes()
    with pytest.raises(InputError) as caught:
        paramscope.inspect(path)
    assert phrase in str(caught.value)
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == before  # inputs are never modified


def test_corpus_is_large_enough() -> None:
    assert len(PAYLOADS) * 2 + len(BROKEN) >= 50


def test_cli_broken_file_exit_2_within_limits(tmp_path: Path) -> None:
    filename, data, _ = BROKEN["zip-bomb"]
    path = tmp_path / filename
    path.write_bytes(data)
    result = run_cli(path)  # the subprocess timeout turns a hang into a failure
    assert result.returncode == 2 and "Traceback" not in result.stderr


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
HDF5_FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    from tests.files.writers import write_all

    folder = tmp_path_factory.mktemp("valid")
    return {path.name: path.read_bytes() for path in write_all(folder)}


@pytest.mark.parametrize(
    "name",
    [
        "state_dict.pt",
        "legacy.pt",
        "model.safetensors",
        "arrays.npz",
        "array.npy",
        "model.onnx",
        "model.gguf",
        "model.keras",
        "npz.keras",
        "legacy.h5",
    ],
)
def test_fuzzed_files_fail_cleanly(name: str, valid_files, tmp_path_factory) -> None:
    original = valid_files[name]
    folder = tmp_path_factory.mktemp("fuzz")
    fuzz = HDF5_FUZZ if name in ("model.keras", "legacy.h5") else FUZZ  # each HDF5 parse is a child process

    @fuzz
    @given(
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), min_size=1, max_size=8),
        st.integers(0, len(original)),
    )
    def check(flips, cut) -> None:
        data = bytearray(original)
        for position, value in flips:
            data[position] = value
        path = folder / name
        path.write_bytes(bytes(data[: max(cut, 1)]))
        with contextlib.suppress(InputError):  # the only acceptable failure
            paramscope.inspect(path)
        assert not MARKER.exists()

    check()


def test_no_code_path_can_unpickle() -> None:
    """No call that executes file contents exists anywhere in the package."""
    calls = re.compile(
        r"\b(pickle\.loads?|torch\.load|numpy\.load|np\.load|marshal\.loads)\(|allow_pickle=True"
    )
    offenders = [p.name for p in (ROOT / "src" / "paramscope").rglob("*.py") if calls.search(p.read_text())]
    assert offenders == []
