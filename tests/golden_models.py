"""The small, fixed models the golden outputs are made of (tests/test_golden.py), also
referenced by the CLI as ``tests/golden_models.py:NAME``.

Each result is pinned where a run would differ: a live framework's version reads ``X.Y.Z`` and
a file's path is its bare name, so that the golden files change only when paramscope's output
does.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from torch import nn

import paramscope
from paramscope.core.report import Report

PINNED_VERSION = "X.Y.Z"


def pinned(report: Report, **source: str) -> Report:
    """``report`` with its source's fields fixed (by default the live framework's version)."""
    fixed = dataclasses.replace(report.source, **(source or {"framework_version": PINNED_VERSION}))
    return dataclasses.replace(report, source=fixed)


# ------------------------------------------------------------------ a small Keras transfer model


def keras_transfer():
    """A frozen base (Dense + BatchNormalization) under a trainable head, as in the Keras
    transfer-learning guide."""
    import keras

    base = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, name="hidden"), keras.layers.BatchNormalization(name="bn")],
        name="base",
    )
    inputs = keras.Input((6,), name="pixels")
    outputs = keras.layers.Dense(3, name="head")(base(inputs))
    model = keras.Model(inputs, outputs, name="transfer")
    base.trainable = False
    return model


def keras_transfer_report(model) -> Report:
    return pinned(paramscope.inspect(model), framework_version=PINNED_VERSION, backend="torch")


# ------------------------------------------- a torch model with a tied weight and a BatchNorm


class TiedNormLM(nn.Module):
    """Embedding → BatchNorm → a decoder tied to the embedding. The norm is frozen and left in
    train mode, the pitfall lint names (its statistics still drift)."""

    def __init__(self, vocab: int = 10, width: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.norm = nn.BatchNorm1d(width)
        self.decoder = nn.Linear(width, vocab)
        self.decoder.weight = self.embedding.weight
        self.norm.requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.embedding(tokens)))


def torch_tied_norm() -> TiedNormLM:
    torch.manual_seed(0)
    return TiedNormLM()


def torch_tied_norm_report(model) -> Report:
    return pinned(paramscope.inspect(model))


# ------------------------------------------------------------ a torch file that needs code


CHECKPOINT_NAME = "checkpoint.pt"


def write_checkpoint(folder: Path) -> Path:
    """A training checkpoint as people save it: a state dict beside the run's argparse
    Namespace, which makes loading it import argparse (a needs-code verdict)."""
    torch.manual_seed(0)
    path = folder / CHECKPOINT_NAME
    state = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).state_dict()
    torch.save({"state_dict": state, "epoch": 7, "args": argparse.Namespace(lr=0.1, batch=32)}, path)
    return path


def torch_file_report(folder: Path) -> Report:
    return pinned(paramscope.inspect(write_checkpoint(folder)), path=CHECKPOINT_NAME)  # its format: "zip"


# ----------------------------------------------------------------- an audit with exact numbers


class AuditedNet(nn.Module):
    """A frozen Linear, a trainable Linear and a call counter, with small integer weights: with
    a sum loss, integer inputs and SGD at lr 0.25 every change is an exact binary fraction,
    the same on every machine."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(2, 2)
        self.head = nn.Linear(2, 1)
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        with torch.no_grad():
            self.body.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
            self.body.bias.copy_(torch.tensor([1.0, -1.0]))
            self.head.weight.copy_(torch.tensor([[1.0, -1.0]]))
            self.head.bias.zero_()
        self.body.requires_grad_(False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.calls += 1  # state outside a frozen part: it may change
        return self.head(self.body(inputs))


def output_sum(outputs: torch.Tensor) -> torch.Tensor:
    return outputs.sum()


def audited_net() -> dict:
    """The factory's dict: the model, an optimizer over its trainable part, inputs and loss."""
    model = AuditedNet()
    return {
        "model": model,
        "optimizer": torch.optim.SGD(model.head.parameters(), lr=0.25),
        "inputs": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "loss": output_sum,
    }


# --------------------------------------------------- memory and diff: the seed's model, checkpoints


def keras_seed():
    """The issue's model (#14): MobileNetV2 (pooled, ``weights=None``) under Dense(23), the base
    frozen. A 32×32 input builds it fast; its weights do not depend on the image size."""
    import keras

    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3)
    )
    base.trainable = False
    return keras.Sequential([base, keras.layers.Dense(23, name="head")], name="seed")


def keras_seed_memory():
    """Adam in fp32 under ZeRO-2 on one GPU, as the issue prices it, beside DeepSpeed's figure."""
    estimate = paramscope.memory(keras_seed(), optimizer="adam", sharding="zero2")
    report = pinned(estimate.report, framework_version=PINNED_VERSION, backend="torch")
    return dataclasses.replace(estimate, report=report)


def checkpoint_memory(folder: Path):
    """The needs-code checkpoint with its first two layers frozen, for AdamW."""
    estimate = paramscope.memory(write_checkpoint(folder), optimizer="adamw", freeze=["0", "1"])
    return dataclasses.replace(estimate, report=pinned(estimate.report, path=CHECKPOINT_NAME))


def fine_tuned_diff(folder: Path, expect_frozen: tuple[str, ...] = ("body",)):
    """``audited_net`` saved before and after two real SGD steps on its head: exact binary
    fractions, the same on every machine. Its call counter starts at zero, so its relative
    change is infinite (null in JSON)."""
    target = audited_net()
    model, optimizer = target["model"], target["optimizer"]
    torch.save(model.state_dict(), folder / "before.pt")
    for _ in range(2):
        optimizer.zero_grad()
        target["loss"](model(target["inputs"])).backward()
        optimizer.step()
    torch.save(model.state_dict(), folder / "after.pt")
    diff = paramscope.diff(folder / "before.pt", folder / "after.pt", expect_frozen=expect_frozen)
    source_a = dataclasses.replace(diff.source_a, path="before.pt")
    return dataclasses.replace(
        diff, source_a=source_a, source_b=dataclasses.replace(diff.source_b, path="after.pt")
    )
