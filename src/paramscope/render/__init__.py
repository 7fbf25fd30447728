"""Renderers: each takes a Report and returns text.

A format's module is imported only when that format is asked for: ``--format json`` never
imports rich, a tenth of a cold run on a checkpoint file.
"""

from importlib import import_module

DEFAULT_DEPTH = 2  # layers shown below the root in text and Markdown; JSON holds the whole tree

_RENDERERS = {
    "text": ("paramscope.render.text", "render_text"),
    "json": ("paramscope.render.json", "render_json"),
    "md": ("paramscope.render.markdown", "render_markdown"),
}


def renderer(fmt: str):
    """The summary renderer for a format name (text, json, md)."""
    module, name = _RENDERERS[fmt]
    return getattr(import_module(module), name)


def __getattr__(name: str):
    """``from paramscope.render import render_text`` (and json, markdown), imported on use."""
    for fmt, (_module, function) in _RENDERERS.items():
        if name == function:
            return renderer(fmt)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_DEPTH", "render_json", "render_markdown", "render_text", "renderer"]
