"""The renderers beyond their golden files (tests/test_golden.py): narrow terminals, rich's
own printing, what a file carries beside its tensors, and which formats import rich.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import paramscope
from paramscope.core.report import Report
from paramscope.render import COMMANDS, render
from tests import golden_models as models
from tests.json_contract import validated

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def keras_transfer_report() -> Report:
    return models.keras_transfer_report(models.keras_transfer())


def test_names_and_numbers_never_truncated_on_narrow_terminals(keras_transfer_report: Report) -> None:
    text = render("summary", keras_transfer_report, "text", depth=2, width=50)
    lines = text.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("Layer (type)")) :]
    assert table[0].split() == ["Layer", "(type)", "Trains", "Params"]  # decoration dropped first
    assert table[1].split() == ["transfer", "(Functional)", "partial", "73"]
    assert table[4].split() == ["│", "└─", "bn", "(BatchNormalization)", "N", "20"]
    assert "…" not in text and all(len(line) <= 50 for line in lines)


def test_report_prints_with_rich() -> None:
    report = models.torch_tied_norm_report(models.torch_tied_norm())
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(report)
    assert console.file.getvalue() == render("summary", report, "text")


def test_an_unknown_command_or_format_is_refused(keras_transfer_report: Report) -> None:
    with pytest.raises(ValueError, match="no renderer for 'summary' in 'pdf'"):
        render("summary", keras_transfer_report, "pdf")
    with pytest.raises(ValueError, match="no renderer for 'memoir'"):
        render("memoir", keras_transfer_report, "json")


# ------------------------------------------------- JSON and Markdown never import rich

TORCH_MODEL = "tests/golden_models.py:torch_tied_norm"
COMMAND_LINES = {
    "summary": ["summary", TORCH_MODEL],
    "explain": ["explain", TORCH_MODEL],
    "freeze": ["freeze", TORCH_MODEL, "--freeze", "embedding"],
    "lint": ["lint", TORCH_MODEL],
    "audit": ["audit", "tests/golden_models.py:audited_net"],
    "scan": ["scan", "{folder}"],
    "memory": ["memory", TORCH_MODEL],
    "diff": ["diff", "{folder}/checkpoint.pt", "{folder}/checkpoint.pt"],
}


def test_every_command_is_checked_for_rich() -> None:
    assert set(COMMAND_LINES) == set(COMMANDS)


def test_json_and_markdown_do_not_import_rich(tmp_path: Path) -> None:
    """rich is a tenth of a cold `--format json` run on a file: JSON and Markdown leave it out.
    Every command in turn, both formats, through the CLI, in one fresh interpreter that says
    after each command whether rich is imported: the first command that imports it is named
    (those after it go unchecked until it is fixed)."""
    models.write_checkpoint(tmp_path)
    runs = [
        (
            command,
            [part.format(folder=tmp_path) for part in arguments],
            [(fmt, str(tmp_path / f"{command}.{fmt}")) for fmt in ("json", "md")],
        )
        for command, arguments in COMMAND_LINES.items()
    ]
    code = (
        "import sys\n"
        "from paramscope.cli import cli\n"
        f"for command, arguments, outputs in {runs!r}:\n"
        "    for fmt, output in outputs:\n"
        "        try:\n"
        "            cli([*arguments, '--format', fmt, '--output', output], standalone_mode=False)\n"
        "        except SystemExit:\n"  # exit 1 for a finding is fine here: the outputs are written
        "            pass\n"
        "    print(command, 'rich' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr
    said = dict(line.split() for line in result.stdout.splitlines())
    assert list(said) == list(COMMAND_LINES), result.stdout + result.stderr
    importing = [command for command, imported in said.items() if imported == "True"]
    assert not importing, f"{importing[0]}: JSON or Markdown imported rich"
    for command in COMMAND_LINES:
        assert validated((tmp_path / f"{command}.json").read_text())["command"] == command
        assert (tmp_path / f"{command}.md").read_text().startswith(("## ", "> **Malicious"))


# ------------------------------------------------------------- what a file carries beside its tensors

NARROW = 60


def torch_file_report(tmp_path: Path) -> Report:
    """The report of a state dict written by torch (a pickle: it has a verdict)."""
    import torch

    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    return paramscope.inspect(path)


def deep_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_METADATA = {
    "epoch": 3,
    "hyper_parameters": {"lr": 0.001, "layers": [64, 64], "name": "res\x1b[2Jnet\nINJECTED"},
    "deep": deep_list(5000),  # json.dumps would recurse past the interpreter's limit
    "huge": list(range(1_000_000)),
    "long\nINJECTED key": "x" * 10_000,
    "pipe": "a | b",
    **{f"key{i}": i for i in range(30)},
}


def block_after(text: str, title: str) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    return lines[lines.index(title) :]


def test_metadata_block_is_short_bounded_and_escaped(tmp_path: Path) -> None:
    report = torch_file_report(tmp_path)
    report.metadata = HOSTILE_METADATA
    text = render("summary", report, "text", width=NARROW)
    block = block_after(text, "File metadata:")
    assert len(block) == 1 + 12 + 1  # the title, twelve keys, how many more
    assert block[-1].strip() == f"… and {len(HOSTILE_METADATA) - 12} more keys (--format json lists them all)"
    assert all(len(line) <= NARROW for line in text.splitlines())
    assert "\x1b" not in text and not any(line.startswith("INJECTED") for line in text.splitlines())
    rows = {line.split()[0]: line for line in block[1:-1]}
    assert rows["epoch"].endswith("  3")
    assert '"lr": 0.001, "layers": [64, 64]' in rows["hyper_parameters"]
    assert rows["deep"].split()[-1].startswith("[[[[") and rows["deep"].endswith("…")
    assert rows["long\\nINJECTED"].endswith("xxx…")


def test_metadata_in_markdown_is_a_small_escaped_table(tmp_path: Path) -> None:
    report = torch_file_report(tmp_path)
    report.metadata = HOSTILE_METADATA
    table = block_after(render("summary", report, "md"), "| File metadata | Value |")
    assert len(table) == 2 + 12 + 1
    assert "\x1b" not in "".join(table) and not any(line.startswith("INJECTED") for line in table)
    assert "| pipe | `a \\| b` |" in table
    assert table[-1] == f"| … and {len(HOSTILE_METADATA) - 12} more keys | |"


def test_metadata_in_json_is_given_as_it_is(tmp_path: Path) -> None:
    report = torch_file_report(tmp_path)
    report.metadata = {"epoch": 3, "hyper_parameters": {"lr": 0.001, "name": "res\x1b[2Jnet"}}
    data = validated(render("summary", report, "json"))
    assert data["metadata"] == report.metadata
    assert data["pickle"]["verdict"] == "data-only"
    assert data["pickle"]["needs_code"] == data["pickle"]["malicious"] == []


def test_malicious_panel_lists_ten_names_then_how_many_more(tmp_path: Path) -> None:
    from paramscope.sources.pickle_verdict import verdict_of
    from paramscope.sources.pickle_walker import Global

    report = torch_file_report(tmp_path)
    names = [Global("os", f"f{i:02}\x1b[2J") for i in range(12)] + [Global("argparse", "Namespace")]
    report.pickle = verdict_of(names)
    text = render("summary", report, "text", width=NARROW)
    lines = text.splitlines()
    assert lines[0].startswith("╭─ MALICIOUS PICKLE") and all(len(line) <= NARROW for line in lines)
    assert "\x1b" not in text and "os.f00\\x1b[2J" in text and "os.f09\\x1b[2J" in text
    assert "os.f10" not in text and "… and 2 more" in text
    assert text.index("Layer (type)") > text.index("╰")
