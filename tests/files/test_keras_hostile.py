"""Hostile Keras and HDF5 files: each ends in one clean InputError, within its budget, or in a
report whose counts are still true. The files are written by Keras or h5py and changed by code
here (nothing is committed), so that every hostile byte is explained; the sandbox is tested
with forged replies and with children that crash, hang, spin and allocate."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import struct
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import paramscope
from paramscope.core.report import Role
from paramscope.errors import InputError
from paramscope.ops.explain import explain_layers
from paramscope.sources.budget import ReadBudget
from paramscope.sources.freeze_out import write_plan
from paramscope.sources.hdf5_structure import structure_of
from paramscope.sources.sandbox import Sandboxed, parse_reply
from paramscope.specs.lookup import NoFormula, spec_for
from tests.files.hostile_corpus import heap_free_space_cut
from tests.files.writers import written_files

MiB = 1024 * 1024
CONV = {"input_shape": [None, 8, 8, 3]}  # the build config Keras records for the conv layer


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory) -> dict[str, Path]:
    """conv.keras, conv.h5 (legacy) and conv.weights.h5, written by Keras in a child process
    (this test process never imports Keras), shared with the other file tests."""
    folder = tmp_path_factory.mktemp("keras")
    return {
        path.name: path for path in written_files(tmp_path_factory, folder) if path.name.startswith("conv.")
    }


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, contents: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


def with_config(source: Path, target: Path, change) -> Path:
    """``source`` with its config.json changed by ``change(config)`` (which may return a new one)."""
    contents = members(source)
    config = json.loads(contents["config.json"])
    changed = change(config)
    contents["config.json"] = json.dumps(config if changed is None else changed).encode()
    return write_zip(target, contents)


def conv_layer(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")


def refused(path: Path, phrase: str) -> str:
    with pytest.raises(InputError) as caught:
        paramscope.inspect(path)
    message = str(caught.value)
    assert phrase in message and "\n" not in message and message.startswith(str(path))
    return message


def tensors(report) -> list[tuple[str, tuple[int, ...], Role]]:
    return [(t.path, t.shape, t.role) for t in report.tensors()]


# HDF5 attributes: a variable-length string is a 16-byte reference into a heap


def vlen_bomb(path: Path, count: int, size: int, groups: int = 0) -> Path:
    """``layer_names`` of ``count`` references that all point to one ``size``-character heap
    object: h5py writes one real object and ``count - 1`` one-character ones, then every
    reference is overwritten with the first one's (length, heap collection, index)."""
    with h5py.File(path, "w") as handle:
        for number in range(groups):
            handle.create_group(f"g{number}")
        handle.attrs["layer_names"] = ["A" * size] + ["b"] * (count - 1)
    data = bytearray(path.read_bytes())
    first = data.find(struct.pack("<I", size))
    while data[first + 16 : first + 20] != struct.pack("<I", 1):  # the next reference: "b"
        first = data.find(struct.pack("<I", size), first + 1)
    record = bytes(data[first : first + 16])
    for number in range(1, count):
        data[first + 16 * number : first + 16 * (number + 1)] = record
    assert data.count(record) == count  # 3,000 references to 1 MB: 3 GB from a 1 MB file
    path.write_bytes(data)
    return path


def test_vlen_attribute_bomb_refused_before_it_is_read(tmp_path) -> None:
    path = vlen_bomb(tmp_path / "bomb.h5", count=3000, size=MiB)
    refused(path, "attribute layer_names lists 3,000 names, more than the 1 objects in the file")


def test_vlen_attribute_bomb_stops_at_the_text_budget(tmp_path) -> None:
    """As many groups as references, so that the count passes: the read itself is stopped
    once it has decoded more text than the budget allows."""
    path = vlen_bomb(tmp_path / "bomb.h5", count=3000, size=MiB, groups=3000)
    message = refused(path, "attribute layer_names exceeds")
    assert "--limit header_bytes" in message


def test_attribute_that_is_not_text_refused(tmp_path) -> None:
    path = tmp_path / "numbers.h5"
    with h5py.File(path, "w") as handle:
        handle.create_group("dense")
        handle.attrs["layer_names"] = np.arange(2)
    refused(path, "attribute layer_names is not text")


def test_hard_links_walked_once_and_charged(keras_files, tmp_path) -> None:
    """20,000 hard links to one layer group, twice the default limit: each object is read once,
    every link charged."""
    path = tmp_path / "links.weights.h5"
    path.write_bytes(keras_files["conv.weights.h5"].read_bytes())
    with h5py.File(path, "a") as handle:
        layer = handle["layers/conv2d"]
        for number in range(20_000):
            handle[f"zz{number}"] = layer  # after "layers": the walk reaches the real path first
    refused(path, "HDF5 linking exceeds 10,000 repeated tensor references")
    with paramscope.limits(references=20_000):
        assert tensors(paramscope.inspect(path)) == tensors(
            paramscope.inspect(keras_files["conv.weights.h5"])
        )


def with_weights(source: Path, target: Path, change) -> Path:
    target.write_bytes(source.read_bytes())
    with h5py.File(target, "a") as handle:
        change(handle)
    return target


def test_second_hard_link_to_a_dataset_refused(keras_files, tmp_path) -> None:
    """One stored array would become two variables (Keras writes each variable once)."""

    def link(handle) -> None:
        handle["layers/conv2d/vars/2"] = handle["layers/conv2d/vars/0"]

    path = with_weights(keras_files["conv.weights.h5"], tmp_path / "linked.weights.h5", link)
    refused(path, "refused a second hard link ('layers/conv2d/vars/2') to dataset 'layers/conv2d/vars/0'")


def test_datasets_never_written_are_refused_or_flagged(keras_files, tmp_path) -> None:
    """A chunked dataset whose chunks were never written declares what the file does not hold:
    past 4 GiB and 1,000 times its stored bytes Keras refuses it, and so do we; below, the report
    says the count is only declared."""

    def unwritten(shape: tuple[int, ...]):
        return lambda handle: handle.create_dataset(
            "layers/dense/vars/2", shape=shape, dtype="f4", chunks=(1024,)
        )

    source = keras_files["conv.weights.h5"]
    refused(with_weights(source, tmp_path / "bomb.weights.h5", unwritten((2**36,))), "(a shape bomb)")
    report = paramscope.inspect(with_weights(source, tmp_path / "sparse.weights.h5", unwritten((2**26,))))
    assert report.totals["all"].params == paramscope.inspect(source).totals["all"].params + 2**26
    assert (
        "1 tensor(s) not stored in full in the file (compressed, or never written: head/var2)"
        in report.warnings[1]
    )


def test_endless_loop_in_libhdf5_stopped(keras_files, tmp_path) -> None:
    """The loop spends CPU in one libhdf5 call and never returns: the sandbox sees no beat."""
    path = tmp_path / "loop.weights.h5"
    path.write_bytes(heap_free_space_cut(keras_files["conv.weights.h5"].read_bytes()))
    refused(path, "the HDF5 parser made no progress in 1 s of CPU")


# Archive members


def test_deflate_bomb_in_the_weights_member_refused(keras_files, tmp_path) -> None:
    path = tmp_path / "bomb.keras"
    contents = members(keras_files["conv.keras"])
    del contents["model.weights.h5"]
    write_zip(path, contents)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open("model.weights.h5", "w", force_zip64=True) as member,
    ):
        for _ in range(100):
            member.write(bytes(MiB))  # 100 MB of zeros in about 100 KB
    refused(path, "zip bomb")


def test_deflated_keras_file_reads_like_the_stored_one(keras_files, tmp_path) -> None:
    """Keras stores its members; an archive zipped again with compression is still read, the
    weights decompressed through the archive caps."""
    path = write_zip(tmp_path / "deflated.keras", members(keras_files["conv.keras"]), zipfile.ZIP_DEFLATED)
    assert tensors(paramscope.inspect(path)) == tensors(paramscope.inspect(keras_files["conv.keras"]))
    with paramscope.limits(decompressed_bytes=10_000):
        refused(path, "decompressed bytes")


# config.json, metadata.json and model_config: validated into typed records


def _set(path: tuple, value):
    def change(config: dict) -> None:
        target = conv_layer(config) if path[0] == "conv" else config
        for key in path[1:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD_CONFIGS = {
    "config-is-a-list": (lambda config: [config], "config.json: a layer should be an object, not a list"),
    "root-class-name-is-a-number": (_set(("root", "class_name"), 7), "class_name should be text, not int"),
    "class-name-is-a-list": (_set(("conv", "class_name"), ["Conv2D"]), "class_name should be text, not list"),
    "layer-config-is-a-list": (
        _set(("conv", "config"), [{"filters": 8}]),
        "config should be an object, not a list",
    ),
    "name-is-a-list": (_set(("conv", "config", "name"), ["conv"]), "name should be text, not list"),
    "build-config-is-a-list": (
        _set(("conv", "build_config"), [[None, 8, 8, 3]]),
        "build_config should be an object",
    ),
    "trainable-is-text": (_set(("conv", "config", "trainable"), "no"), "trainable should be true or false"),
    "name-too-long": (_set(("conv", "config", "name"), "n" * 5000), "exceeds 4,096 characters in a name"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_config_of_the_wrong_types_refused(case: str, keras_files, tmp_path) -> None:
    change, phrase = BAD_CONFIGS[case]
    refused(with_config(keras_files["conv.keras"], tmp_path / "bad.keras", change), phrase)


@pytest.mark.parametrize(
    ("metadata", "phrase"),
    [
        (b"[]", "metadata.json should be an object, not a list"),
        (b'{"keras_version": ["3.0"]}', "keras_version should be text, not list"),
        (b'{"keras_version": "3.0"', "metadata.json is not valid JSON"),
    ],
)
def test_metadata_of_the_wrong_types_refused(metadata: bytes, phrase: str, keras_files, tmp_path) -> None:
    contents = {**members(keras_files["conv.keras"]), "metadata.json": metadata}
    refused(write_zip(tmp_path / "bad.keras", contents), phrase)


def test_huge_metadata_refused(keras_files, tmp_path) -> None:
    values = {**members(keras_files["conv.keras"]), "metadata.json": b"[" + b"[]," * 2_100_000 + b"[]]"}
    refused(write_zip(tmp_path / "values.keras", values), "exceeds 2,000,000 JSON values")
    large = {**members(keras_files["conv.keras"]), "metadata.json": b'{"x": "' + b"y" * 2 * MiB + b'"}'}
    with paramscope.limits(header_bytes=MiB):
        refused(write_zip(tmp_path / "large.keras", large), "exceeds 1,048,576 bytes of JSON")


def nested(depth: int) -> str:
    """A model config of ``depth`` Sequential models each holding the next, as JSON text
    (json.dumps itself cannot write 10,000 levels)."""
    leaf = '{"class_name": "Dense", "config": {"name": "leaf", "units": 2}}'
    return '{"class_name": "Sequential", "config": {"name": "s", "layers": [' * depth + leaf + "]}}" * depth


def with_config_text(source: Path, target: Path, text: str) -> Path:
    return write_zip(target, {**members(source), "config.json": text.encode()})


def test_deeply_nested_layer_configs_refused(keras_files, tmp_path) -> None:
    refused(
        with_config_text(keras_files["conv.keras"], tmp_path / "deep.keras", nested(10_000)),
        "levels of nesting",
    )
    within_json = with_config_text(keras_files["conv.keras"], tmp_path / "nested.keras", nested(40))
    with paramscope.limits(depth=30):
        refused(within_json, "nested layers exceeds 30 levels of nesting")


def legacy_with_model_config(source: Path, target: Path, value) -> Path:
    target.write_bytes(source.read_bytes())
    with h5py.File(target, "a") as handle:
        handle.attrs["model_config"] = value
    return target


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("[]", "model_config: a layer should be an object, not a list"),
        (json.dumps({"class_name": ["Functional"], "config": {}}), "class_name should be text, not list"),
        (
            json.dumps({"class_name": "Functional", "config": {"layers": [], "name": 3}}),
            "name should be text",
        ),
        (nested(10_000), "levels of nesting"),
        (["{}", "{}"], "attribute model_config should be text, not a list"),
    ],
    ids=["list", "class-name-list", "name-number", "nested", "attribute-list"],
)
def test_legacy_model_config_of_the_wrong_types_refused(value, phrase: str, keras_files, tmp_path) -> None:
    refused(legacy_with_model_config(keras_files["conv.h5"], tmp_path / "bad.h5", value), phrase)


# Numbers in layer configs: evaluated by the specs under one guard


BAD_NUMBERS = {
    "groups-zero": {"groups": 0},
    "filters-negative": {"filters": -8},
    "filters-over-64-bits": {"filters": 2**70},
    "filters-text": {"filters": "8"},
    "filters-list": {"filters": [8]},
    "filters-true": {"filters": True},
    "filters-null": {"filters": None},
    "kernel-huge-float": {"kernel_size": 1e300},
    "kernel-infinite": {"kernel_size": float("inf")},
    "kernel-size-million-ints": {"kernel_size": [3] * 1_000_000},
    "groups-not-dividing": {"groups": 3},
    "filters-contradict-weights": {"filters": 16},
}


@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_bad_numbers_in_a_config_leave_the_layer_without_a_formula(case: str, keras_files, tmp_path) -> None:
    path = with_config(
        keras_files["conv.keras"],
        tmp_path / "numbers.keras",
        lambda c: conv_layer(c)["config"].update(BAD_NUMBERS[case]),
    )
    report = paramscope.inspect(path)
    conv = [t for t in report.tensors() if t.path.startswith("conv/")]
    assert [(t.name, t.role) for t in conv] == [("var0", Role.UNKNOWN), ("var1", Role.UNKNOWN)]
    assert report.totals["all"].params == paramscope.inspect(keras_files["conv.keras"]).totals["all"].params
    assert "unknown roles (conv/var0, conv/var1)" in report.warnings[0]
    (explained,) = [e for e in explain_layers(report) if e.path == "conv"]
    assert explained.params == 3 * 3 * 3 * 8 + 8


def test_spec_guard_turns_any_failure_into_no_formula() -> None:
    conv = {"filters": 8, "kernel_size": [3, 3], "groups": 0}
    for kind in ("keras_file", "h5"):
        with pytest.raises(NoFormula, match="ZeroDivisionError"):
            spec_for(kind, "Conv2D", conv, CONV)
    with pytest.raises(NoFormula, match="over 64 bits"):
        spec_for(
            "keras_file", "BatchNormalization", {"axis": [-1] * 1_000_000}, {"input_shape": [None, 2**62]}
        )
    with pytest.raises(NoFormula, match="not a real shape"):
        spec_for("keras_file", "Dense", {"units": 2**62}, {"input_shape": [None, 2**62]})
    assert spec_for("keras_file", "Conv2D", {**conv, "groups": 1}, CONV).formula.value == 224


# The sandbox: the child's reply is data to validate, the child itself limited


FORGED = {
    "not-json": (b"\x80\x04pickle", "is not UTF-8 text"),
    "not-an-object": (b"[1, 2]", "should be an object, not a list"),
    "both-fields": (b'{"ok": 1, "error": "x"}', "neither a result nor an error"),
    "error-not-text": (b'{"error": 5}', "neither a result nor an error"),
    "ok-not-a-structure": (b'{"ok": []}', "should be an object, not a list"),
    "missing-fields": (b'{"ok": {"groups": []}}', "does not have the fields of a structure"),
    "unknown-attribute": (
        b'{"ok": {"attributes": [{"evil": "x"}], "root": 0, "groups": [], "datasets": []}}',
        "unexpected attribute 'evil'",
    ),
    "attribute-of-numbers": (
        b'{"ok": {"attributes": [{"name": [1, 2]}], "root": 0, "groups": [], "datasets": []}}',
        "neither text nor a list of text",
    ),
    "root-out-of-range": (
        b'{"ok": {"attributes": [], "root": 0, "groups": [], "datasets": []}}',
        "is not one of the 0 attribute entries",
    ),
    "root-is-true": (
        b'{"ok": {"attributes": [{}], "root": true, "groups": [], "datasets": []}}',
        "is not one of the 1 attribute entries",
    ),
    "group-path-list": (
        b'{"ok": {"attributes": [{}], "root": 0, "groups": [[["a"], 0]], "datasets": []}}',
        "a name that is not text",
    ),
    "dataset-entry-short": (
        b'{"ok": {"attributes": [{}], "root": 0, "groups": [], "datasets": [["w", [2]]]}}',
        "is not a list of 5",
    ),
    "negative-dimension": (
        b'{"ok": {"attributes": [{}], "root": 0, "groups": [], "datasets": [["w", [-2], "f4", 8, 8]]}}',
        "bad dimension -2",
    ),
    "over-2-63-elements": (
        b'{"ok": {"attributes": [{}], "root": 0, "groups": [], "datasets": [["w", [4294967296, 4294967296], "f4", 0, 0]]}}',
        "more than 2**63 elements",
    ),
    "infinite-dimension": (
        b'{"ok": {"attributes": [{}], "root": 0, "groups": [], "datasets": [["w", [Infinity], "f4", 0, 0]]}}',
        "bad dimension inf",
    ),
    "stored-bytes-negative": (
        b'{"ok": {"attributes": [{}], "root": 0, "groups": [], "datasets": [["w", [2], "f4", 8, -1]]}}',
        "-1 is not a size in bytes",
    ),
    "dtype-not-text": (
        b'{"ok": {"attributes": [{}], "root": 0, "groups": [], "datasets": [["w", [2], {"a": 1}, 8, 8]]}}',
        "a name that is not text",
    ),
    "nested-10000": (b'{"ok": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "levels of nesting"),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_sandbox_replies_refused(case: str) -> None:
    data, phrase = FORGED[case]
    budget = ReadBudget()
    with pytest.raises(InputError) as caught:
        structure_of(parse_reply(data, budget, "x.h5"), budget, "x.h5")
    assert phrase in str(caught.value) and "\n" not in str(caught.value)


def test_forged_error_message_shown_on_one_escaped_line() -> None:
    with pytest.raises(InputError) as caught:
        parse_reply(b'{"error": "\\u001b[2Jgone\\nparamscope: ok"}', ReadBudget(), "x.h5")
    message = str(caught.value)
    assert message.startswith("x.h5: \\x1b[2Jgone") and "\x1b" not in message and "\n" not in message


def crash(budget: ReadBudget) -> None:
    faulthandler.disable()  # pytest's, inherited: the traceback would only be noise
    os.kill(os.getpid(), signal.SIGSEGV)


def sleep(budget: ReadBudget) -> None:
    time.sleep(60)


def spin(budget: ReadBudget) -> None:
    while True:
        pass


def allocate(budget: ReadBudget) -> int:
    """Far more than the limit: a forked child may reuse heap its parent freed but kept."""
    return len(bytearray(64 * budget.limits.child_memory))


def long_reply(budget: ReadBudget) -> str:
    return "x" * (2 * budget.limits.header_bytes)


@pytest.mark.parametrize(
    ("function", "changes", "phrase"),
    [
        (crash, {}, "the HDF5 parser crashed on this file (SIGSEGV)"),
        (sleep, {"seconds": 1}, "reading took longer than 1 s"),
        (spin, {}, "the HDF5 parser made no progress in 1 s of CPU"),
        (allocate, {"child_memory": 64 * MiB}, "exceeds 67,108,864 bytes of parser memory"),
        (long_reply, {"header_bytes": MiB}, "exceeds 1,048,576 bytes of JSON"),
    ],
    ids=["crash", "sleep", "spin", "memory", "long-reply"],
)
def test_sandboxed_child_breaches_are_clean_errors(function, changes: dict, phrase: str) -> None:
    with paramscope.limits(**changes):
        budget = ReadBudget()
    with pytest.raises(InputError) as caught, Sandboxed(function, label="x.h5", budget=budget) as child:
        child.result()
    message = str(caught.value)
    assert message.startswith("x.h5: ") and phrase in message and "\n" not in message


# freeze --out never writes over its input


def test_freeze_out_never_writes_over_its_input(keras_files, tmp_path) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(keras_files["conv.keras"].read_bytes())
    before = path.read_bytes()
    plan = paramscope.freeze(path, freeze=["conv"])
    os.link(path, tmp_path / "hard.keras")
    (tmp_path / "soft.keras").symlink_to(path)
    for target in (path, tmp_path / "hard.keras", tmp_path / "soft.keras"):
        with pytest.raises(InputError, match="never writes over its input"):
            write_plan(plan, target, force=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.keras", "model.keras", "soft.keras"]


def test_freeze_out_streams_a_compressed_archive(keras_files, tmp_path) -> None:
    path = write_zip(tmp_path / "deflated.keras", members(keras_files["conv.keras"]), zipfile.ZIP_DEFLATED)
    out = write_plan(paramscope.freeze(path, freeze=["conv"]), tmp_path / "frozen.keras")
    roles = {t.path: t.role for t in paramscope.inspect(out).tensors()}
    assert roles["conv/kernel"] is Role.FROZEN and roles["head/kernel"] is Role.TRAINABLE
    with zipfile.ZipFile(out) as archive:
        assert archive.getinfo("model.weights.h5").compress_type == zipfile.ZIP_DEFLATED


def test_shard_names_linking_to_one_file_read_once(keras_files, tmp_path) -> None:
    (tmp_path / "shard.weights.h5").write_bytes(keras_files["conv.weights.h5"].read_bytes())
    names = {f"/layers/x{i}/vars": [f"s{i}.weights.h5"] for i in range(500)}
    for name in names.values():
        (tmp_path / name[0]).symlink_to(tmp_path / "shard.weights.h5")
    index = tmp_path / "model.weights.json"
    index.write_text(json.dumps({"weight_map": names}))
    report = paramscope.inspect(index)
    assert tensors(report) == tensors(paramscope.inspect(keras_files["conv.weights.h5"]))
    assert report.warnings[-1] == "read from 1 HDF5 shard(s) named by the index."


def test_shard_name_with_a_nul_refused(tmp_path) -> None:
    path = tmp_path / "a.weights.json"
    path.write_text(json.dumps({"weight_map": {"/layers/dense/vars": ["a\u0000.weights.h5"]}}))
    refused(path, "not a bare file name")


def test_a_config_contradicting_its_weights_is_the_files_problem(keras_files, tmp_path) -> None:
    """A Conv2D saved with 8 filters whose config now says 4: explain blames the file, not us."""
    path = with_config(
        keras_files["conv.keras"],
        tmp_path / "lies.keras",
        lambda c: conv_layer(c)["config"].update(filters=4),
    )
    (explained,) = [e for e in paramscope.explain(path).problems if e.path == "conv"]
    assert explained.problem.startswith("the file's config does not match its weights: the formula gives")
    assert "paramscope bug" not in explained.problem
