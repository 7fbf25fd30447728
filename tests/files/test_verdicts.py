"""The pickle verdict on files torch itself writes, held to what torch.load does with them.

data-only: ``torch.load(weights_only=True)`` loads it. needs-code: it does not (the file names
classes from other packages). malicious: a trojaned checkpoint — real weights beside an object
whose ``__reduce__`` calls ``os.system`` — is read like any checkpoint, its counts those of its
weights, with a red warning first and exit 1; the payload never runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import paramscope
from paramscope.core.report import Verdict

ROOT = Path(__file__).resolve().parents[2]


class SystemCall:
    """Pickles as ``os.system(command)`` (``posix.system`` on Linux): a trojan's payload."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class Evaluation:
    """Pickles as ``eval(code)``; protocol 2 spells it ``__builtin__.eval``, as Python 2 did."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def stored_numel(model: torch.nn.Module) -> int:
    """What the file holds: every parameter and buffer, as state_dict() lists them."""
    return sum(t.numel() for t in model.state_dict().values())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("verdicts")
    marker = folder / "MARKER"
    model = small_model()
    state = model.state_dict()
    saves = {
        "state_dict.pt": (state, {}),
        "namespace.pt": (
            {
                "model": state,
                "args": argparse.Namespace(lr=0.1, layers=[64, 64]),
                "counts": collections.defaultdict(int, {"steps": 3}),
            },
            {},
        ),
        "module.pt": (model, {}),
        "trojan.pt": ({"model": state, "on_load": SystemCall(f"touch {marker}")}, {}),
        "trojan_legacy.pt": (
            {"model": state, "on_load": SystemCall(f"touch {marker}")},
            {"_use_new_zipfile_serialization": False},
        ),
        "eval.pt": ({"model": state, "on_load": Evaluation(f"open({str(marker)!r}, 'w')")}, {}),
    }
    paths = {"marker": marker}
    for name, (obj, options) in saves.items():
        paths[name] = folder / name
        torch.save(obj, paths[name], **options)
    assert not marker.exists()
    return paths


@pytest.fixture(autouse=True)
def nothing_ran(files):
    yield
    assert not files["marker"].exists(), "a payload ran"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paramscope.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_state_dict_is_data_only_and_torch_agrees(files) -> None:
    report = paramscope.inspect(files["state_dict.pt"])
    assert report.pickle is not None and report.pickle.verdict is Verdict.DATA_ONLY
    assert report.pickle.needs_code == () and report.pickle.malicious == ()
    loaded = torch.load(files["state_dict.pt"], weights_only=True)
    assert report.totals["all"].params == sum(t.numel() for t in loaded.values())


def test_a_checkpoint_holding_foreign_classes_needs_code_and_torch_agrees(files) -> None:
    report = paramscope.inspect(files["namespace.pt"])
    assert report.pickle.verdict is Verdict.NEEDS_CODE and report.pickle.malicious == ()
    assert {"argparse.Namespace", "collections.defaultdict"} <= set(report.pickle.needs_code)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(files["namespace.pt"], weights_only=True)
    loaded = torch.load(files["namespace.pt"], weights_only=False)  # written by this test: trusted
    assert report.totals["all"].params == sum(t.numel() for t in loaded["model"].values())


def test_a_whole_pickled_module_needs_code_and_torch_agrees(files) -> None:
    report = paramscope.inspect(files["module.pt"])
    assert report.pickle.verdict is Verdict.NEEDS_CODE
    assert {
        "torch.nn.modules.container.Sequential",
        "torch.nn.modules.linear.Linear",
        "torch.nn.modules.batchnorm.BatchNorm1d",
    } <= set(report.pickle.needs_code)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(files["module.pt"], weights_only=True)
    module = torch.load(files["module.pt"], weights_only=False)  # written by this test: trusted
    assert report.totals["all"].params == stored_numel(module)


@pytest.mark.parametrize("name", ["trojan.pt", "trojan_legacy.pt"])
def test_a_trojaned_checkpoint_is_counted_warned_first_and_exits_1(files, name: str) -> None:
    text = cli("summary", str(files[name]))
    assert text.returncode == 1, text.stderr
    stdout = text.stdout
    assert stdout.lstrip().startswith("╭") and "MALICIOUS PICKLE" in stdout.splitlines()[0]
    assert "posix.system" in stdout and "runs commands" in stdout
    assert "torch.load(weights_only=False)" in stdout and "without executing anything" in stdout
    assert stdout.index("posix.system") < stdout.index("Layer (type)") < stdout.index("All ")
    stderr = text.stderr.strip().splitlines()
    assert len(stderr) == 1 and "malicious pickle: it reaches posix.system" in stderr[0]
    counted = json.loads(cli("summary", str(files[name]), "--format", "json").stdout)
    clean = json.loads(cli("summary", str(files["state_dict.pt"]), "--format", "json").stdout)
    assert counted["totals"] == clean["totals"]
    assert counted["totals"]["all"]["params"] == stored_numel(small_model())
    assert counted["pickle"]["malicious"] == [
        {"global": "posix.system", "does": "runs commands or touches files"}
    ]


def test_torch_refuses_the_trojan_too(files) -> None:
    """The verdict agrees with torch's own allowlist (which refuses before calling anything)."""
    for name in ("trojan.pt", "trojan_legacy.pt", "eval.pt"):
        with pytest.raises(pickle.UnpicklingError):
            torch.load(files[name], weights_only=True)


def test_python2_spellings_are_malicious_too(files) -> None:
    with zipfile.ZipFile(files["eval.pt"]) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    assert b"c__builtin__\neval\n" in pickled  # protocol 2 writes Python 2's module name
    report = paramscope.inspect(files["eval.pt"])
    assert report.pickle.verdict is Verdict.MALICIOUS
    assert report.pickle.malicious == (("builtins.eval", "evaluates code"),)
    explained = cli("explain", str(files["eval.pt"]))
    assert explained.returncode == 1 and "malicious pickle: it reaches builtins.eval" in explained.stderr


def test_markdown_opens_with_the_warning(files) -> None:
    markdown = cli("summary", str(files["trojan.pt"]), "--format", "md")
    assert markdown.returncode == 1
    assert markdown.stdout.startswith("> **Malicious pickle.**")
    assert "`posix.system`: runs commands or touches files" in markdown.stdout
    quiet = cli("summary", str(files["namespace.pt"]), "--format", "md")
    assert quiet.returncode == 0, quiet.stderr
    assert "Pickle needs code: loading it imports `argparse.Namespace`" in quiet.stdout


def test_quiet_verdicts_are_one_line_under_the_source(files) -> None:
    for name, phrase in (
        ("state_dict.pt", "Pickle is data only: torch.load(weights_only=True) loads it."),
        ("namespace.pt", "Pickle needs code: loading it imports argparse.Namespace"),
    ):
        result = cli("summary", str(files[name]))
        assert result.returncode == 0, result.stderr
        words = " ".join(result.stdout.split())  # as wide as the terminal: lines may wrap
        assert words.index(files[name].name) < words.index(phrase) < words.index("Layer (type)")
        assert "MALICIOUS" not in result.stdout


def check_pickle_shape(pickled: dict) -> None:
    assert set(pickled) == {"verdict", "needs_code", "malicious"}
    assert pickled["verdict"] in {verdict.value for verdict in Verdict}
    assert all(isinstance(name, str) for name in pickled["needs_code"])
    for entry in pickled["malicious"]:
        assert set(entry) == {"global", "does"} and all(isinstance(v, str) for v in entry.values())


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("state_dict.pt", "data-only"),
        ("namespace.pt", "needs-code"),
        ("module.pt", "needs-code"),
        ("trojan.pt", "malicious"),
        ("eval.pt", "malicious"),
    ],
)
def test_json_carries_the_verdict(files, name: str, verdict: str) -> None:
    data = json.loads(cli("summary", str(files[name]), "--format", "json").stdout)
    check_pickle_shape(data["pickle"])
    assert data["pickle"]["verdict"] == verdict
    assert (data["pickle"]["malicious"] != []) == (verdict == "malicious")
    assert (data["pickle"]["needs_code"] != []) == (verdict == "needs-code")
    assert isinstance(data["metadata"], dict)


def test_files_that_are_not_pickles_have_no_verdict(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file(small_model().state_dict(), tmp_path / "model.safetensors")
    data = json.loads(cli("summary", str(tmp_path / "model.safetensors"), "--format", "json").stdout)
    assert data["pickle"] is None and data["metadata"] == {}


def scan_folder(files, tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "scanned"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(files[name].read_bytes())
    return folder


def test_scan_fails_on_needs_code_only_when_asked(files, tmp_path: Path) -> None:
    folder = scan_folder(files, tmp_path, ["namespace.pt", "state_dict.pt"])
    assert cli("scan", str(folder)).returncode == 0
    assert cli("scan", str(folder), "--fail-on", "none").returncode == 0
    strict = cli("scan", str(folder), "--fail-on", "needs-code", "--format", "json")
    assert strict.returncode == 1, strict.stderr
    verdicts = {
        Path(line["path"]).name: line["pickle"] for line in map(json.loads, strict.stdout.splitlines())
    }
    assert {name: pickled["verdict"] for name, pickled in verdicts.items()} == {
        "namespace.pt": "needs-code",
        "state_dict.pt": "data-only",
    }
    for pickled in verdicts.values():
        check_pickle_shape(pickled)


def test_scan_fails_on_a_trojan_unless_told_not_to(files, tmp_path: Path) -> None:
    folder = scan_folder(files, tmp_path, ["state_dict.pt", "trojan.pt"])
    default = cli("scan", str(folder))
    assert default.returncode == 1, default.stderr
    rows = {Path(row.split("  ")[0]).name: row for row in default.stdout.splitlines()}
    assert rows["trojan.pt"].endswith("  pickle: MALICIOUS (posix.system)")
    assert rows["state_dict.pt"].endswith("  pickle: data-only")
    assert cli("scan", str(folder), "--fail-on", "needs-code").returncode == 1
    assert cli("scan", str(folder), "--fail-on", "none").returncode == 0
