"""paramscope against what a user would run instead, side by side from one run.

* a 1,000-layer Keras model: `paramscope.inspect` + text rendering vs `model.summary()`
  (goal: at most half its time);
* a torch model: `paramscope.inspect` + text rendering vs `str(torchinfo.summary(model))` with
  no input, both at torchinfo's default depth of 3 (goal: at least 2x faster), and whether each
  is exact where weights are tied.

Each timing is the best of several repeats in this one process. Prints a Markdown table; the
numbers recorded in benchmarks/README.md come from it. Run with `make bench`.
"""

from __future__ import annotations

import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import torch
import torchinfo
from torch import nn

import paramscope
from paramscope.render import render

REPEATS = 20


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ours(model, depth: int | None) -> None:
    render("summary", paramscope.inspect(model), "text", depth=depth)


def keras_deep_model(layers: int = 1000):
    sys.setrecursionlimit(20_000)  # Keras maps a Functional graph recursively, one frame per layer
    return keras.Sequential([keras.Input((8,)), *(keras.layers.Dense(8) for _ in range(layers))])


class TiedLM(nn.Module):
    def __init__(self, vocab: int = 30_000, width: int = 512, blocks: int = 24) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, 8, 4 * width, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embedding.weight


def main() -> None:
    rows = []
    model = keras_deep_model()
    keras_time = best(lambda: model.summary(print_fn=lambda *a, **k: None), repeats=3)
    our_time = best(lambda: ours(model, depth=None), repeats=3)
    rows.append(("Keras 1,000 × Dense", "model.summary()", keras_time, our_time, "exact", "exact"))

    lm = TiedLM()
    truth = sum(p.numel() for p in lm.parameters())
    stats = torchinfo.summary(lm, verbose=0)
    theirs_exact = "exact" if stats.total_params == truth else f"{stats.total_params:,} (truth {truth:,})"
    report = paramscope.inspect(lm)
    ours_exact = "exact" if report.totals["trainable"].params == truth else f"{report.totals['all'].params:,}"
    torchinfo_time = best(lambda: str(torchinfo.summary(lm, verbose=0, depth=3)))
    our_time = best(lambda: ours(lm, depth=3))
    rows.append(
        (
            "torch tied LM, 24 blocks",
            "str(torchinfo.summary(model))",
            torchinfo_time,
            our_time,
            theirs_exact,
            ours_exact,
        )
    )

    versions = f"Keras {keras.__version__} (torch backend), torch {torch.__version__}, torchinfo {torchinfo.__version__}"
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}"
    )
    print()
    print(
        "| model | alternative | alternative (ms) | paramscope (ms) | speed-up | alternative's total | ours |"
    )
    print("|---|---|---:|---:|---:|---|---|")
    for name, alternative, theirs, mine, theirs_ok, ours_ok in rows:
        speedup = theirs / mine
        print(
            f"| {name} | `{alternative}` | {theirs * 1000:.1f} | {mine * 1000:.1f} | {speedup:.1f}× | {theirs_ok} | {ours_ok} |"
        )


if __name__ == "__main__":
    main()
