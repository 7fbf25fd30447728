"""Hostile and broken files: nothing executed, nothing hangs. A pickle that reaches dangerous
functions beside real weights is read with a malicious verdict (exit 1); a broken file, or a
payload with no weights, is a one-line error (exit 2)."""

from __future__ import annotations

import ast
import contextlib
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paramscope
from paramscope.core.report import Verdict
from paramscope.errors import InputError
from tests.backend_suites import FULL
from tests.files.corpus import (
    WEIGHT_SHAPE,
    WEIGHT_STORAGE,
    beside_weights,
    broken_files,
    dangerous_payloads,
    legacy_torch,
    torch_zip,
)
from tests.json_contract import validated

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


def container_bytes(pickle: bytes, container: str, storages: dict[str, bytes] | None = None) -> bytes:
    return torch_zip(pickle, storages) if container == "zip" else legacy_torch(pickle, storages)


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_beside_weights_is_read_and_malicious(name: str, container: str, tmp_path: Path) -> None:
    """Nothing is refused for what it names: the weights are counted, the verdict names the
    global, and nothing ran."""
    payload, dotted = PAYLOADS[name]
    path = tmp_path / "model.pt"
    path.write_bytes(
        container_bytes(beside_weights(payload, container == "legacy"), container, WEIGHT_STORAGE)
    )
    report = paramscope.inspect(path)
    assert (report.totals["all"].tensors, report.totals["all"].params) == (1, math.prod(WEIGHT_SHAPE))
    assert report.pickle is not None and report.pickle.verdict is Verdict.MALICIOUS
    assert dotted in [name for name, _ in report.pickle.malicious]


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_beside_weights_is_a_file_torch_loads(container: str, tmp_path: Path) -> None:
    """The trojan's container is a real torch file: with a harmless value in place of the
    payload, torch.load(weights_only=True) gives the one tensor the reports count."""
    path = tmp_path / "model.pt"
    path.write_bytes(
        container_bytes(beside_weights(b"\x80\x02K\x05.", container == "legacy"), container, WEIGHT_STORAGE)
    )
    loaded = torch.load(path, weights_only=True)
    assert loaded["hook"] == 5 and tuple(loaded["layer.weight"].shape) == WEIGHT_SHAPE
    assert paramscope.inspect(path).totals["all"].params == loaded["layer.weight"].numel()


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_alone_is_judged_malicious(name: str, container: str, tmp_path: Path) -> None:
    """A pickle that holds no tensor and reaches a dangerous global (the usual exploit) keeps
    its verdict: a report with no counts, or — where the rest of the container cannot be read
    (the legacy layout needs its storage list) — a refusal that says what it reaches."""
    payload, dotted = PAYLOADS[name]
    path = tmp_path / "model.pt"
    path.write_bytes(container_bytes(payload, container))
    try:
        report = paramscope.inspect(path)
    except InputError as refused:
        message = str(refused)
        assert "malicious pickle (reaches " in message and dotted in message
        assert "model.pt" in message and "\n" not in message
        return
    assert report.pickle.verdict.value == "malicious" and report.totals["all"].tensors == 0
    assert any(dotted in reached for reached, _ in report.pickle.malicious)


@pytest.mark.parametrize(
    "name",
    ["os-system-global", "builtins-eval-stack-global-memo", "subprocess-popen-inst", "runpy-run-path-obj"],
)
def test_cli_reports_then_exits_1(name: str, tmp_path: Path) -> None:
    """The report is written (the counts and the verdict), then exit 1 with one line on stderr."""
    path = tmp_path / "model.bin"
    payload, dotted = PAYLOADS[name]
    path.write_bytes(torch_zip(beside_weights(payload), WEIGHT_STORAGE))
    result = run_cli(path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"paramscope: {path}: malicious pickle: it reaches")
    assert dotted in lines[0]
    written = validated((tmp_path / "out.json").read_text())
    assert written["pickle"]["verdict"] == "malicious" and written["totals"]["all"]["params"] == 6


def test_cli_reports_a_payload_alone_then_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(torch_zip(PAYLOADS["os-system-global"][0]))
    result = run_cli(path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"paramscope: {path}: malicious pickle")
    written = validated((tmp_path / "out.json").read_text())
    assert written["pickle"]["verdict"] == "malicious" and written["totals"]["all"]["tensors"] == 0


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


# Flipped and cut bytes of each format: 25 files a format (10 HDF5 ones, each read in a child
# process) in `make test`, 60 and 25 in `make test-full`; tests/files/test_fuzz.py and `make fuzz`
# go further.
FUZZ = settings(max_examples=60 if FULL else 25, deadline=None, suppress_health_check=list(HealthCheck))
HDF5_FUZZ = settings(max_examples=25 if FULL else 10, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    from tests.files.writers import written_files

    folder = tmp_path_factory.mktemp("valid")
    return {path.name: path.read_bytes() for path in written_files(tmp_path_factory, folder)}


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


UNPICKLING_CALLS = frozenset(
    {"pickle.load", "pickle.loads", "torch.load", "numpy.load", "np.load", "marshal.loads"}
)


def _calls_that_unpickle(source: str) -> list[str]:
    """Calls in ``source`` that would execute a file's contents: the functions above, and any
    call passing ``allow_pickle=True``. Read from the syntax tree, so that text (a message
    telling the user to call ``torch.load(weights_only=True)``) is not mistaken for a call."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        allows_pickle = any(
            k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
            for k in node.keywords
        )
        if name in UNPICKLING_CALLS or allows_pickle:
            found.append(f"{name}() at line {node.lineno}")
    return found


def test_the_unpickling_check_finds_calls_not_text() -> None:
    source = 'import torch\nnote = "torch.load(weights_only=True) loads it"\ntorch.load(path)\n'
    assert _calls_that_unpickle(source) == ["torch.load() at line 3"]
    assert _calls_that_unpickle("np.load(path, allow_pickle=True)") == ["np.load() at line 1"]
    assert _calls_that_unpickle("read(path, allow_pickle=flag)") == ["read() at line 1"]


def test_no_code_path_can_unpickle() -> None:
    """No call that executes file contents exists anywhere in the package."""
    offenders = {
        path.name: calls
        for path in (ROOT / "src" / "paramscope").rglob("*.py")
        if (calls := _calls_that_unpickle(path.read_text()))
    }
    assert offenders == {}
