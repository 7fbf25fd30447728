"""A checkpoint that cannot be read is listed with its error, never dropped (scan exits 1), and
``summary DIR`` reads a folder only when it is one checkpoint (a sharded one counts once)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import paramscope
from paramscope.cli import cli

STATE = {"embed.weight": torch.zeros(10, 4), "head.weight": torch.zeros(3, 4), "head.bias": torch.zeros(3)}
STATE_PARAMS = sum(t.numel() for t in STATE.values())


def sharded(folder: Path) -> Path:
    """A sharded safetensors checkpoint laid out as transformers' save_pretrained lays one out:
    shards written by safetensors, named ``model-0000i-of-0000n``, and their JSON index."""
    shards = [{"embed.weight": STATE["embed.weight"]}, {k: STATE[k] for k in ("head.weight", "head.bias")}]
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, folder / name)
        weight_map |= dict.fromkeys(shard, name)
    index = {"metadata": {"total_size": 4 * STATE_PARAMS}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return folder


def invoke(*args: str):
    return CliRunner().invoke(cli, [*args])


def test_broken_files_named_like_checkpoints_are_listed(tmp_path: Path) -> None:
    torch.save(STATE, tmp_path / "whole.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    save_file(STATE, tmp_path / "cut.safetensors")
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "cut.safetensors").read_bytes()[:40])
    index = json.dumps({"metadata": {}, "weight_map": {"head.weight": "model-00001-of-00002.safetensors"}})
    (tmp_path / "model.safetensors.index.json").write_text(index[: len(index) // 2])  # cut short
    (tmp_path / "model.weights.json").write_bytes(b"\x00\x01 not an index")
    save_file({f"layer{i}.weight": torch.zeros(1) for i in range(20)}, tmp_path / "refused.safetensors")
    (tmp_path / "notes.txt").write_text("no checkpoint, not named like one")
    (tmp_path / "empty.json").write_bytes(b"")
    with paramscope.limits(tensors=10):
        result = invoke("scan", str(tmp_path), "--format", "json")
    assert result.exit_code == 1, result.output
    lines = {Path(line["source"]["path"]).name: line for line in json.loads(result.output)["files"]}
    assert sorted(lines) == [
        "cut.safetensors",
        "empty.pt",
        "model.safetensors.index.json",
        "model.weights.json",
        "refused.safetensors",
        "whole.pt",
    ]
    assert lines["whole.pt"]["error"] is None and lines["whole.pt"]["params"] == STATE_PARAMS
    assert lines["empty.pt"]["error"] == "empty file"
    assert lines["model.weights.json"]["error"].startswith("unrecognised file format")
    assert "not valid JSON" in lines["model.safetensors.index.json"]["error"]
    assert "exceeds 10 tensors" in lines["refused.safetensors"]["error"]
    assert lines["cut.safetensors"]["error"]


def test_each_files_source_says_what_wrote_it(tmp_path: Path) -> None:
    """scan's per-file ``source`` is what ``summary FILE`` says of the file (path aside)."""
    torch.jit.script(torch.nn.Linear(2, 3)).save(tmp_path / "scripted.pt")
    torch.save(STATE, tmp_path / "weights.pt")
    scanned = invoke("scan", str(tmp_path), "--format", "json")
    assert scanned.exit_code == 0, scanned.output
    for entry in json.loads(scanned.output)["files"]:
        summary = invoke("summary", entry["source"]["path"], "--format", "json")
        assert summary.exit_code == 0, summary.output
        assert entry["source"] == json.loads(summary.output)["source"]
    versions = {
        Path(e["source"]["path"]).name: e["source"]["framework_version"]
        for e in json.loads(scanned.output)["files"]
    }
    assert versions["scripted.pt"].startswith("format ")


def test_a_folder_of_several_checkpoints_is_scans(tmp_path: Path) -> None:
    for name in ("a.pt", "b.pt", "d.pt"):
        torch.save(STATE, tmp_path / name)
    save_file(STATE, tmp_path / "c.safetensors")
    (tmp_path / "config.json").write_text("{}")  # beside checkpoints, not one
    result = invoke("summary", str(tmp_path))
    assert result.exit_code == 2
    assert result.output == (
        f"paramscope: error: {tmp_path} holds 4 checkpoints (a.pt, b.pt, c.safetensors, …); "
        f"use `paramscope scan {tmp_path}`\n"
    )


def test_a_sharded_checkpoint_is_one(tmp_path: Path) -> None:
    folder = sharded(tmp_path)
    result = invoke("summary", str(folder), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["all"]["params"] == STATE_PARAMS
    torch.save({"step": 3}, folder / "optimizer.pt")
    result = invoke("summary", str(folder))
    assert result.exit_code == 2
    assert f"{folder} holds 2 checkpoints (model.safetensors.index.json, optimizer.pt)" in result.output


def test_a_folder_holding_one_checkpoint_file_is_that_file(tmp_path: Path) -> None:
    torch.save(STATE, tmp_path / "epoch_3.pt")
    (tmp_path / "notes.txt").write_text("trained on a laptop")
    assert paramscope.inspect(tmp_path).totals["all"].params == STATE_PARAMS
    (tmp_path / "epoch_3.pt").unlink()
    result = invoke("summary", str(tmp_path))
    assert result.exit_code == 2
    assert "no checkpoint file in this folder" in result.output
