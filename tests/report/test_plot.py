"""`paramscope plot`: a real PNG and an SVG whose bars add up to the model's own totals, per
top-level node and in all, whatever the bars are stacked by."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from PIL import Image
from torch import nn

import paramscope
from paramscope.cli import cli
from paramscope.render.plot import figure

SEGMENT = re.compile(r"segment-(?P<params>\d+)-(?P<node>\w+?)-(?P<group>\w+)$")


class Tagger(nn.Module):
    """A frozen embedding, a half-precision BatchNorm (its statistics are state) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 8).requires_grad_(False)
        self.norm = nn.BatchNorm1d(8).half()
        self.head = nn.Linear(8, 3)


def _torch_totals(model: nn.Module) -> dict[str, int]:
    """Parameters and buffers per top-level module, as torch counts them."""
    return {
        name: sum(t.numel() for t in (*child.parameters(), *child.buffers()))
        for name, child in model.named_children()
    }


def _svg_segments(path) -> dict[str, int]:
    """Node -> the sum of its bar's segments, read from the segments' ids in the SVG."""
    sums: dict[str, int] = {}
    for element in ElementTree.parse(path).iter():
        match = SEGMENT.match(element.get("id", ""))
        if match:
            sums[match["node"]] = sums.get(match["node"], 0) + int(match["params"])
    return sums


@pytest.mark.parametrize("by", ["role", "dtype", "layer-type"])
def test_the_svgs_bars_add_up_to_torchs_totals(tmp_path, by) -> None:
    model = Tagger()
    output = tmp_path / "params.svg"
    result = CliRunner().invoke(
        cli, ["plot", "tests/report/test_plot.py:Tagger", "-o", str(output), "--by", by]
    )
    assert result.exit_code == 0, result.output
    assert _svg_segments(output) == _torch_totals(model)


def test_the_png_is_an_image_and_the_figures_bars_are_the_totals(tmp_path) -> None:
    model = Tagger()
    output = tmp_path / "params.png"
    assert (
        CliRunner().invoke(cli, ["plot", "tests/report/test_plot.py:Tagger", "-o", str(output)]).exit_code
        == 0
    )
    with Image.open(output) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 300
    axes = figure(paramscope.inspect(model), "role").axes[0]
    assert sum(bar.get_width() for bar in axes.patches) == sum(_torch_totals(model).values())
    assert [label.get_text() for label in axes.get_yticklabels()] == list(_torch_totals(model))


def test_plot_refuses_other_formats(tmp_path) -> None:
    result = CliRunner().invoke(
        cli, ["plot", "tests/report/test_plot.py:Tagger", "-o", str(tmp_path / "a.gif")]
    )
    assert result.exit_code == 2 and "png or .svg" in result.output


def test_bars_keep_dtypes_apart() -> None:
    axes = figure(paramscope.inspect(Tagger()), "dtype").axes[0]
    assert sorted(text.get_text() for text in axes.get_legend().get_texts()) == [
        "float16",
        "float32",
        "int64",
    ]
