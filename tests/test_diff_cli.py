"""`paramscope diff` on the command line: two checkpoints saved before and after real training
steps with a frozen layer, in every format; `--expect-frozen` and its exit code; statistics that
are not finite written as JSON null; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from paramscope.cli import cli
from tests.fixtures.models import tiny
from tests.json_contract import validated


def run(*args: object):
    return CliRunner().invoke(cli, ["diff", *map(str, args)])


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    """(before.pt, after.pt, both state dicts): tiny() with its first Linear frozen, trained two
    real SGD steps in train mode (its BatchNorm statistics move)."""
    folder = tmp_path_factory.mktemp("diff")
    model = tiny(frozen=True)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(4, 3, generator=torch.Generator().manual_seed(1))).square().mean().backward()
        optimizer.step()
    torch.save(before, folder / "before.pt")
    torch.save(model.state_dict(), folder / "after.pt")
    return folder / "before.pt", folder / "after.pt", before, model.state_dict()


def changed_keys(before: dict, after: dict) -> set[str]:
    """The state dict keys whose values torch says differ."""
    return {key for key in before if not torch.equal(before[key], after[key])}


def test_json_names_what_torch_says_changed_with_its_statistics(saved) -> None:
    before_path, after_path, before, after = saved
    result = run(before_path, after_path, "--format", "json")
    assert result.exit_code == 0, result.output
    document = validated(result.output)
    changed = {entry["path"].replace("/", "."): entry for entry in document["changed"]}
    assert set(changed) == changed_keys(before, after) and "0.weight" not in changed
    weight = changed["3.weight"]
    delta = after["3.weight"].double() - before["3.weight"].double()
    assert weight["max_abs_delta"] == delta.abs().max().item()
    assert weight["relative_change"] == pytest.approx(
        (delta.norm() / before["3.weight"].double().norm()).item()
    )
    assert {entry["path"] for entry in document["unchanged"]} == {"0/weight", "0/bias"}
    assert document["passed"] and document["nodes"][0]["changed"] == len(changed)


def test_text_says_it_in_one_line_first(saved) -> None:
    before_path, after_path, before, after = saved
    result = run(before_path, after_path)
    assert result.exit_code == 0, result.output
    sources, rest = result.output.split("\n\n", 1)  # A and B, each wrapped where its path is long
    assert sources.startswith("A  ") and "\nB  " in sources
    changed = len(changed_keys(before, after))
    assert rest.splitlines()[0] == f"{changed} of {len(before)} tensors changed: '1', '3'; '0' bit-identical"
    assert "Changed tensor" in result.output and "max |Δ|" in result.output


def test_expect_frozen_violated_exits_1_and_names_the_tensors(saved) -> None:
    before_path, after_path, before, after = saved
    passing = run(before_path, after_path, "--expect-frozen", "0")
    assert passing.exit_code == 0 and "nothing under them changed" in passing.output
    result = run(before_path, after_path, "--expect-frozen", "1", "--format", "json")
    assert result.exit_code == 1
    document = validated(result.output)
    moved = {key for key in changed_keys(before, after) if key.startswith("1.")}
    assert not document["passed"] and {p.replace("/", ".") for p in document["frozen_broken"]} == moved
    text = run(before_path, after_path, "--expect-frozen", "1")
    assert (
        text.exit_code == 1
        and f"Expected frozen: '1'; yet {len(moved)} tensors under them changed:" in text.output
    )


def test_markdown_has_the_summary_the_nodes_and_the_changes(saved) -> None:
    before_path, after_path, before, after = saved
    result = run(before_path, after_path, "--format", "md")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "## Diff: changed"
    assert lines[5].startswith(f"**{len(changed_keys(before, after))} of {len(before)} tensors changed")
    assert "| node | status | tensors | changed |" in lines
    assert "| changed tensor | max \\|Δ\\| | ‖Δ‖/‖A‖ | elements changed |" in lines


def test_statistics_that_are_not_finite_are_null_in_json(tmp_path: Path) -> None:
    """From all zeros ‖Δ‖/‖A‖ is infinite; from a NaN it is NaN. JSON has neither."""
    torch.save({"zeros": torch.zeros(3), "nan": torch.tensor([float("nan"), 1.0])}, tmp_path / "a.pt")
    torch.save({"zeros": torch.ones(3), "nan": torch.tensor([0.0, 1.0])}, tmp_path / "b.pt")
    result = run(tmp_path / "a.pt", tmp_path / "b.pt", "--format", "json")
    assert result.exit_code == 0, result.output
    document = validated(json.loads(result.output, parse_constant=pytest.fail))
    assert {entry["path"]: entry["relative_change"] for entry in document["changed"]} == {
        "zeros": None,
        "nan": None,
    }
    assert "inf" in run(tmp_path / "a.pt", tmp_path / "b.pt").output


def test_renamed_tensors_are_said_and_matched_by_order_on_request(tmp_path: Path) -> None:
    torch.save({"encoder.weight": torch.ones(2, 3), "encoder.bias": torch.ones(2)}, tmp_path / "a.pt")
    torch.save({"backbone.weight": torch.ones(2, 3), "backbone.bias": torch.ones(2)}, tmp_path / "b.pt")
    by_name = validated(run(tmp_path / "a.pt", tmp_path / "b.pt", "--format", "json").output)
    assert len(by_name["added"]) == len(by_name["removed"]) == 2 and by_name["notes"]
    by_order = validated(
        run(tmp_path / "a.pt", tmp_path / "b.pt", "--match", "order", "--format", "json").output
    )
    assert [(e["path"], e["path_b"]) for e in by_order["unchanged"]] == [
        ("encoder/weight", "backbone/weight"),
        ("encoder/bias", "backbone/bias"),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--match", "shape"], "match must be one of name, order"),
        (["--expect-frozen", "nowhere"], "nowhere"),
    ],
)
def test_bad_options_exit_2_with_one_line(saved, extra: list[str], message: str) -> None:
    assert_bad_input(run(*saved[:2], *extra), message)


def test_a_file_that_does_not_exist_exits_2(saved) -> None:
    assert_bad_input(run(saved[0], "no/such/after.pt"), "no/such/after.pt: no such file")


def assert_bad_input(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("paramscope: error: ") and message in lines[0], lines
    assert result.stdout == ""
