"""The output layer: every command's result in every format, one module per (command, format).

Each command has a package here, and each package one module per format::

    render/<command>/__init__.py  what its formats share, as plain data (no rich)
    render/<command>/text.py      renderable(result, **options) -> a rich renderable
    render/<command>/json.py      document(result) -> dict, the published schema's shape
    render/<command>/markdown.py  markdown(result, **options) -> str
    render/<command>/html.py      html(result, **options) -> a page; notebook(result) -> a fragment

Commands: summary, explain, freeze, lint, audit, scan, memory, diff; ``report``
is a page of its own (``PAGES``), HTML only. Each ``html.py`` has ``html(result)``, a standalone
page, and ``notebook(result)``, the compact fragment a notebook shows (``notebook_html``).
``render(command, result, fmt)`` imports only the module that the format needs, so JSON and
Markdown never import rich — a tenth of a cold run on a checkpoint file (tests/test_render.py
checks it per command, in a fresh interpreter). Options (summary's ``depth``, ``all_layers``,
``only`` and ``show_tensors``) shape text and Markdown; JSON always holds everything.

What several commands print lives once, beside the packages: ``envelope.py`` (the JSON
envelope and the report's objects), ``console.py`` (rich: styles, the source line, the pickle
panel, metadata, findings, printing without colour), ``markup.py`` (Markdown: escaping and the
same pieces), ``reading.py`` (what the numbers and the file's verdict say, as plain data) and
``tree_rows.py`` (the layer tables' cells); summary's rows are chosen once, as plain data, in
``summary/view.py``. Renderers format; they never count (core does).

To add a command: its package with the three modules, its name in ``COMMANDS``, its schema in
``paramscope/schema/``, its golden files (tests/test_golden.py). To add a format (html): a
module per command, an entry in ``FORMATS``, a branch in ``render``.
"""

from __future__ import annotations

import json
from importlib import import_module

DEFAULT_DEPTH = 2  # layers shown below the root in text and Markdown; JSON holds the whole tree
DEFAULT_WIDTH = 100  # columns of text written to a file (a terminal gives its own)
COMMANDS = ("summary", "explain", "freeze", "lint", "audit", "scan", "memory", "diff")
FORMATS = ("text", "json", "md", "html")
_MODULES = {"text": "text", "json": "json", "md": "markdown", "html": "html"}
PAGES = ("report",)  # commands whose only format is a standalone HTML page


def _module(command: str, fmt: str):
    if (command not in COMMANDS or fmt not in FORMATS) and (command not in PAGES or fmt != "html"):
        raise ValueError(f"no renderer for {command!r} in {fmt!r}: commands {COMMANDS}, formats {FORMATS}")
    return import_module(f"paramscope.render.{command}.{_MODULES[fmt]}")


def renderable(command: str, result: object, **options: object):
    """The text output as a rich renderable: what the CLI prints, in colour, on a terminal."""
    return _module(command, "text").renderable(result, **options)


def document(command: str, result: object) -> dict:
    """The JSON output as plain data: the envelope and the command's own keys."""
    return _module(command, "json").document(result)


def render(command: str, result: object, fmt: str, *, width: int = DEFAULT_WIDTH, **options: object) -> str:
    """``result`` of ``command`` (what the API function of that name returns) as ``fmt``:
    text without colour at ``width`` columns, JSON, Markdown, or a standalone HTML page."""
    if fmt == "json":
        # Python would write inf and NaN as `Infinity`, which is not JSON: documents write null
        return json.dumps(document(command, result), indent=2, allow_nan=False) + "\n"
    if fmt == "text":
        from paramscope.render.console import plain_text

        return plain_text(renderable(command, result, **options), width)
    if fmt == "html":
        return _module(command, fmt).html(result, **options)
    return _module(command, fmt).markdown(result, **options)


def notebook_html(command: str, result: object) -> str:
    """The compact HTML a notebook shows for ``result`` (its ``_repr_html_``): no script."""
    return _module(command, "html").notebook(result)


__all__ = [
    "COMMANDS",
    "DEFAULT_DEPTH",
    "DEFAULT_WIDTH",
    "FORMATS",
    "PAGES",
    "document",
    "notebook_html",
    "render",
    "renderable",
]
