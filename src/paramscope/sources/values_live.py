"""Values of a live model's tensors: slices of the framework's own tensor, a block at a time.

The report's ``origins`` hold the object each tensor was read from: a torch ``Parameter`` or
buffer, a Keras 3 ``Variable`` (whose ``value`` is the backend's tensor: torch, jax or
TensorFlow), a tf.keras ``tf.Variable``. Each block is a slice of the leading axes, copied to
the CPU and flattened there, so a large tensor on a GPU never comes over whole; torch gives
its bytes for dtypes NumPy lacks, jax and TensorFlow give ml_dtypes arrays, viewed as their
bits the same way. Nothing on the model is changed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from paramscope.core.dtypes import normalize_dtype
from paramscope.core.report import Report
from paramscope.sources.values import CHUNK_ELEMENTS, Located, Values, blocks, element_dtype

ON_META = "on the meta device: it holds no values"


@dataclass(frozen=True)
class LiveTensor:
    """A framework tensor, read as chunks of its stored elements (a packed 4-bit weight's
    bytes: the report's shape and dtype are its logical ones, these the storage's)."""

    tensor: object
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    def chunks(self) -> Iterator[np.ndarray]:
        for block in blocks(self.tensor, self.shape, CHUNK_ELEMENTS):
            yield _elements(block, self.dtype)


def _elements(block, dtype: np.dtype) -> np.ndarray:
    """A block's elements as a flat, C-ordered array of ``dtype``, bits unchanged."""
    if hasattr(block, "detach"):  # torch
        flat = block.detach().to("cpu").contiguous().reshape(-1)
        return flat.view(_torch_uint8()).numpy().view(dtype)
    return np.ascontiguousarray(np.asarray(block)).reshape(-1).view(dtype)


def _torch_uint8():
    import torch

    return torch.uint8


def _backend_tensor(origin: object) -> object:
    """What to slice: a Keras 3 variable's backend tensor, else the object itself."""
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(origin, getattr(keras, "Variable", ())):
        return origin.value
    return origin


def _live(origin: object) -> LiveTensor | str:
    if getattr(origin, "is_meta", False):
        return ON_META
    tensor = _backend_tensor(origin)
    dtype = normalize_dtype(tensor.dtype)
    element = element_dtype(dtype, "=")
    if element is None:
        return f"{dtype} elements are not whole bytes: not read"
    return LiveTensor(tensor, tuple(int(dim) for dim in tensor.shape), element)


def live_values(report: Report) -> Values:
    located: Located = {
        tensor.path: _live(report.origins[tensor.path])
        for tensor in report.tensors()
        if tensor.counted and tensor.path in report.origins
    }
    return Values(located, "no tensor of the model holds it")
