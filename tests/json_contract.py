"""Every JSON output the suite produces is validated against the shipped schema, strictly.

The published schema leaves objects open: within schema_version 1 keys may be added, and a
consumer must accept them. Here every object that lists its properties is closed, so an
output key the schema does not document fails the test that produced it. Use ``validated``
on every ``--format json`` output and every ``paramscope.render.document``.
"""

from __future__ import annotations

import json
from functools import cache

import jsonschema

from paramscope.schema import schema


def closed(node: object) -> object:
    """``node`` with ``additionalProperties: false`` on every object schema that lists properties."""
    if isinstance(node, list):
        return [closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: closed(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        result["additionalProperties"] = False
    return result


@cache
def validator(command: str | None) -> jsonschema.Draft202012Validator:
    """The strict validator of ``command``'s output (of any command's when None)."""
    return jsonschema.Draft202012Validator(closed(schema(command)))


def validated(output: str | dict) -> dict:
    """``output`` — a command's JSON text or its parsed document — checked against the schema
    of the command it names; the document."""
    document = json.loads(output) if isinstance(output, str) else output
    errors = list(validator(document.get("command")).iter_errors(document))
    messages = [f"at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}" for e in errors[:5]]
    assert not errors, f"{len(errors)} schema errors:\n" + "\n".join(messages)
    return document
