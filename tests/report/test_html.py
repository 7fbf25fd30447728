"""The HTML of every command and of `paramscope report`: its structure against golden
skeletons, valid HTML5 (strict parser) for pages and notebook fragments, nothing that leaves
the page, names shown and never run, and the seed's numbers equal to Keras's own."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn

import paramscope
from paramscope.cli import cli
from paramscope.ops.explain import explain_report
from paramscope.render import render
from tests import golden_models as models
from tests.report.pages import GOLDEN, elements, parse, remote_references, skeleton

KERAS_RULES = [("unfreeze", "base"), ("freeze", "base/bn")]
PAGES = [
    "summary.page",
    "summary.notebook",
    "explain.page",
    "explain.notebook",
    "freeze.page",
    "freeze.notebook",
    "audit.page",
    "audit.notebook",
    "lint.page",
    "scan.page",
    "memory.page",
    "memory.notebook",
    "diff.page",
    "diff.notebook",
    "report.page",
    "report.notebook",
]


def _audit():
    target = models.audited_net()
    inputs = target["inputs"]
    return paramscope.audit(
        target["model"], optimizer=target["optimizer"], inputs=inputs, loss=target["loss"]
    )


def _diff(folder):
    """Two checkpoints of one torch model, its head changed in between."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    torch.save(model.state_dict(), folder / "before.pt")
    with torch.no_grad():
        model[1].weight.add_(1.0)
    torch.save(model.state_dict(), folder / "after.pt")
    return paramscope.diff(folder / "before.pt", folder / "after.pt", expect_frozen=["0"])


def _scan(folder):
    save_file({"head.weight": torch.zeros(3, 4)}, folder / "head.safetensors")
    return paramscope.scan(folder)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    """Page or fragment name -> its HTML, for the small Keras transfer model of the goldens."""
    model = models.keras_transfer()
    report = models.keras_transfer_report(model)
    explanation = explain_report(report)
    plan = dataclasses.replace(paramscope.freeze(model, rules=KERAS_RULES), report=report)
    audit, overview = _audit(), paramscope.report(model, rules=KERAS_RULES, audit=True)
    lint = paramscope.lint(models.torch_tied_norm())
    results = {
        "summary": report,
        "explain": explanation,
        "freeze": plan,
        "audit": audit,
        "memory": paramscope.memory(model, "adam"),
        "diff": _diff(tmp_path_factory.mktemp("diff")),
        "report": overview,
    }
    made = {f"{name}.page": render(name, result, "html") for name, result in results.items()}
    made |= {f"{name}.notebook": result._repr_html_() for name, result in results.items()}
    made["lint.page"] = render("lint", lint, "html")
    made["scan.page"] = render("scan", _scan(tmp_path_factory.mktemp("scan")), "html")
    return made


@pytest.mark.parametrize("name", PAGES)
def test_html_matches_its_golden_skeleton(pages, name) -> None:
    """Parsed by a strict HTML5 parser (a parse error fails), then compared tag by tag."""
    actual = skeleton(pages[name], fragment=name.endswith(".notebook"))
    golden = GOLDEN / f"{name}.skeleton"
    if os.environ.get("PARAMSCOPE_UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8"), f"regenerate with PARAMSCOPE_UPDATE_GOLDEN=1: {name}"


def test_pages_reach_nothing_outside_themselves(pages) -> None:
    for name, markup in pages.items():
        assert remote_references(markup) == [], name


def test_only_the_report_page_has_a_script_and_notebooks_none(pages) -> None:
    scripted = sorted(name for name, markup in pages.items() if "<script" in markup)
    assert scripted == ["report.page"]


def _role_rows(markup: str) -> dict[str, list[int]]:
    """Role -> [layers with weights, tensors, parameters], read from the page's role table."""
    (table,) = elements(parse(markup), "table", "roles")
    found = {}
    for row in table.iter("tr"):
        role = (row.get("class") or "").removeprefix("role-")
        if role:
            cells = ["".join(cell.itertext()) for cell in row.findall("td")]
            found[role] = [int(text.replace(",", "")) for text in cells[1:4]]
    return found


def _keras_numbers(weights) -> tuple[int, int]:
    return len(weights), sum(math.prod(w.shape) for w in weights)


def _unfrozen_weights(model, base) -> tuple[list, list]:
    """Keras's trainable and non-trainable weights with ``base`` unfrozen: what could train,
    and the state that never does (moving statistics)."""
    base.trainable = True
    try:
        return list(model.trainable_weights), list(model.non_trainable_weights)
    finally:
        base.trainable = False


def test_the_seed_report_shows_kerass_own_numbers_per_role(seed) -> None:
    markup = render("report", paramscope.report(seed), "html")
    could_train, state = _unfrozen_weights(seed, seed.get_layer("mobilenetv2_1.00_224"))
    trainable_paths = {w.path for w in seed.trainable_weights}
    frozen = [w for w in could_train if w.path not in trainable_paths]
    rows = _role_rows(markup)
    assert rows["trainable"][1:] == list(_keras_numbers(seed.trainable_weights)) == [2, 29_463]
    assert rows["frozen"][1:] == list(_keras_numbers(frozen)) == [156, 2_223_872]
    assert rows["state"][1:] == list(_keras_numbers(state)) == [104, 34_112]
    assert rows["trainable"][0] == 1  # the Dense head
    assert f"Total params: {seed.count_params():,}" in markup  # Keras's own line, beside ours


def test_a_files_roles_are_unknown_in_their_own_colour(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), path)
    markup = render("report", paramscope.report(path), "html")
    assert _role_rows(markup)["unknown"][1:] == [
        len(model.state_dict()),
        sum(p.numel() for p in model.parameters()),
    ]
    rects = elements(parse(markup), "rect", "role-unknown")
    assert rects and all(r.get("fill") == "#CC79A7" for r in rects)


def test_names_from_a_model_are_shown_never_run() -> None:
    model = nn.Module()
    model.add_module("<img src=x onerror=alert(1)>", nn.Linear(2, 2))
    for markup in (
        render("summary", paramscope.inspect(model), "html"),
        paramscope.inspect(model)._repr_html_(),
    ):
        tree = parse(markup, fragment="<!DOCTYPE" not in markup)
        assert not elements(tree, "img")
        assert "&lt;img src=x onerror=alert(1)&gt;" in markup


def test_report_command_writes_one_file_and_refuses_bad_input(tmp_path) -> None:
    model = tmp_path / "model.safetensors"
    save_file(nn.Linear(3, 2).state_dict(), model)
    output = tmp_path / "report.html"
    runner = CliRunner()
    written = runner.invoke(cli, ["report", str(model), "--output", str(output)])
    assert written.exit_code == 0, written.output
    assert (
        parse(output.read_text(encoding="utf-8")).find(".//title").text
        == "paramscope report: model.safetensors"
    )
    missing = runner.invoke(cli, ["report", str(tmp_path / "missing.pt"), "--output", str(output)])
    over_input = runner.invoke(cli, ["report", str(model), "--output", str(model)])
    assert (missing.exit_code, over_input.exit_code) == (2, 2)


def test_a_failed_audit_is_on_the_page_and_in_the_exit_code(tmp_path) -> None:
    """examples.models:finetune leaves its frozen backbone in train(): BatchNorm drifts."""
    output = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["report", "examples.models:finetune", "--audit", "--output", str(output)]
    )
    assert result.exit_code == 1, result.output
    (answer,) = [
        p for p in elements(parse(output.read_text(encoding="utf-8")), "p", "answer") if "Audit" in p.text
    ]
    assert answer.text == "Audit failed."


def test_a_report_with_a_plan_says_up_front_which_roles_each_part_shows() -> None:
    """The headline numbers are the model as it is; memory and audit use the plan. The page
    says so before anything else, with the plan's own numbers."""
    model = models.keras_transfer()
    plan = paramscope.freeze(model, rules=KERAS_RULES)
    page = render("report", paramscope.report(model, rules=KERAS_RULES), "html")
    (said,) = [p for p in elements(parse(page), "p", "planned")]
    text = "".join(said.itertext())
    trainable, frozen = plan.after["trainable"], plan.after["frozen"]
    assert f"{trainable.params:,} parameters in {trainable.tensors:,} tensors train" in text
    assert f"{frozen.params:,} in {frozen.tensors:,} are frozen" in text
    assert "memory section" in text and "audit" not in text
    assert page.index('class="planned"') < page.index("<h2>")
    assert 'class="planned"' not in render("report", paramscope.report(model), "html")


def test_the_plan_block_lists_every_layer_it_changes_tied_partners_included() -> None:
    """Freezing a tied embedding freezes the decoder that shares its tensor: the page (and the
    report built on it) lists both, as the text does, and the finding that says why."""
    from tests.test_torch import TiedLanguageModel

    plan = paramscope.freeze(TiedLanguageModel(), freeze=["embedding"])
    page = parse(render("freeze", plan, "html"))
    (changes,) = [d for d in elements(page, "details") if "Changed" in "".join(d.itertext())]
    listed = {code.text for code in elements(changes, "code")}
    assert listed == {change["path"] for change in plan.changed} and len(listed) >= 2
    assert "tied-freeze-conflict" in "".join(page.itertext())
