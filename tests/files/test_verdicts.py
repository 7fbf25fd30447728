"""The pickle verdict on files torch itself writes, held to what torch.load does with them.

data-only: ``torch.load(weights_only=True)`` loads it. needs-code: it does not (the file names
classes from other packages). malicious: a trojaned checkpoint — real weights beside an object
whose ``__reduce__`` calls ``os.system`` — is read like any checkpoint, its counts those of its
weights, with a red warning first and exit 1; the payload never runs.
"""

from __future__ import annotations

import argparse
import collections
import io
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
from tests.json_contract import validated

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
    counted = validated(cli("summary", str(files[name]), "--format", "json").stdout)
    clean = validated(cli("summary", str(files["state_dict.pt"]), "--format", "json").stdout)
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
    assert set(pickled) == {"verdict", "needs_code", "malicious", "refused_protocols"}
    assert pickled["refused_protocols"] == []  # torch.save writes protocol 2
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
    data = validated(cli("summary", str(files[name]), "--format", "json").stdout)
    check_pickle_shape(data["pickle"])
    assert data["pickle"]["verdict"] == verdict
    assert (data["pickle"]["malicious"] != []) == (verdict == "malicious")
    assert (data["pickle"]["needs_code"] != []) == (verdict == "needs-code")
    assert isinstance(data["metadata"], dict)


def test_files_that_are_not_pickles_have_no_verdict(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file(small_model().state_dict(), tmp_path / "model.safetensors")
    data = validated(cli("summary", str(tmp_path / "model.safetensors"), "--format", "json").stdout)
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
        Path(line["source"]["path"]).name: line["pickle"] for line in validated(strict.stdout)["files"]
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


@pytest.mark.parametrize("protocol", [1, 2, 3, 4, 5])
def test_data_only_names_the_protocols_weights_only_refuses(protocol: int, tmp_path: Path) -> None:
    """torch's weights_only loader implements the opcodes of protocols 2 and 3: a data-only
    file written in another protocol imports nothing, yet weights_only=True refuses it."""
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path, pickle_protocol=protocol)
    verdict = paramscope.inspect(path).pickle
    assert verdict.verdict.value == "data-only"
    try:
        torch.load(path, weights_only=True)
        loads = True
    except Exception:
        loads = False
    assert loads == (verdict.refused_protocols == ())


def test_new_dtypes_and_quantized_tensors_are_read(tmp_path: Path) -> None:
    """UntypedStorage (float8, uint16: the dtype comes from _rebuild_tensor_v3) and
    _rebuild_qtensor records, as torch.load(weights_only=True) reads them. (torch 2.13 cannot
    load the legacy format's copy of these dtypes itself, so only the zip format is compared.)"""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = {
            "f8": torch.zeros(4, 3).to(torch.float8_e4m3fn),
            "u16": torch.zeros(5, dtype=torch.uint16),
            "q": torch.quantize_per_tensor(torch.rand(3, 3), 0.1, 2, torch.qint8),
        }
    path = tmp_path / "model.pt"
    torch.save(state, path)
    loaded = torch.load(path, weights_only=True)
    report = paramscope.inspect(path)
    assert {t.path: (t.shape, t.params) for t in report.tensors()} == {
        name: (tuple(t.shape), t.numel()) for name, t in loaded.items()
    }
    assert report.pickle.verdict.value == "data-only"


EVASIONS = [  # (module, name) a pickle can name, each resolving to something that runs code
    ("torch", "os.system"),
    ("torch.serialization", "os.system"),
    ("argparse", "_os.system"),
    ("torch", "os"),
    ("torch.storage", "_load_from_bytes"),
    ("torch.fx.graph_module", "reduce_graph_module"),
    ("cProfile", "run"),
    ("site", "addsitedir"),
    ("pydoc", "pipepager"),
    ("uuid", "_popen"),
    ("_posixsubprocess", "fork_exec"),
    ("torch.ops", "load_library"),
    ("pathlib", "Path.write_text"),
    ("sqlite3", "connect"),
    ("collections", "OrderedDict.__init__.__globals__"),
    ("builtins", "type"),
    ("logging", "FileHandler"),
]


@pytest.mark.parametrize(("module", "name"), EVASIONS, ids=[f"{m}.{n}" for m, n in EVASIONS])
def test_names_that_reach_code_are_malicious(module: str, name: str, tmp_path: Path) -> None:
    """Dotted attribute paths (STACK_GLOBAL resolves them through a module's imports), dunder
    attributes and the less famous ways to run a command: all malicious, beside real weights."""
    from tests.files.pickles import global_, state_dict, tensor, text, torch_zip

    payload = global_(module, name) + b"(" + text("touch MARKER") + b"tR"
    path = tmp_path / "model.pt"
    path.write_bytes(torch_zip(state_dict([("w", tensor("0", 6)), ("x", payload)]), {"0": 24}))
    report = paramscope.inspect(path)
    assert report.pickle.verdict.value == "malicious", report.pickle
    assert report.totals["all"].params == 6


def test_a_malicious_pickle_without_tensors_keeps_its_verdict(tmp_path: Path) -> None:
    """The usual exploit carries no weights: its verdict is the report (exit 1), not 'holds no
    tensors' (exit 2)."""
    from tests.files.pickles import PROTO, STOP, global_, text, torch_zip

    path = tmp_path / "model.pt"
    path.write_bytes(
        torch_zip(PROTO + global_("os", "system") + b"(" + text("touch MARKER") + b"tR" + STOP, {})
    )
    report = paramscope.inspect(path)
    assert report.pickle.verdict.value == "malicious" and report.totals["all"].tensors == 0
    result = subprocess.run(
        [sys.executable, "-m", "paramscope", "summary", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    harmless = tmp_path / "empty.pt"
    harmless.write_bytes(torch_zip(PROTO + b"}" + STOP, {}))
    with pytest.raises(paramscope.InputError, match="holds no tensors"):
        paramscope.inspect(harmless)


def test_a_call_in_the_legacy_magic_is_read_and_judged(tmp_path: Path) -> None:
    """torch.load unpickles the legacy format's first pickle (the magic number) before it checks
    it: `max(os.system(cmd), MAGIC)` there runs, then the model loads normally."""
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    magic_end = 2 + 2 + 10 + 1  # PROTO 2, LONG1 of 10 bytes, STOP
    call = (
        b"\x80\x02cbuiltins\nmax\n(cos\nsystem\n(X\x0c\x00\x00\x00touch MARKERtR"
        + data[2 : magic_end - 1]
        + b"tR."
    )
    path = tmp_path / "legacy.pt"
    path.write_bytes(call + data[magic_end:])
    report = paramscope.inspect(path)
    assert report.pickle.verdict.value == "malicious"
    assert report.totals["all"].params == 8


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_object_arrays_are_walked_and_judged(suffix: str, tmp_path: Path) -> None:
    """`np.save` of a dict of arrays: the arrays count and the verdict is needs-code (np.load
    needs allow_pickle=True); the same file carrying a payload is malicious, arrays or not."""
    import numpy as np

    weights = np.array({"w": np.zeros((3, 4), "float32"), "b": {"bias": np.arange(5)}}, dtype=object)
    trojan = np.array([SystemCall(f"touch {tmp_path / 'MARKER'}")], dtype=object)
    for name, value, verdict, tensors in (
        ("weights", weights, "needs-code", 2),
        ("trojan", trojan, "malicious", 0),
    ):
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".npy":
            np.save(path, value, allow_pickle=True)
        else:
            np.savez(path, value=value)
        report = paramscope.inspect(path)
        assert (report.pickle.verdict.value, report.totals["all"].tensors) == (verdict, tensors)
    assert not (tmp_path / "MARKER").exists()
