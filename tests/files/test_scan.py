"""paramscope scan: every checkpoint under a folder, one line each, errors reported, exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.files.corpus import global_call, torch_zip
from tests.files.writers import write_all

ROOT = Path(__file__).resolve().parents[2]


def test_scan_folder(tmp_path: Path) -> None:
    written = write_all(tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')  # beside real weights: not a checkpoint
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "evil.pt").write_bytes(torch_zip(global_call("os", "system", "touch /tmp/paramscope-scan-x")))
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "scan", str(tmp_path), "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # one checkpoint could not be read
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {Path(line["path"]).name: line for line in lines}
    assert "config.json" not in by_name and "notes.txt" not in by_name
    assert by_name["evil.pt"]["error"] == "refused global os.system"
    for path in written:
        assert by_name[path.name]["error"] is None
    assert by_name["checkpoint.pth"]["params"] == by_name["model.safetensors"]["params"]
    assert not Path("/tmp/paramscope-scan-x").exists()


def test_scan_clean_folder_text(tmp_path: Path) -> None:
    write_all(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "scan", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "state_dict.pt  torch_file  10 tensors  20,196 params" in result.stdout


def test_scan_missing_folder_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "scan", str(tmp_path / "nope")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "not a folder" in result.stderr
