"""Which reader a file needs, decided from its bytes, never from its extension.

A file named ``model.bin`` may be a torch zip, a legacy torch pickle or a safetensors file;
renamed files are common, and trusting the extension would route hostile bytes to the wrong
parser. We read the first bytes (and, for zips, the member names) and pick the reader.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from paramscope.core.report import Report
from paramscope.errors import InputError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"
GGUF_MAGIC = b"GGUF"


class UnrecognisedFormat(InputError):
    """The bytes are no checkpoint format paramscope knows (as opposed to a damaged one)."""


def _zip_reader(path: Path) -> Callable[[Path], Report]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: damaged zip archive ({exc})") from None
    for name in names:
        if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
            raise InputError(f"{path}: archive member {name!r} has an absolute or parent path")
    if len(names) != len(set(names)):
        raise InputError(f"{path}: archive has duplicate member names")
    if any(n.endswith("/data.pkl") or n.endswith("/constants.pkl") for n in names):
        from paramscope.sources.torch_file import read_torch_zip

        return read_torch_zip
    if "config.json" in names and any(n.startswith("model.weights") for n in names):
        from paramscope.sources.keras_file import read_keras

        return read_keras
    if names and all(n.endswith(".npy") for n in names):
        from paramscope.sources.numpy_file import read_npz

        return read_npz
    raise UnrecognisedFormat(f"{path}: a zip archive, but not a torch, Keras or .npz file")


ONNX_SECOND_FIELDS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x52, 0x72, 0x7A}


def looks_like_onnx(head: bytes) -> bool:
    """A ModelProto starts with field 1 (ir_version, a small varint), then one of its fields."""
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in ONNX_SECOND_FIELDS


def reader_for(path: Path) -> Callable[[Path], Report]:
    """The reader for ``path`` (a file or a folder of shards)."""
    if path.is_dir():
        indexes = sorted(path.glob("*.safetensors.index.json"))
        if len(indexes) == 1:
            return lambda _: _read_index(indexes[0])
        singles = sorted(path.glob("*.safetensors"))
        if len(singles) == 1:
            return lambda _: _read_safetensors(singles[0])
        raise InputError(f"{path}: a folder without one safetensors checkpoint or index in it")
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if not head:
        raise UnrecognisedFormat(f"{path}: empty file")
    if head.startswith(ZIP_MAGIC):
        return _zip_reader(path)
    if head.startswith(NPY_MAGIC):
        from paramscope.sources.numpy_file import read_npy

        return read_npy
    if head.startswith(HDF5_MAGIC):
        from paramscope.sources.h5_file import read_h5

        return read_h5
    if head.startswith(GGUF_MAGIC):
        from paramscope.sources.gguf_file import read_gguf

        return read_gguf
    if looks_like_onnx(head):
        from paramscope.sources.onnx_file import read_onnx

        return read_onnx
    from paramscope.sources.torch_file import looks_like_legacy, read_torch_legacy

    if looks_like_legacy(head):
        return read_torch_legacy
    if len(head) >= 9 and head[8:9] == b"{":
        return _read_safetensors
    if head[:1] == b"{" and path.name.endswith(".index.json"):
        return _read_index
    if head[:1] == b"{" and path.name.endswith(".weights.json"):
        from paramscope.sources.keras_shards import read_keras_sharded

        return read_keras_sharded
    raise UnrecognisedFormat(f"{path}: unrecognised file format (not torch, safetensors, NumPy or Keras)")


def _read_safetensors(path: Path) -> Report:
    from paramscope.sources.safetensors_file import read_safetensors

    return read_safetensors(path)


def _read_index(path: Path) -> Report:
    from paramscope.sources.safetensors_file import read_safetensors_index

    return read_safetensors_index(path)


# What the standard parsers raise on damaged bytes: a bad file, not a paramscope bug.
DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    OSError,
    EOFError,
    ValueError,
    UnicodeDecodeError,
    NotImplementedError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
)


def read_file(path: str | Path) -> Report:
    """A Report of a checkpoint file, read without importing any deep-learning framework.

    Nothing in the file is executed; any damage becomes an InputError naming the file.
    """
    path = Path(path)
    try:
        return reader_for(path)(path)
    except InputError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise type(exc)(f"{path}: {exc}") from None  # every message names the file
    except DAMAGE as exc:
        raise InputError(
            f"{path}: damaged or unreadable file ({type(exc).__name__}: {str(exc)[:100]})"
        ) from None
