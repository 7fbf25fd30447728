"""Defects a new user found in the file readers, each pinned by the file that showed it.

A plain ``pickle.dump`` file is read as a pickle with its verdict (it was sent to the legacy
torch reader and refused for its magic number); scan lists a FIFO or a dangling link named
like a checkpoint with its error (it left them out); a safetensors header longer than its
file is called truncated (it was called too large, with advice to raise a limit).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import paramscope
from paramscope.cli import cli


class _SystemCall:
    """Pickles as ``os.system("echo")``; never unpickled here."""

    def __reduce__(self):
        return (os.system, ("echo",))


class _Custom:
    """A class of the user's own: loading a pickle of one needs this module's code."""


def _summary(path: Path):
    return CliRunner().invoke(cli, ["summary", str(path)])


@pytest.mark.parametrize("protocol", [0, 1, 2, 5])
def test_a_malicious_plain_pickle_is_judged_not_refused(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"w": _SystemCall()}, protocol=protocol))
    report = paramscope.inspect(path)
    assert report.pickle.verdict.value == "malicious"
    assert [name for name, _ in report.pickle.malicious] == ["posix.system"]
    result = _summary(path)
    assert result.exit_code == 1, result.output
    assert "malicious pickle" in result.output


def test_a_plain_pickle_of_arrays_is_counted_with_its_verdict(tmp_path: Path) -> None:
    weights = {"w": np.zeros((2, 3), np.float32), "b": np.ones(4), "extra": _Custom()}
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps(weights))
    report = paramscope.inspect(path)
    arrays = [a for a in weights.values() if isinstance(a, np.ndarray)]
    assert report.totals["all"].tensors == len(arrays)
    assert report.totals["all"].params == sum(a.size for a in arrays)
    assert report.totals["all"].bytes == sum(a.nbytes for a in arrays)
    assert report.pickle.verdict.value == "needs-code"
    assert f"{__name__}._Custom" in report.pickle.needs_code
    result = _summary(path)
    assert result.exit_code == 0, result.output
    assert "needs code" in result.output


def test_scan_lists_a_fifo_and_a_dangling_link_named_like_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "x.pt").symlink_to(tmp_path / "gone.pt")
    os.mkfifo(tmp_path / "y.pt")  # opened for reading, it would wait for a writer forever
    os.mkfifo(tmp_path / "notes")  # no checkpoint by name: passed by, as any other file
    weights = tmp_path / "w.pkl"
    weights.write_bytes(pickle.dumps({"w": _SystemCall(), "a": np.zeros(3)}, protocol=2))
    lines = {Path(line.path).name: line for line in paramscope.scan(tmp_path, workers=1).lines}
    assert sorted(lines) == ["w.pkl", "x.pt", "y.pt"]
    assert lines["x.pt"].error == "a symbolic link to a missing file"
    assert lines["y.pt"].error == "a FIFO, not a regular file"
    assert lines["w.pkl"].error is None and lines["w.pkl"].pickle.verdict.value == "malicious"
    assert lines["w.pkl"].params == 3


def test_a_safetensors_header_longer_than_its_file_is_truncated_not_too_large(tmp_path: Path) -> None:
    path = tmp_path / "a.safetensors"
    body = b'{"__metadata__":{}}' + b" " * 3000
    path.write_bytes((10**12).to_bytes(8, "little") + body)
    with pytest.raises(paramscope.InputError) as refused:
        paramscope.inspect(path)
    message = str(refused.value)
    assert "truncated or corrupt" in message
    assert f"header claims {10**12:,} bytes, file has {8 + len(body):,}" in message
    assert "--limit" not in message


def test_a_safetensors_header_inside_its_file_still_meets_the_cap(tmp_path: Path) -> None:
    """The cap still refuses a header the file really holds, and says which limit to raise."""
    path = tmp_path / "a.safetensors"
    save_file({"w": torch.zeros(3)}, path, metadata={"note": "x" * 2_000})
    with paramscope.limits(header_bytes=1_000), pytest.raises(paramscope.InputError) as refused:
        paramscope.inspect(path)
    assert "exceeds 1,000 bytes of JSON" in str(refused.value)
    assert "--limit header_bytes" in str(refused.value)
