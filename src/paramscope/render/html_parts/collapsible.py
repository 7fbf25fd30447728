"""Long Markdown tables folded into ``<details>``, as GitHub renders them in a PR comment.

A pull-request comment with a 150-row layer table buries everything under it. Past
``LONG_TABLE`` rows the table goes inside ``<details>``: the blank lines around it keep it
Markdown (CommonMark ends an HTML block at a blank line), so GitHub still draws the table.
"""

from __future__ import annotations

import html

LONG_TABLE = 20  # rows a comment shows open


def collapsible(summary: str, lines: list[str], rows: int) -> list[str]:
    """``lines`` as they are when ``rows`` is short, else inside ``<details>`` under ``summary``."""
    if rows <= LONG_TABLE:
        return lines
    return [
        "<details>",
        f"<summary>{html.escape(summary, quote=False)}</summary>",
        "",
        *lines,
        "",
        "</details>",
        "",
    ]
