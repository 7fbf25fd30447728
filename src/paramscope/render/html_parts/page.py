"""The stylesheet, a standalone page and a notebook fragment.

Every rule is scoped to ``.paramscope``, so a fragment shown in a notebook styles nothing of
the notebook's own. Text and rules take the notebook's colours (``inherit``,
``currentColor``), so a fragment reads in light and dark themes alike; only a standalone page
sets a background, following ``prefers-color-scheme``. Print keeps the role colours and drops
what only works on screen (the filter box).
"""

from __future__ import annotations

from paramscope.render.html_parts.blocks import escape
from paramscope.render.html_parts.palette import ROLE_COLOURS

_ROLE_RULES = "\n".join(
    f".paramscope .role-{role} {{ --role: {colour}; }}" for role, colour in ROLE_COLOURS.items()
)

STYLE = (
    """
.paramscope { color: inherit; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
.paramscope h1 { font-size: 1.4em; margin: 0.2em 0; }
.paramscope h2 { font-size: 1.15em; margin: 1.2em 0 0.4em; }
.paramscope .answer { font-size: 1.1em; font-weight: 600; margin: 0.4em 0; }
.paramscope .source, .paramscope .note { opacity: 0.75; }
.paramscope table { border-collapse: collapse; margin: 0.3em 0; }
.paramscope th, .paramscope td { padding: 2px 10px; border-bottom: 1px solid rgba(128, 128, 128, 0.35);
  text-align: left; vertical-align: top; }
.paramscope td.num, .paramscope th.num { text-align: right; font-variant-numeric: tabular-nums; }
.paramscope code, .paramscope pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; }
.paramscope pre { padding: 0.5em; border: 1px solid rgba(128, 128, 128, 0.35); overflow-x: auto; }
.paramscope .swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.35em;
  background: var(--role); border: 1px solid rgba(128, 128, 128, 0.6); vertical-align: -0.05em; }
.paramscope .bad { font-weight: 700; text-decoration: underline; }
.paramscope details > summary { cursor: pointer; margin: 0.5em 0; }
.paramscope .layers { display: flex; gap: 2em; flex-wrap: wrap; }
.paramscope svg { max-width: 100%; height: auto; }
.paramscope svg text { fill: currentColor; font-size: 12px; }
.paramscope svg .bar text, .paramscope svg .node text { fill: #fff; paint-order: stroke;
  stroke: rgba(0, 0, 0, 0.55); stroke-width: 2px; }
.paramscope svg .node rect { stroke: rgba(128, 128, 128, 0.9); stroke-width: 0.5; }
.paramscope svg .node:hover rect { stroke: currentColor; stroke-width: 2; }
.paramscope svg .tip { display: none; }
.paramscope svg .tip text { fill: currentColor; stroke: none; font-size: 13px; }
.paramscope svg .node:hover .tip { display: inline; }
.paramscope input.filter { font: inherit; padding: 2px 6px; margin: 0.3em 0; min-width: 18em; }
@media print {
  .paramscope { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .paramscope input.filter { display: none; }
}
"""
    + _ROLE_RULES
)

_PAGE_COLOURS = """
html { background: #fff; color: #1b1b1b; }
@media (prefers-color-scheme: dark) { html { background: #161616; color: #e6e6e6; } }
@media print { html { background: #fff; color: #000; } }
body { margin: 1.5em auto; max-width: 76em; padding: 0 1em; }
"""


def page(title: str, body: str, script: str = "") -> str:
    """A whole HTML document: inline CSS, inline SVG, ``script`` (if any) inline at the end."""
    tail = f"<script>{script}</script>\n" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{escape(title)}</title>\n<style>{_PAGE_COLOURS}{STYLE}</style>\n</head>\n"
        f'<body>\n<div class="paramscope">\n{body}\n</div>\n{tail}</body>\n</html>\n'
    )


def fragment(body: str) -> str:
    """What a notebook cell shows: the scoped stylesheet and the body, no script."""
    return f'<div class="paramscope">\n<style>{STYLE}</style>\n{body}\n</div>\n'
