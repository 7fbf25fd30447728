"""Every command's Markdown as GitHub renders it in a pull-request comment: parsed by a
CommonMark renderer with GFM tables, its tables are tables, and a long one folds into
``<details>`` while staying a table."""

from __future__ import annotations

import pytest
import torch
from markdown_it import MarkdownIt
from safetensors.torch import save_file
from torch import nn

import paramscope
from paramscope.render import render
from paramscope.render.html_parts.collapsible import LONG_TABLE
from tests import golden_models as models

GFM = MarkdownIt("commonmark").enable("table")


def _tables(markdown: str) -> list[tuple[list[str], int]]:
    """Each table: its header cells and how many body rows it has."""
    tokens, tables = GFM.parse(markdown), []
    for index, token in enumerate(tokens):
        if token.type == "table_open":
            end = next(i for i in range(index, len(tokens)) if tokens[i].type == "table_close")
            inside = tokens[index:end]
            head = [inside[i + 1].content for i, t in enumerate(inside) if t.type == "th_open"]
            rows = sum(t.type == "tr_open" for t in inside) - 1
            tables.append((head, rows))
    return tables


def _html_blocks(markdown: str) -> list[str]:
    return [token.content.strip() for token in GFM.parse(markdown) if token.type == "html_block"]


def _long_model() -> nn.Sequential:
    """More distinct layers than a comment shows open (distinct shapes: no run folds them)."""
    return nn.Sequential(*[nn.Linear(i + 1, i + 2) for i in range(LONG_TABLE + 5)])


def _scan(folder):
    save_file({"head.weight": torch.zeros(3, 4)}, folder / "head.safetensors")
    return paramscope.scan(folder)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, object]:
    keras_model = models.keras_transfer()
    target = models.audited_net()
    inputs = target["inputs"]
    return {
        "summary": paramscope.inspect(keras_model),
        "explain": paramscope.explain(keras_model),
        "freeze": paramscope.freeze(keras_model, ["base/bn"]),
        "audit": paramscope.audit(target["model"], target["optimizer"], inputs, target["loss"]),
        "lint": paramscope.lint(models.torch_tied_norm()),
        "scan": _scan(tmp_path_factory.mktemp("scan")),
    }


EXPECTED_HEADERS = {
    "summary": ["Layer (type)", "Role"],
    "explain": [],
    "freeze": ["role"],
    "audit": ["role"],
    "lint": [],
    "scan": ["File"],
}


@pytest.mark.parametrize("command", list(EXPECTED_HEADERS))
def test_each_commands_tables_parse_as_tables(results, command) -> None:
    markdown = render(command, results[command], "md")
    tables = _tables(markdown)
    assert [head[0] for head, _ in tables] == EXPECTED_HEADERS[command]
    assert all(rows > 0 for _, rows in tables)
    assert not any(block.startswith("<details>") for block in _html_blocks(markdown))  # short: open


def test_a_long_layer_table_folds_into_details_and_stays_a_table() -> None:
    model = _long_model()
    markdown = render("summary", paramscope.inspect(model), "md", depth=None)
    blocks = _html_blocks(markdown)
    assert blocks[0].startswith("<details>") and "<summary>Layer table" in blocks[0]
    assert blocks[1] == "</details>"
    head, rows = _tables(markdown)[0]
    assert head[0] == "Layer (type)" and rows == 1 + len(model)  # the root and every layer


def test_a_long_explanation_folds_every_layers_formula() -> None:
    model = _long_model()
    markdown = render("explain", paramscope.explain(model), "md")
    assert _html_blocks(markdown)[0].startswith(
        f"<details>\n<summary>Every layer's formula ({len(model)} layers)"
    )
