"""Golden outputs: every command in every format — text at 100 and 80 columns, JSON and
Markdown — on the small fixed models of tests/golden_models.py, rendered as the CLI renders
them (``paramscope.render.render``).

A difference fails with a unified diff of the golden file against the output. After an
intended change, regenerate with ``PARAMSCOPE_UPDATE_GOLDEN=1 pytest tests/test_golden.py``
and review the diff. Every JSON golden is validated against the shipped schema and checks its
own sums: the rows of each table add up to its totals.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

import pytest
import torch

import paramscope
from paramscope.api import scan
from paramscope.ops.explain import explain_report
from paramscope.render import render
from tests import golden_models as models
from tests.json_contract import validated

GOLDEN = Path(__file__).parent / "golden"
OUTPUTS = {"100.txt": ("text", 100), "80.txt": ("text", 80), "json": ("json", 100), "md": ("md", 100)}
TABLE = {"depth": None, "show_tensors": True}  # summary: the whole tree, every tensor
KERAS_RULES = [("unfreeze", "base"), ("freeze", "base/bn")]
TORCH_RULES = [("freeze", "embedding")]


def _scan(folder: Path):
    """A folder as people keep one: the needs-code checkpoint, a safetensors file and a
    damaged file named like a checkpoint; scanned by its relative name, for stable paths."""
    from safetensors.torch import save_file

    checkpoints = folder / "checkpoints"
    checkpoints.mkdir()
    models.write_checkpoint(checkpoints)
    save_file({"head.weight": torch.zeros(3, 4)}, checkpoints / "head.safetensors")
    (checkpoints / "damaged.pt").write_bytes(b"PK\x03\x04 cut short")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        return scan("checkpoints")
    finally:
        os.chdir(cwd)


def _audit():
    target = models.audited_net()
    audit = paramscope.audit(
        target["model"], optimizer=target["optimizer"], inputs=target["inputs"], loss=target["loss"]
    )
    return dataclasses.replace(audit, report=models.pinned(audit.report))


def _pinned_plan(model, pinned_report, rules):
    """The plan paramscope makes for ``model``, shown with the pinned report's source."""
    return dataclasses.replace(paramscope.freeze(model, rules=rules), report=pinned_report)


def _pinned_lint(target, pinned_report):
    """The findings paramscope makes for ``target`` (a model or a file), beside the pinned report."""
    _report, findings = paramscope.lint(target)
    return pinned_report, findings


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[str, object, dict]]:
    """Case name -> (command, result, options), each built once."""
    keras_model, torch_model = models.keras_transfer(), models.torch_tied_norm()
    keras_report = models.keras_transfer_report(keras_model)
    torch_report = models.torch_tied_norm_report(torch_model)
    file_folder = tmp_path_factory.mktemp("file")
    file_report = models.torch_file_report(file_folder)
    return {
        "keras_transfer.summary": ("summary", keras_report, TABLE),
        "keras_transfer.explain": ("explain", explain_report(keras_report), {}),
        "keras_transfer.freeze": ("freeze", _pinned_plan(keras_model, keras_report, KERAS_RULES), {}),
        "keras_transfer.lint": ("lint", _pinned_lint(keras_model, keras_report), {}),
        "torch_tied_norm.summary": ("summary", torch_report, TABLE),
        "torch_tied_norm.explain": ("explain", explain_report(torch_report), {}),
        "torch_tied_norm.freeze": ("freeze", _pinned_plan(torch_model, torch_report, TORCH_RULES), {}),
        "torch_tied_norm.lint": ("lint", _pinned_lint(torch_model, torch_report), {}),
        "checkpoint.summary": ("summary", file_report, TABLE),
        "checkpoint.explain": ("explain", explain_report(file_report), {}),
        "checkpoint.lint": ("lint", _pinned_lint(file_folder / models.CHECKPOINT_NAME, file_report), {}),
        "audited_net.audit": ("audit", _audit(), {}),
        "checkpoints.scan": ("scan", _scan(tmp_path_factory.mktemp("scan")), {}),
        "keras_seed.memory": ("memory", models.keras_seed_memory(), {}),
        "checkpoint.memory": ("memory", models.checkpoint_memory(tmp_path_factory.mktemp("memory")), {}),
        "fine_tuned.diff": ("diff", models.fine_tuned_diff(tmp_path_factory.mktemp("diff")), {}),
    }


CASES = [
    "keras_transfer.summary",
    "keras_transfer.explain",
    "keras_transfer.freeze",
    "keras_transfer.lint",
    "torch_tied_norm.summary",
    "torch_tied_norm.explain",
    "torch_tied_norm.freeze",
    "torch_tied_norm.lint",
    "checkpoint.summary",
    "checkpoint.explain",
    "checkpoint.lint",
    "audited_net.audit",
    "checkpoints.scan",
    "keras_seed.memory",
    "checkpoint.memory",
    "fine_tuned.diff",
]


def test_every_command_has_golden_cases_and_every_golden_file_a_case() -> None:
    from paramscope.render import COMMANDS

    assert {case.split(".")[1] for case in CASES} == set(COMMANDS)
    expected = {f"{case}.{suffix}" for case in CASES for suffix in OUTPUTS}
    assert {path.name for path in GOLDEN.iterdir()} == expected


def _compare(path: Path, actual: str) -> None:
    if os.environ.get("PARAMSCOPE_UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"tests/golden/{path.name}",
            tofile="output",
        )
        pytest.fail(
            "output differs from its golden file (PARAMSCOPE_UPDATE_GOLDEN=1 regenerates it):\n"
            + "".join(diff),
            pytrace=False,
        )


@pytest.mark.parametrize("suffix", sorted(OUTPUTS))
@pytest.mark.parametrize("case", CASES)
def test_golden(results, case: str, suffix: str) -> None:
    command, result, options = results[case]
    fmt, width = OUTPUTS[suffix]
    actual = render(command, result, fmt, width=width, **options)
    if fmt == "json":
        SUMS[command](validated(actual))
    if fmt == "text":
        assert max(map(len, _table_lines(command, actual)), default=0) <= width
    _compare(GOLDEN / f"{case}.{suffix}", actual)


def _table_lines(command: str, text: str) -> list[str]:
    """The lines that must fit the width: all but pasted code (freeze) and scan's records,
    which are never wrapped."""
    if command == "scan":
        return []
    lines = text.splitlines()
    return lines[: lines.index("Code:")] if command == "freeze" else lines


# ------------------------------------------------------------------ each output checks its sums

ROLES = ("trainable", "frozen", "state", "unknown")
UNITS = ("tensors", "params", "bytes")


def _tensor_sums(tensors: list[dict]) -> dict[str, dict[str, int]]:
    """Totals per role of the tensors that count (aliases count at their owner only)."""
    sums = {role: dict.fromkeys(UNITS, 0) for role in ROLES}
    for tensor in tensors:
        if tensor["shared_with"] is None:
            role = sums[tensor["role"]]
            role["tensors"] += 1
            role["params"] += tensor["params"]
            role["bytes"] += tensor["bytes"] or 0
    return sums


def _all_tensors(node: dict) -> list[dict]:
    return [*node["tensors"], *(t for child in node["children"] for t in _all_tensors(child))]


def _check_totals(totals: dict) -> None:
    """`all` is the sum of the four roles."""
    assert totals["all"] == {unit: sum(totals[role][unit] for role in ROLES) for unit in UNITS}


def _summary_sums(document: dict) -> None:
    """The tree's tensors make the totals; the conventions reconcile with them."""
    totals = document["totals"]
    _check_totals(totals)
    assert {role: totals[role] for role in ROLES} == _tensor_sums(_all_tensors(document["root"]))
    keras, torch = document["conventions"]["keras"], document["conventions"]["torch"]
    assert torch["total_params"] == torch["trainable_params"] + torch["non_trainable_params"]
    assert keras["total_params"] == (
        keras["trainable_params"] + keras["non_trainable_params"] + keras.get("optimizer_params", 0)
    )
    if totals["unknown"]["tensors"] == 0 and "optimizer_params" not in keras:
        assert keras["total_params"] == totals["all"]["params"]


def _explain_sums(document: dict) -> None:
    """Each layer's formula adds up its tensors (tied ones too); its params count the tensors
    it owns, an alias counting at its owner only."""
    assert document["layers"], "no layer explained"
    for layer in document["layers"]:
        assert layer["problem"] is None, layer
        assert layer["formula"]["value"] == sum(t["params"] for t in layer["tensors"])
        assert layer["params"] == sum(t["params"] for t in layer["tensors"] if t["shared_with"] is None)


def _freeze_sums(document: dict) -> None:
    """Roles add up before and after, and a plan moves tensors between roles, never adds any."""
    _check_totals(document["before"])
    _check_totals(document["after"])
    assert document["before"]["all"] == document["after"]["all"]
    assert all(rule["layers"] for rule in document["rules"])


def _lint_sums(document: dict) -> None:
    """No numbers to add: each finding's one-line reference is its references and its docs."""
    for finding in document["findings"]:
        assert finding["reference"] == "; ".join([*finding["references"], finding["docs"]])


def _audit_sums(document: dict) -> None:
    """Every tensor is changed or unchanged, once; the verdicts agree with the lists."""
    tensors = document["tensors"]
    assert sorted(document["changed"] + document["unchanged"]) == sorted(t["path"] for t in tensors)
    assert document["changed"] == [t["path"] for t in tensors if t["changed"]]
    assert all(t["max_abs_delta"] == 0 for t in tensors if not t["changed"])
    assert tensors, "the step diffed no tensor"


def _scan_sums(document: dict) -> None:
    """Each file's roles add up to its params; an unread file counts nothing."""
    assert document["files"], "no file scanned"
    for entry in document["files"]:
        assert entry["params"] == sum(entry[role] for role in ROLES)
        if entry["error"] or entry["skipped"]:
            assert entry["source"]["kind"] is None and entry["params"] == entry["tensors"] == 0


def _memory_sums(document: dict) -> None:
    """Each part's bytes are its roles'; the parts make the total; what freezing saved is the
    difference with everything trainable."""
    parts = ("weights", "gradients", "optimizer", "master_weights", "activations")
    figures = [document[key] for key in (*parts, "total", "all_trainable_total", "saved_by_freezing")]
    assert all(figure["bytes"] == sum(figure["by_role"].values()) for figure in figures if figure)
    for role in ROLES:
        summed = sum(document[part]["by_role"][role] for part in parts if document[part])
        assert document["total"]["by_role"][role] == summed
        saved = document["all_trainable_total"]["by_role"][role] - document["total"]["by_role"][role]
        assert document["saved_by_freezing"]["by_role"][role] == saved


def _diff_sums(document: dict) -> None:
    """Every tensor of A is in one list once; the root node counts them all, and the added ones."""
    compared = [document[key] for key in ("changed", "unchanged", "not_compared", "reshaped", "removed")]
    paths = [entry["path"] for entries in compared for entry in entries]
    assert len(paths) == len(set(paths))
    root = document["nodes"][0]
    assert root["path"] == "" and root["tensors"] == len(paths) + len(document["added"])
    assert root["changed"] == sum(len(document[k]) for k in ("changed", "reshaped", "removed", "added"))
    assert document["passed"] == (not document["frozen_broken"])


SUMS = {
    "summary": _summary_sums,
    "explain": _explain_sums,
    "freeze": _freeze_sums,
    "lint": _lint_sums,
    "audit": _audit_sums,
    "scan": _scan_sums,
    "memory": _memory_sums,
    "diff": _diff_sums,
}
