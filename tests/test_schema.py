"""The published JSON contract: the shipped schemas are valid draft 2020-12, cover every
command, match the source kinds, and the strict check of the test suite catches what it must."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from paramscope.core.kinds import Kind
from paramscope.render import COMMANDS
from paramscope.schema import schema
from tests.json_contract import validated

GOLDEN_JSON = sorted((Path(__file__).parent / "golden").glob("*.json"))


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_each_schema_is_valid_draft_2020_12(command: str | None) -> None:
    jsonschema.Draft202012Validator.check_schema(schema(command))


def test_the_package_ships_a_schema_per_command_and_the_shared_objects() -> None:
    shipped = {path.name for path in files("paramscope.schema").iterdir() if path.name.endswith(".json")}
    assert shipped == {f"{command}.json" for command in COMMANDS} | {"defs.json"}


def test_every_shared_object_is_used() -> None:
    text = json.dumps([schema(command) for command in COMMANDS])
    unused = [name for name in schema()["$defs"] if name not in COMMANDS and f'"#/$defs/{name}"' not in text]
    assert unused == []


def test_source_kinds_are_the_typed_kinds() -> None:
    """Every ``source.kind`` the schema allows is a ``Kind``, and every ``Kind`` is allowed."""
    assert schema()["$defs"]["kind"]["enum"] == [kind.value for kind in Kind]


def test_an_unknown_command_has_no_schema() -> None:
    with pytest.raises(ValueError, match="no schema for 'memoir'"):
        schema("memoir")


def test_golden_outputs_cover_every_command() -> None:
    assert {json.loads(path.read_text())["command"] for path in GOLDEN_JSON} == set(COMMANDS)


@pytest.mark.parametrize("path", GOLDEN_JSON, ids=lambda path: path.name)
def test_golden_outputs_validate_against_the_published_schema(path: Path) -> None:
    """The one schema that `paramscope schema` prints validates every command's output."""
    jsonschema.validate(json.loads(path.read_text()), schema())


# ----------------------------------------------- what may change within schema_version 1, and what not


@pytest.fixture
def summary_output() -> dict:
    return json.loads((Path(__file__).parent / "golden" / "torch_tied_norm.summary.json").read_text())


def test_the_published_schema_accepts_added_keys(summary_output: dict) -> None:
    """A consumer validating with an older schema accepts keys added within version 1."""
    summary_output["added_later"] = {"anything": 1}
    summary_output["root"]["children"][0]["tensors"][0]["added_later"] = "embedding.weight"
    jsonschema.validate(summary_output, schema("summary"))


@pytest.mark.parametrize(
    "change",
    [
        lambda doc: doc.pop("conventions"),  # a key removed
        lambda doc: doc["totals"]["all"].update(params="67"),  # a type changed
        lambda doc: doc.update(schema_version=2),
        lambda doc: doc["root"]["children"][0]["tensors"][0].update(role="learnable"),
    ],
    ids=["key-removed", "type-changed", "other-version", "unknown-role"],
)
def test_the_published_schema_refuses_breaking_changes(summary_output: dict, change) -> None:
    change(summary_output)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(summary_output, schema("summary"))


def test_the_suites_check_refuses_a_key_the_schema_does_not_document(summary_output: dict) -> None:
    """Tests validate strictly, so that every key paramscope writes is in the schema."""
    validated(copy.deepcopy(summary_output))
    summary_output["root"]["children"][0]["tensors"][0]["undocumented"] = True
    with pytest.raises(AssertionError, match="root/children/0/tensors/0"):
        validated(summary_output)
