"""`paramscope memory` on the command line: every format from one real model, its figures
against what torch holds after a real optimizer step, a file, and the exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from paramscope.cli import cli
from tests.fixtures.models import tiny
from tests.json_contract import validated

ROOT = Path(__file__).resolve().parent.parent
FROZEN_TINY = ["tests/fixtures/models.py:tiny", "--arg", "frozen=True"]


@pytest.fixture(autouse=True)
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(*args: str):
    return CliRunner().invoke(cli, ["memory", *args])


def after_one_adam_step(frozen: bool = True) -> dict[str, int]:
    """What torch holds for tiny(frozen) after one real Adam step: parameters and buffers, the
    .grads and the optimizer's state tensors, in bytes."""
    model = tiny(frozen=frozen)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    model.train()
    model(torch.randn(4, 3)).square().mean().backward()
    optimizer.step()
    weights = sum(t.nbytes for t in [*model.parameters(), *model.buffers()])
    grads = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    state = sum(t.nbytes for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t))
    return {"weights": weights, "gradients": grads, "optimizer": state, "total": weights + grads + state}


def test_json_equals_what_torch_holds_after_a_real_step() -> None:
    result = run(*FROZEN_TINY, "--format", "json")
    assert result.exit_code == 0, result.output
    document = validated(result.output)
    held = after_one_adam_step()
    assert {part: document[part]["bytes"] for part in held} == held
    frozen = sum(p.nbytes for p in tiny(frozen=True)[0].parameters())
    assert document["weights"]["by_role"]["frozen"] == frozen
    saved = after_one_adam_step(frozen=False)["total"] - held["total"]
    assert document["saved_by_freezing"]["bytes"] == saved
    assert document["activations"] is None and document["per_device"] is None
    assert document["settings"]["optimizer"] == "adam"


def test_text_is_a_table_then_the_saving_and_the_rules() -> None:
    result = run(*FROZEN_TINY)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Part"))
    assert lines[header].split() == ["Part", "Trainable", "Frozen", "State", "Total"]
    rows = [line.split("  ")[0] for line in lines[header + 1 : header + 7]]
    assert rows == ["weights", "gradients", "optimizer state", "master weights", "activations", "total"]
    assert f"({after_one_adam_step()['total']:,} bytes)" in result.output
    assert "freezing saved" in result.output and "Assumptions:" in result.output


def test_markdown_is_a_heading_a_table_and_the_rules(tmp_path: Path) -> None:
    output = tmp_path / "memory.md"
    result = run(*FROZEN_TINY, "--format", "md", "--output", str(output))
    assert result.exit_code == 0 and result.output == "", result.output
    lines = output.read_text().splitlines()
    assert lines[0].startswith("## Memory: Sequential")
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| part | trainable | frozen | state | total |" and len(table) == 2 + 6
    assert "- torch Adam" in output.read_text()


def test_sharding_shows_deepspeeds_figure_beside_ours() -> None:
    result = run(*FROZEN_TINY, "--sharding", "zero3", "--devices", "2", "--format", "json")
    document = validated(result.output)
    device = document["per_device"]
    params = sum(p.numel() for p in tiny().parameters())  # DeepSpeed counts every parameter
    assert (device["devices"], device["sharding"], device["deepspeed"]["params"]) == (2, "zero3", params)
    assert device["bytes"] < document["total"]["bytes"]


def test_a_file_takes_freeze_rules_and_lora(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(tiny().state_dict(), path)
    live = validated(run(*FROZEN_TINY, "--format", "json").output)
    from_file = validated(run(str(path), "--freeze", "0", "--format", "json").output)
    assert from_file["gradients"]["bytes"] == live["gradients"]["bytes"]
    lora = validated(
        run(str(path), "--lora", "r=2,targets=3", "--optimizer", "sgd", "--format", "json").output
    )
    head = tiny()[3].weight
    assert lora["gradients"]["bytes"] == 2 * (head.shape[0] + head.shape[1]) * 4  # A and B in float32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*FROZEN_TINY, "--optimizer", "rmsprop"], "optimizer 'rmsprop': expected one of sgd"),
        ([*FROZEN_TINY, "--precision", "int3"], "precision 'int3'"),
        ([*FROZEN_TINY, "--batch", "2"], "both a batch size and an input shape"),
        (["no/such/model.pt"], "no/such/model.pt: no such file"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    assert_bad_input(run(*args), message)


def test_activations_of_a_file_exit_2(tmp_path: Path) -> None:
    """A file has no forward to measure."""
    path = tmp_path / "tiny.pt"
    torch.save(tiny().state_dict(), path)
    assert_bad_input(
        run(str(path), "--batch", "2", "--input-shape", "3"), "activations need a model that runs"
    )


def assert_bad_input(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("paramscope: error: ") and message in lines[0], lines
    assert result.stdout == ""


def test_a_4bit_pt_file_has_its_logical_shape_for_qlora(tmp_path: Path) -> None:
    """bitsandbytes packs a 4-bit weight flat; its quant state (stored beside it) records the
    shape, which the .pt reader reads as the safetensors reader does: LoRA finds the matrix."""
    bnb = pytest.importorskip("bitsandbytes")
    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(128, 64, quant_type="nf4").to("cpu")  # .to() quantizes
    torch.save(layer.state_dict(), tmp_path / "qlora.pt")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in layer.state_dict().items()}, tmp_path / "qlora.safetensors")
    documents = [
        validated(run(str(tmp_path / name), "--lora", "r=4,targets=all", "--format", "json").output)
        for name in ("qlora.pt", "qlora.safetensors")
    ]
    adapters = 4 * (layer.in_features + layer.out_features)
    assert documents[0]["gradients"]["bytes"] == documents[1]["gradients"]["bytes"] == adapters * 4
    assert documents[0]["weights"] == documents[1]["weights"]
