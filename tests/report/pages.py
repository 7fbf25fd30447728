"""What the report tests share: reading HTML with an HTML5 parser, its skeleton (the structure:
tags and classes, runs of alike siblings folded) and the references that would leave the page."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from xml.etree.ElementTree import Element

import html5lib

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
REMOTE = re.compile(r"\bsrc\s*=|\bhref\s*=|url\(|@import|\b[a-z]+://", re.I)


def parse(markup: str, fragment: bool = False) -> Element:
    """The document (or fragment) as an element tree; any HTML5 parse error fails the test."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    return parser.parseFragment(markup) if fragment else parser.parse(markup)


def _name(element: Element) -> str:
    tag = element.tag.rsplit("}", 1)[-1]
    classes = sorted(c for c in element.get("class", "").split() if not c.startswith("depth-"))
    return ".".join([tag, *classes])


def outline(element: Element, depth: int = 0) -> list[str]:
    """One line per element, indented by depth; a run of siblings with the same outline is
    shown once, marked ``×`` (how many rows a table has is the model's business, not the page's)."""
    lines = ["  " * depth + _name(element)]
    children = [outline(child, depth + 1) for child in element if isinstance(child.tag, str)]
    for first, *rest in (list(run) for _, run in itertools.groupby(children)):
        lines += [first[0] + (" ×" if rest else ""), *first[1:]]
    return lines


def skeleton(markup: str, fragment: bool = False) -> str:
    return "\n".join(outline(parse(markup, fragment))) + "\n"


def remote_references(markup: str) -> list[str]:
    """Every place the page would reach outside itself: src=, href=, url(, @import, a URL."""
    return [match.group(0) for match in REMOTE.finditer(markup)]


def elements(tree: Element, tag: str, css_class: str | None = None) -> list[Element]:
    """Every ``tag`` element (HTML or SVG) under ``tree``, of ``css_class`` when given."""
    return [
        element
        for element in tree.iter()
        if isinstance(element.tag, str)
        and element.tag.rsplit("}", 1)[-1] == tag
        and (css_class is None or css_class in element.get("class", "").split())
    ]
