"""paramscope scan: every checkpoint under a folder, one line each with its pickle's verdict,
errors reported, exit 1 (see tests/files/test_verdicts.py for --fail-on on real files)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import paramscope
from paramscope.core.report import Report
from paramscope.ops.scan import MAX_VERDICT_NAMES, ScanLine, _parse_answer, scan
from paramscope.sources.detect import read_file
from tests.files.corpus import WEIGHT_STORAGE, beside_weights, global_call, torch_zip
from tests.files.writers import written_files
from tests.json_contract import validated

ROOT = Path(__file__).resolve().parents[2]


def test_scan_folder(tmp_path: Path, tmp_path_factory) -> None:
    written = written_files(tmp_path_factory, tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')  # beside real weights: not a checkpoint
    (tmp_path / "notes.txt").write_text("hello")
    payload = global_call("os", "system", "touch /tmp/paramscope-scan-x")
    (tmp_path / "evil.pt").write_bytes(torch_zip(beside_weights(payload), WEIGHT_STORAGE))
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "scan", str(tmp_path), "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # one checkpoint is malicious
    lines = validated(result.stdout)["files"]
    by_name = {Path(line["source"]["path"]).name: line for line in lines}
    assert "config.json" not in by_name and "notes.txt" not in by_name
    evil = by_name["evil.pt"]
    assert (evil["error"], evil["params"]) == (None, 6)
    assert evil["pickle"] == {
        "verdict": "malicious",
        "needs_code": [],
        "malicious": [{"global": "os.system", "does": "runs commands or touches files"}],
        "refused_protocols": [],
    }
    for path in written:
        assert by_name[path.name]["error"] is None
    pickled = {name for name, line in by_name.items() if line["pickle"] is not None}
    assert pickled == {
        "evil.pt",
        "state_dict.pt",
        "legacy.pt",
        "checkpoint.pth",
        "lightning.ckpt",
        "parameters.pt",
    }
    assert by_name["state_dict.pt"]["pickle"]["verdict"] == "data-only"
    assert by_name["checkpoint.pth"]["params"] == by_name["model.safetensors"]["params"]
    assert not Path("/tmp/paramscope-scan-x").exists()


def test_scan_clean_folder_text(tmp_path: Path, tmp_path_factory) -> None:
    written_files(tmp_path_factory, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "scan", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {Path(row.split("  ")[0]).name: row for row in result.stdout.splitlines()}
    assert rows["state_dict.pt"].startswith(
        f"{tmp_path}/state_dict.pt  torch_file  10 tensors  20,196 params"
    )
    assert rows["state_dict.pt"].endswith("  pickle: data-only")
    assert "pickle:" not in rows["model.safetensors"]


def test_scan_missing_folder_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "scan", str(tmp_path / "nope")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "not a folder" in result.stderr


# --------------------------------------------------------------------------- hostile folders

CHECKPOINT_PARAMS = 15  # what _write_checkpoint stores: a 3×4 weight and a bias of 3


def _write_checkpoint(path: Path) -> Path:
    torch.save({"weight": torch.zeros(3, 4), "bias": torch.zeros(3)}, path)
    return path


def _run_scan(folder: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "scan", str(folder), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,  # a scan that blocks fails the test instead of hanging the suite
    )


def _names(lines: list[ScanLine]) -> list[str]:
    return [Path(line.path).name for line in lines]


def test_special_files_and_linked_folders_are_never_opened(tmp_path: Path) -> None:
    folder = tmp_path / "scanned"
    folder.mkdir()
    _write_checkpoint(folder / "model.pt")
    os.mkfifo(folder / "fifo.pt")  # opening it for reading would wait for a writer forever
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(folder / "socket.pt"))
        (folder / "null.pt").symlink_to("/dev/null")
        (folder / "loop").symlink_to(folder, target_is_directory=True)
        outside = tmp_path / "outside"
        outside.mkdir()
        _write_checkpoint(outside / "other.pt")
        (folder / "linked").symlink_to(outside, target_is_directory=True)
        result = _run_scan(folder, "--format", "json")
    assert result.returncode == 1, result.stderr  # named like checkpoints, they are listed as errors
    lines = validated(result.stdout)["files"]
    assert [(Path(line["source"]["path"]).name, line["params"], line["error"]) for line in lines] == [
        ("fifo.pt", 0, "a FIFO, not a regular file"),
        ("model.pt", CHECKPOINT_PARAMS, None),
        ("null.pt", 0, "a character device, not a regular file"),
        ("socket.pt", 0, "a socket, not a regular file"),
    ]


def _read_or_hang(path: Path) -> Report:
    """read_file, except that a-hangs.pt starts a child process and never finishes."""
    if path.name == "a-hangs.pt":
        child = subprocess.Popen(["sleep", "600"])
        (path.parent / "child.pid").write_text(str(child.pid))
        time.sleep(600)
    return read_file(path)


def _is_gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie its new parent has yet to reap)."""
    for _ in range(200):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)  # SIGKILL is delivered when the process next runs
    return False


def test_a_file_that_hangs_gets_its_line_and_the_scan_goes_on(tmp_path: Path) -> None:
    for name in ("a-hangs.pt", "b.pt", "c.pt"):
        _write_checkpoint(tmp_path / name)
    # 5 s: the files that do not hang must be read within it on a loaded two-core machine
    lines = scan(tmp_path, workers=2, timeout=5, read=_read_or_hang)
    assert _names(lines) == ["a-hangs.pt", "b.pt", "c.pt"]  # folder order, not finishing order
    assert lines[0].error == "exceeded 5 s"
    assert [(line.error, line.params) for line in lines[1:]] == [(None, CHECKPOINT_PARAMS)] * 2
    assert _is_gone(int((tmp_path / "child.pid").read_text()))  # killed with the worker that started it


def _read_or_hoard(path: Path) -> Report:
    """read_file, except that b-hoards.pt allocates 1 MiB after 1 MiB (1 GiB if nothing stops it)."""
    if path.name == "b-hoards.pt":
        hoard = [bytearray(1024 * 1024) for _ in range(1024)]
        assert hoard, "the memory limit did not stop the allocation"
    return read_file(path)


def test_a_file_that_exhausts_memory_gets_its_line_and_the_scan_goes_on(tmp_path: Path) -> None:
    for name in ("a.pt", "b-hoards.pt", "c.pt", "d.pt"):
        _write_checkpoint(tmp_path / name)
    lines = scan(tmp_path, workers=1, max_memory=64 * 1024 * 1024, read=_read_or_hoard)
    assert _names(lines) == ["a.pt", "b-hoards.pt", "c.pt", "d.pt"]
    assert lines[1].error == "exceeded the memory limit"
    assert [line.params for line in lines if line.error is None] == [CHECKPOINT_PARAMS] * 3


def _read_or_die(path: Path) -> Report:
    """read_file, except that the worker reading b-dies.pt is killed by a signal."""
    if path.name == "b-dies.pt":
        os.kill(os.getpid(), signal.SIGKILL)
    return read_file(path)


def test_a_worker_killed_by_a_signal_is_replaced(tmp_path: Path) -> None:
    for name in ("a.pt", "b-dies.pt", "c.pt"):
        _write_checkpoint(tmp_path / name)
    lines = scan(tmp_path, workers=1, read=_read_or_die)
    assert [(line.error, line.params) for line in lines] == [
        (None, CHECKPOINT_PARAMS),
        ("the reader crashed (SIGKILL)", 0),
        (None, CHECKPOINT_PARAMS),
    ]


def test_workers_are_spawned_while_threads_run(tmp_path: Path) -> None:
    """Forking a process that runs threads can deadlock the child: scan spawns its workers then."""
    for name in ("a.pt", "b.pt"):
        _write_checkpoint(tmp_path / name)
    stop = threading.Event()
    waiting = threading.Thread(target=stop.wait)
    waiting.start()
    try:
        lines = paramscope.scan(tmp_path, workers=2).lines
    finally:
        stop.set()
        waiting.join()
    assert [(line.error, line.params) for line in lines] == [(None, CHECKPOINT_PARAMS)] * 2


FORGED_NAMES = {
    b"two\nlines.pt": "two\\nlines.pt",
    b"\x1b[2Jclear.pt": "\\x1b[2Jclear.pt",
    b"bad\xff.pt": "bad\\udcff.pt",  # not UTF-8: os.walk gives a lone surrogate
}


def test_file_names_cannot_forge_output(tmp_path: Path) -> None:
    for name in FORGED_NAMES:
        os.rename(_write_checkpoint(tmp_path / "written.pt"), os.path.join(os.fsencode(tmp_path), name))
    text = _run_scan(tmp_path)
    assert text.returncode == 0, text.stderr
    rows = text.stdout.split("\n")[:-1]
    assert all(row.isprintable() for row in rows)  # no newline, escape or lone surrogate within a row
    assert sorted(row.split("  ")[0].rsplit("/", 1)[1] for row in rows) == sorted(FORGED_NAMES.values())
    listed = _run_scan(tmp_path, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    paths = [line["source"]["path"] for line in validated(listed.stdout)["files"]]
    assert all(path.isprintable() for path in paths)
    assert sorted(Path(path).name for path in paths) == sorted(FORGED_NAMES.values())


def test_damaged_files_named_like_checkpoints_are_listed(tmp_path: Path) -> None:
    whole = _write_checkpoint(tmp_path / "whole.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint, not named like one")
    (tmp_path / "empty.txt").write_bytes(b"")
    lines = {Path(line.path).name: line for line in paramscope.scan(tmp_path).lines}
    assert sorted(lines) == ["empty.safetensors", "truncated.pt", "whole.pt"]
    assert lines["empty.safetensors"].error == "empty file"
    assert lines["truncated.pt"].error and lines["truncated.pt"].params == 0
    assert lines["whole.pt"].params == CHECKPOINT_PARAMS


def test_timeout_and_max_memory_options(tmp_path: Path) -> None:
    # a 20,000-tensor header: reading it takes megabytes and more than a microsecond
    save_file({f"layer{i}.weight": torch.zeros(1) for i in range(20_000)}, tmp_path / "many.safetensors")
    roomy = _run_scan(tmp_path, "--format", "json", "--timeout", "60", "--max-memory", "512")
    assert roomy.returncode == 0, roomy.stderr
    assert validated(roomy.stdout)["files"][0]["tensors"] == 20_000
    tight = _run_scan(tmp_path, "--format", "json", "--max-memory", "1")
    assert tight.returncode == 1, tight.stderr
    assert validated(tight.stdout)["files"][0]["error"] == "exceeded the memory limit"
    hurried = _run_scan(tmp_path, "--format", "json", "--timeout", "0.000001")
    assert hurried.returncode == 1, hurried.stderr
    error = validated(hurried.stdout)["files"][0]["error"]
    assert error == "exceeded 1e-06 s" or error.startswith("reading took longer"), error


def test_recognised_formats_are_skipped_not_failed(tmp_path: Path) -> None:
    """A CoreML model is no error: its line says it was recognised and not read, exit 0."""
    from tests.files.test_tensorflow_files import coreml_message

    _write_checkpoint(tmp_path / "model.pt")
    (tmp_path / "model.mlmodel").write_bytes(coreml_message())
    result = _run_scan(tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        f"{tmp_path / 'model.mlmodel'}  skipped: recognised: CoreML model, not read"
        in result.stdout.splitlines()
    )


COUNTS_ANSWER = {"kind": "torch_file", "tensors": 1, "params": 6, "bytes": 24}
COUNTS_ANSWER |= {"trainable": 0, "frozen": 0, "state": 0, "unknown": 6}


def _answer(pickle: object) -> bytes:
    return json.dumps({**COUNTS_ANSWER, "pickle": pickle}).encode()


def test_a_workers_verdict_is_validated_and_escaped() -> None:
    """A worker reads hostile files: its verdict is checked field by field, names escaped."""
    verdict = {
        "verdict": "malicious",
        "needs_code": ["a\x1b[2Jb"],
        "malicious": [{"global": "os.system", "does": "x"}],
        "refused_protocols": [],
    }
    line = _parse_answer("m.pt", _answer(verdict))
    assert line.pickle.needs_code == ("a\\x1b[2Jb",) and line.pickle.malicious == (("os.system", "x"),)
    assert line.as_dict()["pickle"] == {**verdict, "needs_code": ["a\\x1b[2Jb"]}
    assert _parse_answer("m.pt", _answer(None)).pickle is None


@pytest.mark.parametrize(
    "pickle",
    [
        "malicious",
        {"verdict": "harmless", "needs_code": [], "malicious": []},
        {"verdict": "malicious", "needs_code": [], "malicious": [["os.system", "x"]]},
        {"verdict": "needs-code", "needs_code": [7], "malicious": []},
        {"verdict": "needs-code", "needs_code": ["a"] * (MAX_VERDICT_NAMES + 1), "malicious": []},
        {"verdict": "data-only", "needs_code": [], "malicious": [], "extra": 1},
    ],
)
def test_a_malformed_verdict_is_an_invalid_answer(pickle: object) -> None:
    with pytest.raises(ValueError):
        _parse_answer("m.pt", _answer(pickle))
