"""Renderers: each takes a Report and returns text."""

from paramscope.render.json import render_json
from paramscope.render.markdown import render_markdown
from paramscope.render.text import render_text

RENDERERS = {"text": render_text, "json": render_json, "md": render_markdown}

__all__ = ["RENDERERS", "render_json", "render_markdown", "render_text"]
