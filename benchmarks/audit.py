"""audit against the training step it proves, side by side from one run.

* time: `paramscope.audit(model, steps=1)` (snapshot, one real train step, diff, restore,
  bit-exact proof) vs one plain training step of the same model with the same optimizer
  (goal: at most 3x);
* memory: what the audit's snapshot holds vs the bytes of the model's tensors (goal: at most
  2x), with a stateless (SGD) and a stateful (Adam) optimizer.

Models: a torch CNN (ResNet-style, ~11M parameters) and the seed's Keras MobileNetV2 transfer
model (torch backend), both with a frozen base. Best of several repeats. Run with
`python benchmarks/audit.py`; the numbers in benchmarks/README.md come from it.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch
from run import best as best_of  # benchmarks/ is the script's folder
from torch import nn

import paramscope
from paramscope.ops.audit import TrainingSetup
from paramscope.ops.audit_keras import KerasAudit
from paramscope.ops.audit_torch import TorchAudit

REPEATS = 5


def best(fn) -> float:
    return best_of(fn, REPEATS)


def cnn() -> nn.Module:
    layers, width = [nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()], 64
    for out in (128, 256, 512, 512):
        layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        layers += [nn.Conv2d(out, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        width = out
    backbone = nn.Sequential(*layers)
    backbone.requires_grad_(False)
    backbone.eval()
    return nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def nbytes(value) -> int:
    if torch.is_tensor(value):
        return value.numel() * value.element_size()
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return 0


def training_step(model: nn.Module, optimizer, inputs: tuple):
    """The user's plain step (zero_grad, forward, backward, step), taken once, so that the
    optimizer's state exists as in a run under way; the benchmarks time the step it returns."""

    def plain_step() -> None:
        optimizer.zero_grad()
        model(*inputs).square().mean().backward()
        optimizer.step()

    plain_step()
    return plain_step


def torch_rows(optimizer_name: str) -> tuple[float, float, float]:
    model = cnn()
    inputs = (torch.randn(8, 3, 64, 64),)
    optimizer = getattr(torch.optim, optimizer_name)(
        [p for p in model.parameters() if p.requires_grad], lr=0.01
    )

    plain_step = training_step(model, optimizer, inputs)
    step = best(plain_step)
    audit = best(lambda: paramscope.audit(model, optimizer=optimizer, inputs=inputs, steps=1))
    report = paramscope.inspect(model)
    driver = TorchAudit(model, report.origins, TrainingSetup(optimizer, inputs))
    driver.snapshot()
    held = nbytes(driver.values) + nbytes(driver.grads) + nbytes(driver.optimizer_state)
    model_bytes = sum(t.numel() * t.element_size() for t in report.origins.values())
    return step, audit, held / model_bytes


def keras_rows() -> tuple[float, float, float]:
    from paramscope.demo import build_transfer_model

    model, base = build_transfer_model()
    base.trainable = False
    model.compile("adam", "mse")
    x = np.random.default_rng(0).random((8, 224, 224, 3), dtype=np.float32)
    y = np.zeros((8, 23), np.float32)
    model.train_on_batch(x, y)  # built optimizer and traced step, as in a run under way
    step = best(lambda: model.train_on_batch(x, y))
    audit = best(lambda: paramscope.audit(model, inputs=x, steps=1))
    report = paramscope.inspect(model)
    driver = KerasAudit(model, report.origins, "keras", TrainingSetup(inputs=x))
    driver.snapshot()
    held = nbytes(driver.values) + nbytes(driver.extra_values)
    model_bytes = sum(t.bytes for t in report.tensors() if t.shared_with is None)
    return step, audit, held / model_bytes


def main() -> None:
    print("| model | optimizer | one train step (s) | audit, 1 step (s) | ratio | snapshot / model tensors |")
    print("|---|---|---:|---:|---:|---:|")
    for name in ("SGD", "Adam"):
        step, audit, memory = torch_rows(name)
        print(
            f"| torch CNN, 11M params, frozen backbone | {name} | {step:.3f} | {audit:.3f} | {audit / step:.1f}× | {memory:.2f}× |"
        )
    step, audit, memory = keras_rows()
    print(
        f"| Keras MobileNetV2 transfer (torch backend) | compiled Adam | {step:.3f} | {audit:.3f} | {audit / step:.1f}× | {memory:.2f}× |"
    )


if __name__ == "__main__":
    main()
