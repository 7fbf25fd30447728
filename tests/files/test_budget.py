"""The read budget and the boundary: each class of hostile input refused by design, cleanly.

Every file here is small and written byte by byte (tests/files/pickles.py); each would hang,
exhaust memory or report absurd counts without the mechanism it tests.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import paramscope
from paramscope.core.printable import one_line, visible
from paramscope.core.tree import UniqueNames
from paramscope.errors import InputError
from paramscope.render import render
from paramscope.sources.boundary import load_json, shape_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from tests.files import pickles
from tests.files.corpus import legacy_torch
from tests.json_contract import validated

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        paramscope.inspect(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_hand_written_state_dict_reads_like_torch(tmp_path: Path) -> None:
    """The helpers write what torch writes: a real tensor comes out with its shape."""
    data = pickles.state_dict([("w", pickles.tensor("0", 6, (2, 3)))])
    report = paramscope.inspect(write(tmp_path, "m.pt", pickles.torch_zip(data, {"0": 24})))
    assert [(t.path, t.shape, t.params) for t in report.tensors()] == [("w", (2, 3), 6)]


def test_pickle_dag_is_walked_once_per_object(tmp_path: Path) -> None:
    """130 opcodes that reference one tuple twice per level, 64 levels: 2**64 paths as a tree."""
    body = pickles.tensor("0", 4) + pickles.put(0) + b"0"
    for _ in range(64):
        body += pickles.get(0) + pickles.get(0) + b"\x86" + pickles.put(0) + b"0"  # x = (x, x)
    data = pickles.PROTO + b"}" + pickles.text("deep") + body + pickles.get(0) + b"s" + pickles.STOP
    report = paramscope.inspect(write(tmp_path, "dag.pt", pickles.torch_zip(data, {"0": 16})))
    assert report.totals["all"].params == 4
    assert report.totals["all"].tensors == 1


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_pickle_dag_of_lists_and_dicts(tmp_path: Path, kind: str) -> None:
    body = pickles.tensor("0", 4) + pickles.put(0) + b"0"
    for _ in range(64):
        if kind == "list":
            body += b"](" + pickles.get(0) + pickles.get(0) + b"e"
        else:
            body += b"}(" + pickles.text("a") + pickles.get(0) + pickles.text("b") + pickles.get(0) + b"u"
        body += pickles.put(0) + b"0"
    data = pickles.PROTO + b"}" + pickles.text("deep") + body + pickles.get(0) + b"s" + pickles.STOP
    report = paramscope.inspect(write(tmp_path, "dag.pt", pickles.torch_zip(data, {"0": 16})))
    assert report.totals["all"].params == 4


def test_nesting_without_marks_is_refused(tmp_path: Path) -> None:
    """TUPLE1 wraps the top of the stack: 100,000 levels from 200,000 bytes, no MARK needed."""
    body = pickles.tensor("0", 4) + b"\x85" * 100_000
    data = pickles.PROTO + b"}" + pickles.text("deep") + body + b"s" + pickles.STOP
    message = refusal(write(tmp_path, "deep.pt", pickles.torch_zip(data, {"0": 16})))
    assert "levels of nesting" in message


def test_mark_stack_is_bounded(tmp_path: Path) -> None:
    data = pickles.PROTO + b"(" * 10_000 + pickles.STOP
    assert "levels of nesting" in refusal(write(tmp_path, "marks.pt", pickles.torch_zip(data, {})))


def test_opcode_and_object_budgets(tmp_path: Path) -> None:
    nones = pickles.PROTO + b"]" + b"N0" * 100_000 + pickles.STOP
    path = write(tmp_path, "ops.pt", pickles.torch_zip(nones, {}))
    with paramscope.limits(pickle_opcodes=50_000), pytest.raises(BudgetExceeded, match="pickle opcodes"):
        paramscope.inspect(path)
    lists = pickles.PROTO + b"]" + b"]" * 100_000 + b"(" + pickles.STOP
    path = write(tmp_path, "objects.pt", pickles.torch_zip(lists, {}))
    with paramscope.limits(pickle_objects=50_000), pytest.raises(BudgetExceeded, match="objects created"):
        paramscope.inspect(path)


def test_huge_integers_and_bytes_are_never_materialised(tmp_path: Path) -> None:
    """A 100,000-byte LONG4 as a dimension: refused as a dimension, never turned into digits."""
    huge = b"\x8b" + struct.pack("<i", 100_000) + b"\x7f" * 100_000
    record = pickles.tensor("0", 4).replace(b"(K\x04t(K\x01t", b"(" + huge + b"t(K\x01t")
    data = pickles.state_dict([("w", record)])
    assert "bad dimension" in refusal(write(tmp_path, "long.pt", pickles.torch_zip(data, {"0": 16})))
    past_end = pickles.PROTO + b"\x8e" + struct.pack("<Q", 2**62) + pickles.STOP  # BINBYTES8
    assert "truncated" in refusal(write(tmp_path, "bytes.pt", pickles.torch_zip(past_end, {})))


@pytest.mark.parametrize(
    ("record", "storage_bytes", "phrase"),
    [
        (pickles.tensor("0", 4, offset=2**70), 16, "bad storage offset"),
        (pickles.tensor("0", 2**60, (2**30, 2**30)), 16, "the file holds 16 bytes"),
        (pickles.tensor("0", 4, (2**20, 2**20)), 16, "reaches past its storage"),
        (pickles.tensor("0", 4, (2**62, 2**62)), 16, "more than 2**63 elements"),
        (pickles.tensor("0", 4, (0, 2**70)), 16, "more than 2**63 elements"),
    ],
)
def test_absurd_tensor_sizes_are_checked_against_the_file(
    tmp_path: Path, record: bytes, storage_bytes: int, phrase: str
) -> None:
    data = pickles.state_dict([("w", record)])
    assert phrase in refusal(write(tmp_path, "m.pt", pickles.torch_zip(data, {"0": storage_bytes})))


def test_legacy_storages_must_lie_inside_the_file(tmp_path: Path) -> None:
    main = pickles.state_dict([("w", pickles.tensor("0", 4))])[2:]  # legacy_torch adds PROTO
    keys = pickles.PROTO + b"](" + pickles.text("0") + b"e" + pickles.STOP
    whole = legacy_torch(main) + keys + struct.pack("<q", 4) + b"\0" * 16
    report = paramscope.inspect(write(tmp_path, "ok.pt", whole))
    assert report.totals["all"].params == 4
    short = legacy_torch(main) + keys + struct.pack("<q", 2**40) + b"\0" * 16
    assert "past the end of the file" in refusal(write(tmp_path, "short.pt", short))


def test_python2_ordered_dict_keeps_its_items(tmp_path: Path) -> None:
    """Python 2-era torch pickles rebuild OrderedDict through REDUCE from a list of pairs."""
    pairs = b"](" + b"(" + pickles.text("w") + pickles.tensor("0", 4) + b"l" + b"e"
    data = pickles.PROTO + b"ccollections\nOrderedDict\n" + b"(" + pairs + b"tR" + pickles.STOP
    report = paramscope.inspect(write(tmp_path, "py2.pt", pickles.torch_zip(data, {"0": 16})))
    assert [t.path for t in report.tensors()] == ["w"]


def test_repeated_references_are_bounded(tmp_path: Path) -> None:
    """One tensor named 1,500 times: aliases beyond the budget are refused, not listed."""
    items = [("w0", pickles.tensor("0", 4) + pickles.put(0))]
    items += [(f"w{i}", pickles.get(0)) for i in range(1, 1500)]
    path = write(tmp_path, "aliases.pt", pickles.torch_zip(pickles.state_dict(items), {"0": 16}))
    with (
        paramscope.limits(references=1000),
        pytest.raises(BudgetExceeded, match="repeated tensor references"),
    ):
        paramscope.inspect(path)
    with paramscope.limits(references=2000):
        report = paramscope.inspect(path)
    assert report.totals["all"].tensors == 1 and len(list(report.tensors())) == 1500


def test_names_cannot_forge_output(tmp_path: Path) -> None:
    hostile = "a\x1b[2J\x1b]0;pwned\x07b\nc\x00d\u202ee\udcff"
    data = pickles.state_dict([(hostile, pickles.tensor("0", 4))])
    report = paramscope.inspect(write(tmp_path, "names.pt", pickles.torch_zip(data, {"0": 16})))
    text = render("summary", report, "text", show_tensors=True)
    for raw in ("\x1b", "\x07", "\x00", "\u202e", "\udcff"):
        assert raw not in text
    assert "\\x1b[2J" in text
    rows = [line for line in text.splitlines() if "pwned" in line]
    assert len(rows) == 1  # the newline forged no second line
    validated(render("summary", report, "json"))  # valid JSON, encodable, as published


def test_a_2000_level_name_renders(tmp_path: Path) -> None:
    name = ".".join("a" * 2000)
    data = pickles.state_dict([(name, pickles.tensor("0", 4))])
    report = paramscope.inspect(write(tmp_path, "deep.pt", pickles.torch_zip(data, {"0": 16})))
    assert validated(render("summary", report, "json"))["totals"]["all"]["params"] == 4
    assert render("summary", report, "text", depth=None)


def test_overlong_names_are_refused(tmp_path: Path) -> None:
    data = pickles.state_dict([("x" * 100_000, pickles.tensor("0", 4))])
    assert "characters in a name" in refusal(write(tmp_path, "long.pt", pickles.torch_zip(data, {"0": 16})))


def test_unique_names_are_linear_and_unique() -> None:
    names = UniqueNames()
    given = [names("a") for _ in range(50_000)] + [names("a_7"), names("a")]
    assert len(set(given)) == len(given)
    assert given[1] == "a_1" and given[-2] == "a_7_1" and given[-1] == "a_50000"


@pytest.mark.parametrize(
    ("shape", "phrase"),
    [
        ([2**64], "more than 2**63"),
        ([0, 2**70], "more than 2**63"),
        ([-1], "bad dimension"),
        ([True], "bad dimension"),
        ([1.5], "bad dimension"),
        ("12", "not a list"),
        ([1] * 65, "dimensions"),
    ],
)
def test_shapes_at_the_boundary(shape: object, phrase: str) -> None:
    with pytest.raises(InputError, match=re.escape(phrase)):
        shape_of(shape, ReadBudget(), "t")


def test_json_is_bounded_before_it_is_parsed() -> None:
    bomb = b"[" + b"{}," * 2_100_000 + b"{}]"
    with pytest.raises(BudgetExceeded, match="JSON values"):
        load_json(bomb, ReadBudget(), "config.json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_json(b"[" + b"9" * 5000 + b"]", ReadBudget(), "config.json")
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(InputError):
        load_json(deep, ReadBudget(), "config.json")


def test_safetensors_dimensions_the_reference_rejects(tmp_path: Path) -> None:
    for shape in ([2**64, 0], [0, 2**70]):
        header = json.dumps({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}).encode()
        path = write(tmp_path, "a.safetensors", struct.pack("<Q", len(header)) + header)
        assert "2**63" in refusal(path)


def test_npy_data_must_be_in_the_file(tmp_path: Path) -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header.encode() + b"\n" + b"\0" * 64
    assert "the file holds" in refusal(write(tmp_path, "a.npy", data))
    negative = data.replace(b"(1000000, 1000000)", b"(-1000000, 1000)   ")
    assert "bad dimension" in refusal(write(tmp_path, "b.npy", negative))
    np.save(tmp_path / "ok.npy", np.zeros((3, 4), dtype=np.float32))
    assert paramscope.inspect(tmp_path / "ok.npy").totals["all"].bytes == 48


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paramscope.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    result = run_cli("summary", str(fifo))  # the timeout turns a block into a failure
    assert result.returncode == 2
    assert result.stderr.strip() == f"paramscope: error: {fifo}: a FIFO, not a regular file"


def test_errors_are_one_visible_line(tmp_path: Path) -> None:
    path = tmp_path / ("bad\nname\x1b[2J" + "x" * 200 + ".pt")
    path.write_bytes(b"\x01garbage")
    result = run_cli("summary", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 320 and "\x1b" not in lines[0]
    assert lines[0].endswith("…") and "bad\\nname\\x1b[2J" in lines[0]


def test_outputs_never_overwrite_inputs(tmp_path: Path) -> None:
    data = pickles.state_dict([("w", pickles.tensor("0", 4))])
    model = write(tmp_path, "m.pt", pickles.torch_zip(data, {"0": 16}))
    before = model.read_bytes()
    os.link(model, tmp_path / "hardlink.pt")
    for target in (model, tmp_path / "hardlink.pt"):
        result = run_cli("summary", str(model), "--output", str(target))
        assert result.returncode == 2 and "never writes over its input" in result.stderr
    assert model.read_bytes() == before


def test_unwritable_output_is_bad_input(tmp_path: Path) -> None:
    data = pickles.state_dict([("w", pickles.tensor("0", 4))])
    model = write(tmp_path, "m.pt", pickles.torch_zip(data, {"0": 16}))
    result = run_cli("summary", str(model), "--output", str(tmp_path / "missing" / "out.json"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    data = pickles.state_dict([("w", pickles.tensor("0", 4))])
    model = write(tmp_path, "m.pt", pickles.torch_zip(data, {"0": 16}))
    assert run_cli("summary", str(model), "--output", str(tmp_path / "out.txt")).returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_limit_flag(tmp_path: Path) -> None:
    data = pickles.state_dict([("w", pickles.tensor("0", 4))])
    model = write(tmp_path, "m.pt", pickles.torch_zip(data, {"0": 16}))
    result = run_cli("summary", str(model), "--limit", "tensors=0")
    assert result.returncode == 2 and "(raise with --limit tensors=N)" in result.stderr
    assert run_cli("summary", str(model), "--limit", "tensors=5").returncode == 0
    assert "unknown limit 'nope'" in run_cli("summary", str(model), "--limit", "nope=1").stderr
    assert run_cli("summary", str(model), "--limit", "tensors").returncode == 2


def test_visible_and_one_line() -> None:
    assert visible("plain name") == "plain name"
    assert visible("a\tb\u00a0c\U000e0001\x85") == "a\\tb\\xa0c\\U000e0001\\x85"
    assert one_line("x" * 1000).endswith("…") and len(one_line("x" * 1000)) == 300


def test_memory_growth_limit_is_a_second_wall() -> None:
    """In a single-threaded process, a read that escapes its budget meets an address-space
    limit (MemoryError), and the limit is gone after the read."""
    script = (
        "from paramscope.core.oslimits import memory_growth_limit\n"
        "try:\n"
        "    with memory_growth_limit(64 * 2**20):\n"
        "        bytearray(512 * 2**20)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('refused')\n"
        "bytearray(512 * 2**20)\n"
        "print('free again')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["refused", "free", "again"]


def test_large_real_checkpoints_pass_the_default_budget(tmp_path: Path) -> None:
    """The limits sit far above real files: 20,000 tensors with an optimizer, saved by torch."""
    import torch

    state = {f"layers.{i}.weight": torch.zeros(2, 2) for i in range(20_000)}
    moments = {i: {"exp_avg": torch.zeros(2, 2), "step": torch.tensor(1.0)} for i in range(2_000)}
    torch.save({"model": state, "optimizer": {"state": moments, "param_groups": []}}, tmp_path / "big.pt")
    report = paramscope.inspect(tmp_path / "big.pt")
    assert report.totals["all"].tensors == 20_000 and len(report.optimizer.tensors) == 4_000


def test_file_names_are_shown_escaped(tmp_path: Path) -> None:
    """The user's own file name may hold escape sequences: refusals and reports escape it."""
    bad = write(tmp_path, "evil\x1b[2J\n.pt", b"\x01garbage")
    with pytest.raises(InputError) as caught:
        paramscope.inspect(bad)
    assert "\x1b" not in str(caught.value) and "evil\\x1b[2J\\n.pt" in str(caught.value)
    np.save(tmp_path / "arr\x1b]0;t\x07.npy", np.zeros(3, dtype=np.float32))
    report = paramscope.inspect(tmp_path / "arr\x1b]0;t\x07.npy")
    text = render("summary", report, "text")
    assert "\x1b" not in text and "\x07" not in text and "arr\\x1b]0;t\\x07" in text


def test_data_a_file_describes_but_does_not_hold_is_said(tmp_path: Path) -> None:
    """Sizes that are declared rather than stored come with a warning saying so."""
    np.savez_compressed(tmp_path / "zeros.npz", x=np.zeros((1000, 1000), dtype=np.float32))
    report = paramscope.inspect(tmp_path / "zeros.npz")
    assert report.totals["all"].bytes == 4_000_000
    assert any("stored compressed" in warning for warning in report.warnings)
    expanded = pickles.tensor("0", 1).replace(b"(K\x01t(K\x01t", b"(J\x00\x00\x01\x00t(K\x00t")
    data = pickles.state_dict([("w", expanded)])
    report = paramscope.inspect(write(tmp_path, "expand.pt", pickles.torch_zip(data, {"0": 4})))
    assert report.totals["all"].params == 65536
    assert any("expanded views (stride 0)" in warning for warning in report.warnings)


def _safetensors(tensors: dict[str, int]) -> bytes:
    """A safetensors file of float32 vectors ``name -> length``."""
    header, offset = {}, 0
    for name, length in tensors.items():
        header[name] = {"dtype": "F32", "shape": [length], "data_offsets": [offset, offset + 4 * length]}
        offset += 4 * length
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * offset


def test_outputs_never_overwrite_a_shard_that_was_read(tmp_path: Path) -> None:
    write(tmp_path, "a.safetensors", _safetensors({"w": 2}))
    index = write(
        tmp_path, "m.safetensors.index.json", json.dumps({"weight_map": {"w": "a.safetensors"}}).encode()
    )
    before = (tmp_path / "a.safetensors").read_bytes()
    result = run_cli("summary", str(index), "--output", str(tmp_path / "a.safetensors"))
    assert result.returncode == 2 and "never writes over its input" in result.stderr
    assert (tmp_path / "a.safetensors").read_bytes() == before


def test_companion_files_may_not_link_outside_the_folder(tmp_path: Path) -> None:
    """A shard that is a symbolic link out of the model's folder is refused, its size unread."""
    outside = write(tmp_path, "outside.safetensors", _safetensors({"w": 2}))
    model = tmp_path / "model"
    model.mkdir()
    (model / "a.safetensors").symlink_to(outside)
    index = write(
        model, "m.safetensors.index.json", json.dumps({"weight_map": {"w": "a.safetensors"}}).encode()
    )
    assert "leads outside the model's folder" in refusal(index)


def test_keys_differing_only_in_lone_surrogates_stay_two_tensors(tmp_path: Path) -> None:
    data = pickles.state_dict([("\ud800a", pickles.tensor("0", 4)), ("\udfffa", pickles.tensor("1", 4))])
    report = paramscope.inspect(write(tmp_path, "s.pt", pickles.torch_zip(data, {"0": 16, "1": 16})))
    assert report.totals["all"].tensors == 2
    assert sorted(t.name for t in report.tensors()) == ["\\ud800a", "\\udfffa"]
