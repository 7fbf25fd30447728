"""What the pitfall rules need to know of a live model beyond its Report, as plain facts.

A rule judges tensors by path and role. Whether a parameter sits in the optimizer and holds a
gradient, whether a Keras model is compiled, how a sublayer is called: these live on the
framework's objects, so ``sources/live_facts.py`` reads them (the API calls it) and the rules
read only these values. A file, or a live model without an optimizer, has the empty facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ParameterFacts:
    """A torch parameter as its optimizer sees it."""

    in_optimizer: bool  # in one of the optimizer's param groups
    has_gradient: bool  # ``.grad`` is a tensor (zero or not), not None: the next step moves it
    has_state: bool  # momentum or moments the optimizer kept for it
    weight_decay: float  # its param group's (0 when in none)


@dataclass(frozen=True)
class LiveFacts:
    # Tensor path -> its parameter's facts, for every counted learnable tensor of a torch module
    # whose factory (or caller) gave an optimizer; None when there is no optimizer to judge.
    parameters: Mapping[str, ParameterFacts] | None = None
    compiled: bool = False  # a live Keras model compiled already: its train step is captured
    # Paths of the Keras 3 model's top-level sublayers that are called without training=False.
    called_in_training_mode: frozenset[str] = frozenset()


__all__ = ["LiveFacts", "ParameterFacts"]
