"""The published JSON contract: a JSON Schema (draft 2020-12) for every command's output.

``defs.json`` holds the objects every command shares (``source``, ``tensor``, ``node``,
``totals``, ``finding``…); ``<command>.json`` the command's own envelope. :func:`schema`
joins them into one self-contained schema, which ``paramscope schema [COMMAND]`` prints.
Within ``schema_version`` 1, keys and ``kind`` values may be added; none is removed, renamed,
retyped or given another meaning (README, "JSON (schema_version 1)").
"""

from __future__ import annotations

import json
from importlib.resources import files

from paramscope.render import COMMANDS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "urn:paramscope:schema:1"


def _load(name: str) -> dict:
    return json.loads(files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))


def schema(command: str | None = None) -> dict:
    """The schema of ``command``'s JSON output; without one, a schema that the output of
    every command validates against (its ``command`` key picks the branch)."""
    if command is None:
        bodies = {name: _load(name) for name in COMMANDS}
        return {
            "$schema": DRAFT,
            "$id": BASE_ID,
            "title": "paramscope --format json",
            "oneOf": [{"$ref": f"#/$defs/{name}"} for name in COMMANDS],
            "$defs": {**_load("defs"), **bodies},
        }
    if command not in COMMANDS:
        raise ValueError(f"no schema for {command!r}: commands {COMMANDS}")
    return {"$schema": DRAFT, "$id": f"{BASE_ID}:{command}", **_load(command), "$defs": _load("defs")}


__all__ = ["COMMANDS", "schema"]
