"""What a source is: its family and how freezing works in it, asked of one typed value.

Operations and renderers ask ``kind.family`` or ``kind.freezing`` instead of comparing kind
strings, so adding a source means adding one member here. ``Kind`` is a ``str`` enum whose
values are the JSON contract's ``source.kind`` strings, so it serialises as they always were.
"""

from __future__ import annotations

from enum import Enum


class Family(str, Enum):
    """Whose rules apply: the framework that wrote or runs the model."""

    KERAS = "keras"  # Keras 3, live or saved by it
    TF_KERAS = "tf_keras"  # Keras 2 / tf.keras, live or a legacy .h5 written by it
    TORCH = "torch"  # a live torch module, or a torch file whose roles torch defines
    FILE = "file"  # a checkpoint format that stores tensors, not a framework's model


class Freezing(str, Enum):
    """How a trainable flag decides which tensors train."""

    PER_VARIABLE = "per variable"  # Keras 3: a variable trains when its flag and the root's are set
    PER_PARENT = "per parent"  # tf.keras: every enclosing layer must be trainable too
    PER_PARAMETER = "per parameter"  # torch: requires_grad on each parameter
    NONE = "none"  # the source stores no trainability


class Kind(str, Enum):
    KERAS = "keras"
    TF_KERAS = "tf_keras"
    TORCH = "torch"
    KERAS_FILE = "keras_file"
    H5 = "h5"
    TORCH_FILE = "torch_file"
    TORCHSCRIPT = "torchscript"
    PEFT_ADAPTER = "peft_adapter"
    SAFETENSORS = "safetensors"
    NPZ = "npz"
    ONNX = "onnx"
    GGUF = "gguf"
    SAVEDMODEL = "savedmodel"
    TFLITE = "tflite"
    FOLDER = "folder"  # what `scan` reads: a folder of checkpoints, each file with its own kind

    def __str__(self) -> str:
        return self.value

    @property
    def family(self) -> Family:
        return _FAMILY.get(self, Family.FILE)

    @property
    def freezing(self) -> Freezing:
        return _FREEZING.get(self, Freezing.NONE)

    @property
    def live(self) -> bool:
        """A model in memory, whose flags paramscope can read, simulate and set."""
        return self in (Kind.KERAS, Kind.TF_KERAS, Kind.TORCH)

    @property
    def keras_like(self) -> bool:
        """Keras's vocabulary applies: layers, `trainable` flags, `model.summary()` lines."""
        return self.family in (Family.KERAS, Family.TF_KERAS)

    @property
    def is_file(self) -> bool:
        return not self.live


_FAMILY = {
    Kind.KERAS: Family.KERAS,
    Kind.KERAS_FILE: Family.KERAS,
    Kind.TF_KERAS: Family.TF_KERAS,
    Kind.H5: Family.TF_KERAS,
    Kind.TORCH: Family.TORCH,
    Kind.TORCHSCRIPT: Family.TORCH,
}
_FREEZING = {
    Kind.KERAS: Freezing.PER_VARIABLE,
    Kind.KERAS_FILE: Freezing.PER_VARIABLE,
    Kind.TF_KERAS: Freezing.PER_PARENT,
    Kind.H5: Freezing.PER_PARENT,
    Kind.TORCH: Freezing.PER_PARAMETER,
}

__all__ = ["Family", "Freezing", "Kind"]
