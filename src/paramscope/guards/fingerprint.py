"""Fingerprints: whether a tensor stayed bit-identical, without keeping a copy of it.

A guard must tell after a training step whether every frozen tensor is bit-identical to
before. A copy would double the memory of a frozen base (14 GB more for a 7-billion-parameter
model in bfloat16); a fingerprint is two integers per tensor, computed where the tensor lives,
in its own framework, and only those integers come to the host.

The tensor's bytes are read as 32-bit integer words (any dtype: the bits, not the values, so
NaN equals NaN and -0.0 differs from 0.0), cut into rows of ``ROW`` words, and each row summed
with wrap-around. The fingerprint is the plain sum of the row sums and their sum weighted by
the row index. Equal bits always give equal fingerprints. A change goes unseen only when every
change cancels in both sums: words swapped within one row, or changes that add up to exactly
zero in both sums (modulo 2**32 per word). An optimizer step moves values by amounts that
depend on the data, not by permutations or exactly cancelling pairs, so a real violation hides
with a chance of the order of 2**-32 per tensor and check; a guard answers "did training move
what it must not", it is no defence against an adversary. Integer sums of 32-bit words are
among the fastest reductions every framework has (reading the bits as 16-bit or 64-bit words
costs ten times more), and the row sums are the only temporary: a row of 256 words makes them
1/256 of the tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

Fingerprint = tuple[int, int]
ROW = 256  # words per row


def fingerprints(tensors: Sequence, *, tf_keras: bool = False) -> list[Fingerprint]:
    """The fingerprints of ``tensors`` (torch tensors, Keras 3 variables, or with ``tf_keras``
    TensorFlow variables), one host transfer per framework."""
    if not tensors:
        return []
    if tf_keras:
        return _tensorflow(tensors)
    values = [getattr(t, "value", t) for t in tensors]  # a Keras 3 variable holds its backend tensor
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(values[0], torch.Tensor):
        return _torch(values)
    return _keras_ops(values)


def _torch(tensors: Sequence) -> list[Fingerprint]:
    import torch

    with torch.no_grad():
        pairs = [_torch_pair(t) for t in tensors]
        return [tuple(pair) for pair in torch.stack(pairs).tolist()]


def _torch_pair(tensor):
    """(plain, weighted) sums of the tensor's 32-bit words, as an int64 tensor on its device."""
    import torch

    raw = tensor.detach().reshape(-1)
    try:
        raw = raw.view(torch.uint8)
    except RuntimeError:  # a view at an odd offset cannot be reinterpreted in place: copy it
        raw = raw.clone().view(torch.uint8)
    whole = raw.numel() // 4 * 4
    words = raw[:whole].view(torch.int32)
    rows = words.numel() // ROW
    sums = [words[: rows * ROW].view(rows, ROW).sum(1, dtype=torch.int32)]
    sums += [
        words[rows * ROW :].sum(dtype=torch.int32).reshape(1),
        raw[whole:].to(torch.int32).sum().reshape(1),
    ]
    row_sums = torch.cat(sums).to(torch.int64)
    ramp = torch.arange(1, row_sums.numel() + 1, dtype=torch.int64, device=row_sums.device)
    return torch.stack([row_sums.sum(), (row_sums * ramp).sum()])


def _keras_ops(values: Sequence) -> list[Fingerprint]:
    """Keras 3 on jax or tensorflow: the same sums through ``keras.ops``, in int32 (jax has no
    64-bit integers unless told), so modulo 2**32."""
    from keras import backend, ops

    pairs = [_words_pair(ops, _keras_words(ops, backend.standardize_dtype(v.dtype), v)) for v in values]
    return [tuple(int(x) for x in pair) for pair in ops.convert_to_numpy(ops.stack(pairs))]


def _keras_words(ops, dtype: str, value):
    """The tensor's bits as a flat int32 tensor (16-bit and 8-bit words widened, not mixed)."""
    flat = ops.reshape(value, (-1,))
    if dtype == "bool" or dtype.startswith(("int", "uint")):
        return ops.cast(flat, "int32")
    import numpy as np

    size = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    words = ops.view(flat, {2: "int16", 4: "int32", 8: "int32"}[size])
    return ops.reshape(ops.cast(words, "int32"), (-1,))


def _tensorflow(variables: Sequence) -> list[Fingerprint]:
    """tf.keras: the same sums with TensorFlow's own ops (``tf.bitcast`` reads the bits)."""
    import tensorflow as tf

    pairs = [_words_pair(_TensorFlowOps(tf), _tf_words(tf, v)) for v in variables]
    return [tuple(int(x) for x in pair) for pair in tf.stack(pairs).numpy()]


def _tf_words(tf, variable):
    flat = tf.reshape(tf.convert_to_tensor(variable), (-1,))
    if flat.dtype.is_floating or flat.dtype.is_complex:
        flat = tf.bitcast(flat, {2: tf.int16, 4: tf.int32, 8: tf.int32}[flat.dtype.size])
    return tf.reshape(tf.cast(flat, tf.int32), (-1,))


class _TensorFlowOps:
    """The few ``keras.ops`` that ``_words_pair`` needs, spelt in TensorFlow."""

    def __init__(self, tf) -> None:
        self.tf = tf

    def reshape(self, x, shape):
        return self.tf.reshape(x, shape)

    def sum(self, x, axis=None):
        return self.tf.reduce_sum(x, axis=axis)

    def concatenate(self, xs):
        return self.tf.concat(xs, 0)

    def arange(self, start, stop, dtype):
        return self.tf.range(start, stop, dtype=dtype)

    def multiply(self, a, b):
        return a * b

    def stack(self, xs):
        return self.tf.stack(xs)


def _words_pair(ops, words):
    """(plain, weighted) int32 sums of a flat int32 tensor's rows of ``ROW`` words."""
    rows = int(words.shape[0]) // ROW
    body = ops.sum(ops.reshape(words[: rows * ROW], (rows, ROW)), axis=1)
    row_sums = ops.concatenate([body, ops.reshape(ops.sum(words[rows * ROW :]), (1,))])
    ramp = ops.arange(1, rows + 2, dtype="int32")
    return ops.stack([ops.sum(row_sums), ops.sum(ops.multiply(row_sums, ramp))])
