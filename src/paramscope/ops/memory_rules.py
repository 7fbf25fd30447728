"""What training keeps per tensor: the dtype each precision stores, and each optimizer's state.

The rules are the frameworks' own, read from their source, because the estimators people use
assume one convention for all of them and are wrong for most:

* torch (``torch/optim/adam.py``, ``sgd.py``, ``_adafactor.py``): state is created with
  ``zeros_like(p)``, so it has the parameter's dtype; Adam, AdamW and Adafactor add a float32
  ``step`` scalar per tensor (held on the CPU, or on the parameter's device when
  ``capturable``/``fused``); SGD without momentum keeps nothing.
* Keras 3 (``keras/src/optimizers``): ``add_variable_from_reference`` builds state in the
  variable's dtype, for trainable variables only, beside two optimizer-wide scalars
  (``iteration``: int64 on TensorFlow, int32 elsewhere; ``learning_rate``: float32). Its
  Adafactor keeps a full-size velocity as well as the factored row and column.
* bitsandbytes 8-bit Adam (``bitsandbytes/optim/optimizer.py``): a tensor under 4,096 values
  falls back to two float32 states; a larger one keeps two uint8 states, a float32 absmax per
  256-value block for each, and both share two 256-entry float32 quantization maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from paramscope.core.dtypes import tensor_bytes
from paramscope.errors import InputError

PRECISIONS = ("fp32", "bf16", "fp16", "amp", "mixed-master")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "adafactor", "adam8bit", "lion")
FLOATING = frozenset({"float16", "bfloat16", "float32", "float64"})
# The dtype floating-point weights are stored in under each precision; amp (autocast) keeps
# them as they are and casts per operation.
PRECISION_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "mixed-master": "float16"}
BNB_MIN_8BIT_SIZE = 4096  # bitsandbytes' min_8bit_size default
BNB_BLOCK = 256  # values per absmax block in its blockwise 8-bit state
BNB_QMAP_VALUES = 256  # entries of each of its two quantization maps


@dataclass(frozen=True)
class Array:
    """One array the optimizer keeps. A ``scalar`` (a step counter, an optimizer-wide value)
    is replicated on every device under sharding; the other arrays can be partitioned."""

    params: int
    dtype: str
    scalar: bool = False

    @property
    def bytes(self) -> int:
        return tensor_bytes(self.params, self.dtype) or 0


def check_choices(optimizer: str, precision: str | None) -> None:
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")


def weight_dtype(dtype: str, precision: str | None) -> str:
    """The dtype a weight is stored in during training: floating tensors take the precision's."""
    if dtype in FLOATING and precision in PRECISION_DTYPE:
        return PRECISION_DTYPE[precision]
    return dtype


def state_dtype(weight: str, precision: str | None) -> str:
    """Optimizer state follows the tensor it updates: the fp32 master under mixed-master."""
    return "float32" if precision == "mixed-master" else weight


def convention(optimizer: str, keras_like: bool) -> str:
    """Whose rules apply: bitsandbytes for its 8-bit Adam, else the model's framework (files
    that name none follow torch's)."""
    if optimizer == "adam8bit":
        return "bitsandbytes"
    return "keras" if keras_like else "torch"


def _factored(shape: tuple[int, ...]) -> tuple[int, int]:
    """Adafactor's row and column factors of a tensor of two or more dimensions."""
    return math.prod(shape[:-1]), math.prod(shape[:-2]) * shape[-1]


def _moments(optimizer: str, amsgrad: bool) -> int:
    """Full-size state arrays per tensor for the optimizers that keep moments."""
    if optimizer in ("adam", "adamw"):
        return 3 if amsgrad else 2
    return 1 if optimizer in ("momentum", "lion") else 0


def torch_states(
    optimizer: str, amsgrad: bool, shape: tuple[int, ...], params: int, dtype: str
) -> list[Array]:
    step = Array(1, "float32", scalar=True)
    if optimizer == "adafactor":
        if len(shape) < 2:
            return [step, Array(params, dtype)]
        row, column = _factored(shape)
        return [step, Array(row, dtype), Array(column, dtype)]
    arrays = [Array(params, dtype)] * _moments(optimizer, amsgrad)
    return [step, *arrays] if optimizer in ("adam", "adamw") else arrays


def keras_states(
    optimizer: str, amsgrad: bool, shape: tuple[int, ...], params: int, dtype: str
) -> list[Array]:
    if optimizer == "adafactor":
        if len(shape) < 2:  # two int32 placeholders stand where the factors would be
            return [Array(1, "int32", scalar=True), Array(1, "int32", scalar=True), Array(params, dtype)]
        row, column = _factored(shape)
        return [Array(row, dtype), Array(column, dtype), Array(params, dtype)]
    return [Array(params, dtype)] * _moments(optimizer, amsgrad)


def bnb_states(params: int) -> list[Array]:
    if params < BNB_MIN_8BIT_SIZE:
        return [Array(params, "float32"), Array(params, "float32")]
    blocks = -(-params // BNB_BLOCK)
    return [
        Array(params, "uint8"),
        Array(params, "uint8"),
        Array(blocks, "float32"),
        Array(blocks, "float32"),
    ]


def states(rules: str, optimizer: str, amsgrad: bool, shape: tuple[int, ...], params: int, dtype: str):
    """The arrays ``rules``' optimizer keeps for one trainable tensor."""
    if rules == "bitsandbytes":
        return bnb_states(params)
    build = keras_states if rules == "keras" else torch_states
    return build(optimizer, amsgrad, shape, params, dtype)


def optimizer_wide(rules: str, backend: str | None, eight_bit_tensors: int) -> list[Array]:
    """Arrays kept once per optimizer, whatever it updates."""
    if rules == "keras":
        iteration = "int64" if backend == "tensorflow" else "int32"
        return [Array(1, iteration, scalar=True), Array(1, "float32", scalar=True)]
    if rules == "bitsandbytes" and eight_bit_tensors:
        return [Array(BNB_QMAP_VALUES, "float32", scalar=True)] * 2
    return []


_TORCH_WORDS = {
    "sgd": "torch SGD: no state",
    "momentum": "torch SGD with momentum: 1 momentum buffer per tensor in the parameter's dtype",
    "adam": "torch Adam: 2 moments per tensor in the parameter's dtype + a float32 step scalar per tensor",
    "adamw": "torch AdamW: 2 moments per tensor in the parameter's dtype + a float32 step scalar per tensor",
    "adafactor": "torch Adafactor: a row and a column factor for tensors of 2 or more dimensions, a full "
    "variance for the others, in the gradient's dtype, + a float32 step scalar per tensor",
    "lion": "Lion (lion-pytorch, bitsandbytes Lion32bit; torch has none): 1 momentum buffer per tensor, no step",
}
_KERAS_WORDS = {
    "sgd": "Keras SGD: no state",
    "momentum": "Keras SGD with momentum: 1 momentum per trainable variable in its dtype",
    "adam": "Keras Adam: a momentum and a velocity per trainable variable in its dtype",
    "adamw": "Keras AdamW: a momentum and a velocity per trainable variable in its dtype",
    "adafactor": "Keras Adafactor: a row and a column factor for variables of 2 or more dimensions (two int32 "
    "placeholders for the others) and a full-size velocity for every variable, not sublinear",
    "lion": "Keras Lion: 1 momentum per trainable variable in its dtype",
}


def describe(rules: str, optimizer: str, amsgrad: bool, backend: str | None) -> str:
    """The optimizer rule applied, in words."""
    if rules == "bitsandbytes":
        return (
            "bitsandbytes Adam8bit: tensors under 4,096 values keep 2 float32 states; larger ones 2 uint8 "
            "states + a float32 absmax per 256-value block for each, sharing 2 quantization maps of 256 "
            "float32; the step is a Python int"
        )
    words = (_KERAS_WORDS if rules == "keras" else _TORCH_WORDS)[optimizer]
    if amsgrad and optimizer in ("adam", "adamw"):
        words += ", and a third moment for amsgrad"
    if rules == "torch" and optimizer in ("adam", "adamw", "adafactor"):
        words += " (on the CPU; on the parameter's device when capturable or fused)"
    if rules == "keras":
        iteration = "int64" if backend == "tensorflow" else "int32"
        words += f"; and once per optimizer an {iteration} iteration count and a float32 learning rate"
    return words
