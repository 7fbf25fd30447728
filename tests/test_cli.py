"""The `paramscope` command: formats, references, outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from paramscope.cli import cli
from paramscope.render import COMMANDS
from tests.golden_models import write_checkpoint
from tests.json_contract import validated

ROOT = Path(__file__).resolve().parent.parent
TINY = "tests/fixtures/models.py:tiny"


@pytest.fixture(autouse=True)
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_summary_text() -> None:
    result = run("summary", TINY)
    assert result.exit_code == 0, result.output
    assert "Sequential" in result.output
    assert "torch says" in result.output
    assert "sum(p.numel() for p in model.parameters()) = 34" in result.output


def test_summary_json_contract() -> None:
    result = run("summary", TINY, "--format", "json", "--arg", "frozen=True")
    assert result.exit_code == 0, result.output
    data = validated(result.output)
    assert (data["schema_version"], data["command"]) == (1, "summary")
    assert data["source"]["kind"] == "torch"
    assert set(data["totals"]) == {"trainable", "frozen", "state", "unknown", "all"}
    assert data["totals"]["frozen"] == {"tensors": 2, "params": 16, "bytes": 64}
    assert data["totals"]["trainable"]["params"] == 8 + 10
    assert data["conventions"]["torch"] == {
        "trainable_params": 18,
        "non_trainable_params": 16,
        "total_params": 34,
    }
    assert data["conventions"]["keras"]["non_trainable_params"] == 16 + 9  # + BatchNorm buffers
    first = data["root"]["children"][0]
    assert first["path"] == "0" and first["type"] == "Linear"
    assert first["tensors"][0] == {
        "name": "weight",
        "path": "0/weight",
        "key": "0.weight",
        "shape": [4, 3],
        "dtype": "float32",
        "role": "frozen",
        "params": 12,
        "bytes": 48,
        "shared_with": None,
        "persistent": None,
        "quantized": None,
    }
    assert data["pickle"] is None and data["metadata"] == {}  # a live model: no file around it


def test_factory_args_are_literals() -> None:
    result = run("summary", TINY, "--arg", "width=8", "--format", "json")
    assert validated(result.output)["totals"]["all"]["params"] == (3 * 8 + 8) + (2 * 8 + 17) + (8 * 2 + 2)


def test_module_reference_and_dict_factory() -> None:
    result = run("summary", "tests.fixtures.models:with_optimizer", "--format", "md")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("## Sequential (Sequential)")
    assert "| trainable |" in result.output


def test_instance_reference() -> None:
    assert run("summary", "tests.fixtures.models:INSTANCE").exit_code == 0


def test_keras_reference_with_args() -> None:
    result = run(
        "summary",
        "keras.applications:VGG16",
        "--arg",
        "include_top=False",
        "--arg",
        "weights=None",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = validated(result.output)
    assert data["totals"]["trainable"] == {"tensors": 26, "params": 14_714_688, "bytes": 58_858_752}
    assert data["source"]["backend"] == "torch"


def test_output_file_written_atomically(tmp_path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("old")
    result = run("summary", TINY, "--format", "md", "--output", str(target))
    assert result.exit_code == 0 and result.output == ""
    assert target.read_text().startswith("## Sequential")
    assert os.listdir(tmp_path) == ["summary.md"]  # no temporary file left behind


def test_depth_and_show_tensors() -> None:
    shallow = run("summary", TINY, "--depth", "0").output
    deep = run("summary", TINY, "--show-tensors").output
    assert "Linear" not in shallow and "Linear" in deep
    assert "weight (4, 3) float32" in deep and "running_mean (4,)" in deep


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("no_such_module_xyz:factory", [], "no_such_module_xyz: cannot import module"),
        ("tests/fixtures/missing.py:f", [], "tests/fixtures/missing.py: no such Python file"),
        ("tests.fixtures.models:nothing", [], "has no attribute 'nothing'"),
        ("tests.fixtures.models:broken", [], "the factory raised RuntimeError: no weights here"),
        (
            "tests.fixtures.models:not_a_model",
            [],
            "got a builtins.list, which is not a Keras or PyTorch model",
        ),
        ("tests.fixtures.models:bad_dict", [], "a factory's dict needs the key 'model'"),
        ("tests.fixtures.models:INSTANCE", ["--arg", "x=1"], "is not a factory"),
        (TINY, ["--arg", "novalue"], "expected key=value"),
        ("does/not/exist.bin", [], "no such file"),
        ("README.md", [], "README.md: unrecognised file format"),
    ],
)
def test_bad_input_is_one_line_exit_2(model: str, args: list[str], message: str, tmp_path) -> None:
    output = tmp_path / "out.json"
    result = run("summary", model, *args, "--output", str(output))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paramscope: error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_bad_input_in_a_real_process_is_one_line_without_traceback() -> None:
    """The cases above through CliRunner; this one as a user's shell runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "summary", "tests.fixtures.models:broken"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr
        == "paramscope: error: tests.fixtures.models:broken: the factory raised RuntimeError: no weights here\n"
    )


def test_debug_shows_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "paramscope.cli", "summary", "tests.fixtures.models:broken", "--debug"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "no weights here" in result.stderr


def test_usage_error_exit_2() -> None:
    assert run("summary", TINY, "--format", "yaml").exit_code == 2


def test_console_script_installed() -> None:
    result = subprocess.run(
        [Path(sys.executable).parent / "paramscope", "--version"], capture_output=True, text=True, check=True
    )
    assert "paramscope" in result.stdout


def test_explain_text() -> None:
    result = run("explain", TINY)
    assert result.exit_code == 0, result.output
    assert "(in_features + 1) · out_features" in result.output
    assert "= (3 + 1) × 4 = 16" in result.output
    assert "What your numbers mean" in result.output


def test_explain_json_schema() -> None:
    result = run("explain", TINY, "--format", "json", "--arg", "frozen=True")
    assert result.exit_code == 0, result.output
    data = validated(result.output)
    assert (data["schema_version"], data["command"]) == (1, "explain")
    first = data["layers"][0]
    assert set(first) == {"path", "type", "params", "tensors", "formula", "text", "problem", "adapter"}
    assert first["adapter"] is None  # a plain layer: no peft adapter split
    assert first["formula"] == {
        "symbolic": "(in_features + 1) · out_features",
        "expression": "(3 + 1) × 4",
        "value": 16,
        "generic": False,
    }
    assert [t["role"] for t in first["tensors"]] == ["frozen", "frozen"]
    assert "Frozen: 2 tensors (16 params)" in data["answer"]


def test_explain_layer_glob_and_markdown() -> None:
    result = run("explain", TINY, "--layer", "3", "--format", "md")
    assert result.exit_code == 0, result.output
    assert "### 3 (Linear) · 10 params" in result.output and "### 0 (Linear)" not in result.output


def test_explain_bad_input_exit_2() -> None:
    result = run("explain", "tests.fixtures.models:broken")
    assert result.exit_code == 2 and result.stderr.startswith("paramscope: error: ")


def test_freeze_keeps_command_line_order() -> None:
    later_unfreeze = run("freeze", TINY, "--freeze", "all", "--unfreeze", "3", "--format", "json")
    later_freeze = run("freeze", TINY, "--unfreeze", "3", "--freeze", "all", "--format", "json")
    assert later_unfreeze.exit_code == 0, later_unfreeze.output
    first, second = validated(later_unfreeze.output), validated(later_freeze.output)
    assert set(first) >= {"before", "after", "changed", "findings", "snippet"}
    assert [r["action"] for r in first["rules"]] == ["freeze", "unfreeze"]
    assert first["after"]["trainable"]["params"] == 10  # the last Linear, unfrozen after all was frozen
    assert second["after"]["trainable"]["params"] == 0


def test_freeze_selector_matching_nothing_exit_2() -> None:
    result = run("freeze", TINY, "--freeze", "nope")
    assert result.exit_code == 2 and "selector 'nope' matches no layer" in result.stderr


# ------------------------------------------------------------ one envelope, one source object


def test_lint_json_carries_the_same_source_as_summary() -> None:
    summary = validated(run("summary", TINY, "--format", "json").output)
    linted = run("lint", "tests/fixtures/models.py:frozen_all", "--format", "json")
    assert linted.exit_code == 1, linted.output  # nothing left to train: an error finding
    data = validated(linted.output)
    assert data["command"] == "lint" and data["source"] == summary["source"]
    assert set(data["source"]) == {"kind", "framework_version", "backend", "path"}
    assert [finding["rule"] for finding in data["findings"]] == ["nothing-to-train", "frozen-bn-train-mode"]
    assert (data["pickle"], data["metadata"]) == (None, {})


def test_lint_markdown_lists_the_findings() -> None:
    result = run("lint", "tests/fixtures/models.py:frozen_all", "--format", "md")
    assert result.exit_code == 1
    assert result.output.startswith("## Lint: Sequential (Sequential) — 2 findings\n\nSource: torch ")
    assert "- **nothing-to-train**: " in result.output


def _scan(folder: Path, *options: str) -> subprocess.CompletedProcess:
    """scan in a child process: its workers are processes, forked from a plain interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "paramscope", "scan", str(folder), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_scan_json_is_one_envelope_with_a_source_per_file(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path)
    result = _scan(tmp_path, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = validated(result.stdout)
    assert data["command"] == "scan"
    assert data["source"] == {
        "kind": "folder",
        "framework_version": None,
        "backend": None,
        "path": str(tmp_path),
    }
    summary = validated(run("summary", str(checkpoint), "--format", "json").output)
    [entry] = data["files"]
    assert entry["source"]["path"] == summary["source"]["path"] == str(checkpoint)
    assert entry["source"]["kind"] == summary["source"]["kind"] == "torch_file"
    written = torch.load(checkpoint, weights_only=False)["state_dict"]  # written by this test: trusted
    assert entry["params"] == summary["totals"]["all"]["params"] == sum(t.numel() for t in written.values())
    assert entry["pickle"]["verdict"] == summary["pickle"]["verdict"] == "needs-code"


def test_scan_markdown_is_a_table(tmp_path: Path) -> None:
    write_checkpoint(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    result = _scan(tmp_path, "--format", "md")
    assert result.returncode == 1, result.stderr  # a checkpoint could not be read
    lines = result.stdout.splitlines()
    assert lines[0].startswith("## Scan: ") and lines[2].startswith("| File | Format | Tensors | Params |")
    assert lines[4].startswith(f"| `{tmp_path / 'checkpoint.pt'}` | torch_file | 9 | 43 | ")
    assert lines[4].endswith(" | needs-code (`argparse.Namespace`) |")
    assert lines[5] == f"| `{tmp_path / 'empty.pt'}` | | | | | | error: empty file |"


# --------------------------------------------------------------------------- the schema command


def test_schema_prints_each_commands_schema() -> None:
    for command in COMMANDS:
        result = run("schema", command)
        assert result.exit_code == 0, result.output
        schema = json.loads(result.output)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["command"] == {"const": command}
        assert schema["required"][:3] == ["schema_version", "command", "source"]


def test_schema_without_a_command_covers_them_all(tmp_path: Path) -> None:
    result = run("schema", "--output", str(tmp_path / "schema.json"))
    assert result.exit_code == 0 and result.output == ""
    schema = json.loads((tmp_path / "schema.json").read_text())
    assert [branch["$ref"] for branch in schema["oneOf"]] == [f"#/$defs/{command}" for command in COMMANDS]


def test_schema_of_an_unknown_command_is_a_usage_error() -> None:
    assert run("schema", "memoir").exit_code == 2
