"""A guard's look against the training step it watches, side by side from one run.

* a look: `guard.check()` — fingerprint every learnable tensor and the state of frozen parts,
  read the flags and optimizer groups, judge (goal: at most 10 % of one training step);
* a step with the guard attached and no look due: its optimizer hooks only count (goal:
  nothing measurable against the plain step);
* what the guard holds: two integers per watched tensor, against the model's bytes.

Models: the torch CNN of benchmarks/audit.py (~11M parameters, frozen backbone, batch 8 at
64×64), the same CNN fully trainable, a torch Transformer encoder (many small tensors), and the
seed's Keras MobileNetV2 transfer model (torch backend, batch 8 at 224×224). Best of several
repeats. Run with `python benchmarks/guards.py`; benchmarks/README.md records its numbers.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch
from audit import cnn, training_step  # benchmarks/ is the script's folder
from run import best as best_of
from torch import nn

import paramscope
from paramscope.guards import Guard
from paramscope.guards.keras_probe import KerasProbe

REPEATS = 7


def best(fn) -> float:
    return best_of(fn, REPEATS)


def encoder() -> tuple[nn.Module, tuple]:
    layer = nn.TransformerEncoderLayer(d_model=256, nhead=4, dim_feedforward=1024, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=6, enable_nested_tensor=False), (torch.randn(8, 64, 256),)


def torch_row(name: str, model: nn.Module, inputs: tuple) -> str:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    plain_step = training_step(model, optimizer, inputs)
    step = best(plain_step)
    guard = paramscope.guard(model, optimizer, every=10**9)
    plain_step()  # the first step is looked at; the following ones are not due
    quiet_step = best(plain_step)
    look = best(guard.check)
    held = 16 * len(guard.probe.watched)
    model_bytes = sum(t.numel() * t.element_size() for t in guard.probe.report.origins.values())
    guard.close()
    return _row(name, step, quiet_step, look, held, model_bytes)


def keras_row() -> str:
    from paramscope.demo import build_transfer_model

    model, base = build_transfer_model()
    base.trainable = False
    model.compile("adam", "mse")
    x = np.random.default_rng(0).random((8, 224, 224, 3), dtype=np.float32)
    y = np.zeros((8, 23), np.float32)
    model.train_on_batch(x, y)  # built optimizer and traced step, as in a run under way
    step = best(lambda: model.train_on_batch(x, y))
    guard = Guard(KerasProbe(model))
    look = best(guard.check)
    model_bytes = sum(t.bytes for t in guard.probe.report.tensors() if t.shared_with is None)
    held = 16 * len(guard.probe.watched)
    return _row("Keras MobileNetV2 transfer (torch backend)", step, None, look, held, model_bytes)


def _row(name: str, step: float, quiet: float | None, look: float, held: int, model_bytes: int) -> str:
    """One table row; ``quiet`` is None where the step is fit()'s own (the callback only counts)."""
    quiet_text = "—" if quiet is None else f"{quiet * 1e3:.1f}"
    return (
        f"| {name} | {step * 1e3:.1f} | {quiet_text} | {look * 1e3:.1f} | {look / step:.1%} "
        f"| {held:,} B for {model_bytes / 2**20:,.1f} MiB |"
    )


def main() -> None:
    torch.manual_seed(0)
    print(
        "| model | plain step (ms) | step, guard attached, no look (ms) | a look (ms) | look / step | guard holds |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(torch_row("torch CNN, 11M params, frozen backbone", cnn(), (torch.randn(8, 3, 64, 64),)))
    print(
        torch_row(
            "torch CNN, 11M params, all trainable",
            cnn().requires_grad_(True).train(),
            (torch.randn(8, 3, 64, 64),),
        )
    )
    print(torch_row("torch Transformer encoder, 6 layers, 4.7M params", *encoder()))
    print(keras_row())


if __name__ == "__main__":
    main()
