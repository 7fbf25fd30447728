"""The seed's report in a real browser: Debian's chromium, headless, driven by Playwright.

One page load, then what a person does: look (no console error, a screenshot that is not
blank, one shape per top-level layer with weights), hover a shape (its tooltip appears) and
type in the filter box (the layer table filters). ``PARAMSCOPE_UPDATE_SCREENSHOT=1`` writes
the screenshot to docs/report-screenshot.png.
"""

from __future__ import annotations

import io
import os
import shutil

import pytest

import paramscope
from paramscope.render import render
from tests.report.pages import ROOT

playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')"
)
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="NO BROWSER: chromium is not installed, so the report's browser tests cannot run. "
    "`make test` installs Debian's chromium (apt-get, as root or with sudo); install it by hand if that failed.",
)
SCREENSHOT = ROOT / "docs" / "report-screenshot.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ORANGE = (0xE6, 0x9F, 0x00)  # the frozen role's colour


@pytest.fixture(scope="module")
def page(seed, tmp_path_factory):
    """The seed's report, loaded once; console errors and page errors collected on it."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render("report", paramscope.report(seed), "html"), encoding="utf-8")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        opened = browser.new_page(viewport={"width": 1280, "height": 900})
        opened.errors = []
        opened.on("console", lambda message: message.type == "error" and opened.errors.append(message.text))
        opened.on("pageerror", lambda error: opened.errors.append(str(error)))
        opened.goto(path.as_uri())
        yield opened
        browser.close()


def _pixels(png: bytes):
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return image, ImageStat.Stat(image.convert("L"))


def test_the_page_loads_clean_and_the_screenshot_is_not_blank(page) -> None:
    assert page.errors == []
    png = page.screenshot()
    if os.environ.get("PARAMSCOPE_UPDATE_SCREENSHOT"):
        SCREENSHOT.write_bytes(png)
    image, grey = _pixels(png)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50 and grey.stddev[0] > 20  # text, tables, a chart: not one flat colour
    frozen = sum(count for count, colour in colours if colour == ORANGE)
    assert frozen > 0.01 * image.width * image.height  # the frozen base is a visible orange block


def test_the_chart_has_one_shape_per_top_level_layer_with_weights(page, seed) -> None:
    weighted = [layer for layer in seed.layers if layer.count_params()]
    assert page.locator("svg.icicle g.node.depth-1").count() == len(weighted) == 2


def test_hovering_a_shape_shows_its_tooltip(page, seed) -> None:
    base = page.locator('svg.icicle g.node.depth-1[data-path="mobilenetv2_1.00_224"]')
    tip = base.locator(".tip")
    assert not tip.is_visible()
    base.hover()
    assert tip.is_visible()
    assert f"frozen {2_223_872:,}" in tip.text_content() and "mobilenetv2_1.00_224" in tip.text_content()
    assert base.locator("title").text_content().startswith("mobilenetv2_1.00_224 (Functional)")


def test_the_filter_box_filters_the_layer_table(page) -> None:
    rows = page.locator("#layers tbody tr")
    everything = rows.count()
    page.fill("input.filter", "block_16_project")
    shown = page.locator("#layers tbody tr:visible")
    assert 0 < shown.count() < everything
    assert all("block_16_project" in text for text in shown.all_inner_texts())
    page.fill("input.filter", "")
    assert page.locator("#layers tbody tr:visible").count() == everything
