"""Which reader a file needs, decided from its bytes, never from its extension; and the one
place where a file read starts, gets its budget and ends.

A file named ``model.bin`` may be a torch zip, a legacy torch pickle or a safetensors file;
renamed files are common, and trusting the extension would route hostile bytes to the wrong
parser. We read the first bytes (and, for zips, the member names) and pick the reader.

Every reader takes the file's path and its :class:`ReadBudget` (zip readers also the archive,
opened once here). A reader reports bad input as :class:`InputError`; any other exception
escaping one is a reader bug that hostile bytes found. The user still gets one clean line
("malformed FILE: …", exit 2); with ``PARAMSCOPE_STRICT=1`` (the test suite and the fuzzers
set it) it propagates instead, so such bugs are found rather than hidden.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from paramscope.core.oslimits import memory_growth_limit
from paramscope.core.printable import visible
from paramscope.core.report import Report
from paramscope.core.unread import OutOfMemory, RecognisedNotRead, UnrecognisedFormat
from paramscope.errors import InputError
from paramscope.sources.archive import open_zip
from paramscope.sources.boundary import open_regular, require_regular
from paramscope.sources.budget import Limits, ReadBudget, active_limits
from paramscope.sources.budget import limits as read_limits

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"
GGUF_MAGIC = b"GGUF"
TFLITE_IDENTIFIER = b"TFL3"  # a FlatBuffer's file identifier, after its root offset
STRICT_ENV = "PARAMSCOPE_STRICT"
# the names checkpoints go by, in every format read here (what a file holds is still decided
# by its bytes): a file so named whose bytes are in no known format is a damaged checkpoint
CHECKPOINT_SUFFIXES = frozenset(
    {".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".keras", ".h5", ".hdf5", ".onnx", ".gguf"}
    | {".npz", ".npy", ".tflite", ".pb"}
)
CHECKPOINT_ENDINGS = (".index.json", ".weights.json")  # a sharded checkpoint's index
MAX_NAMES_SHOWN = 3  # of the checkpoints in a folder that is not one

Reader = Callable[[Path, ReadBudget], Report]
ZipReader = Callable[[Path, zipfile.ZipFile, ReadBudget], Report]


def _zip_reader(path: Path, names: list[str]) -> ZipReader:
    if any(n.endswith("/constants.pkl") and n.count("/") == 1 for n in names):  # torch's own test
        from paramscope.sources.torchscript_file import read_torchscript

        return read_torchscript
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


def named_like_checkpoint(path: Path) -> bool:
    """Whether a file's name says checkpoint: bytes in no known format there are a damaged
    checkpoint (scan lists it with its error), not some other file (scan passes it by)."""
    name = path.name.lower()
    return path.suffix.lower() in CHECKPOINT_SUFFIXES or name.endswith(CHECKPOINT_ENDINGS)


def _checkpoints_in(folder: Path, budget: ReadBudget) -> list[Path]:
    """The checkpoints a folder holds at its top level, by name: a sharded checkpoint is its
    index, the shards it names are part of it."""
    files = []
    for path in sorted(folder.iterdir()):
        budget.tick()
        if named_like_checkpoint(path) and path.is_file():
            files.append(path)
    shards = {shard for path in files if path.name.endswith(".index.json") for shard in _shards(path, budget)}
    return [path for path in files if path.name not in shards]


def _shards(index: Path, budget: ReadBudget) -> set[str]:
    """The shard names an index gives; none when it cannot be read (reading it says why)."""
    from paramscope.sources.safetensors_file import index_weight_map  # the validated shard names

    try:
        return set(index_weight_map(index, budget).values())
    except InputError:
        return set()


def _read_folder(path: Path, budget: ReadBudget) -> Report:
    """A folder that is one checkpoint: a SavedModel, a PEFT adapter, or a folder with one
    checkpoint (a sharded one counts once); a folder of several is scan's, never one of them."""
    if (path / "saved_model.pb").is_file():
        from paramscope.sources.savedmodel import read_savedmodel

        return read_savedmodel(path, budget)
    if (path / "adapter_config.json").is_file():
        from paramscope.sources.peft_adapter import read_peft_adapter

        return read_peft_adapter(path, budget, _read)
    checkpoints = _checkpoints_in(path, budget)
    if len(checkpoints) == 1:
        return _read(checkpoints[0], budget)
    if not checkpoints:
        raise InputError(
            f"{path}: no checkpoint file in this folder; `paramscope scan {path}` looks into subfolders"
        )
    names = ", ".join(p.name for p in checkpoints[:MAX_NAMES_SHOWN]) + (
        ", …" if len(checkpoints) > MAX_NAMES_SHOWN else ""
    )
    raise InputError(f"{path} holds {len(checkpoints)} checkpoints ({names}); use `paramscope scan {path}`")


def _plain_reader(path: Path, head: bytes) -> Reader:
    """The reader for a file that is not a zip archive, from its first bytes."""
    if head.startswith(NPY_MAGIC):
        from paramscope.sources.numpy_file import read_npy

        return read_npy
    if head.startswith(HDF5_MAGIC):
        from paramscope.sources.h5_file import read_h5

        return read_h5
    if head.startswith(GGUF_MAGIC):
        from paramscope.sources.gguf_file import read_gguf

        return read_gguf
    if head[4:8] == TFLITE_IDENTIFIER:
        from paramscope.sources.tflite_file import read_tflite

        return read_tflite
    if head[:1] in (b"\x08", b"\x12"):  # a protobuf message starting with field 1 or 2
        reader = _protobuf_reader(path)
        if reader is not None:
            return reader
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
    raise UnrecognisedFormat(
        f"{path}: unrecognised file format (not torch, safetensors, NumPy, Keras, ONNX, GGUF or TensorFlow)"
    )


def _protobuf_reader(path: Path) -> Reader | None:
    """ONNX, a SavedModel's graph, CoreML: told apart by their top-level fields, not by name."""
    from paramscope.sources.protobuf import map_file
    from paramscope.sources.protobuf_kinds import protobuf_kind

    message = protobuf_kind(map_file(path))
    if message == "onnx":
        from paramscope.sources.onnx_file import read_onnx

        return read_onnx
    if message == "savedmodel":
        from paramscope.sources.savedmodel import read_savedmodel

        return read_savedmodel
    if message == "coreml":
        raise RecognisedNotRead("CoreML model")
    if path.name == "fingerprint.pb" and (path.parent / "saved_model.pb").is_file():
        raise RecognisedNotRead("SavedModel fingerprint, read with its folder")
    return None


def _read(path: Path, budget: ReadBudget) -> Report:
    if path.is_dir():
        return _read_folder(path, budget)
    try:
        _require_file(path)
        return _read_bytes(path, budget)
    except UnrecognisedFormat as exc:
        if named_like_checkpoint(path):
            raise InputError(str(exc)) from None
        raise


def _require_file(path: Path) -> None:
    """Refuse, by ``stat`` alone, a path with no bytes to read: a FIFO (opening one may wait
    for a writer), socket or device, or a symbolic link to nothing. Refused as no checkpoint,
    unless named like one: then scan lists it with its error rather than leaving it out."""
    try:
        require_regular(path)
    except InputError as exc:
        dangling = path.is_symlink() and not path.exists()
        raise UnrecognisedFormat(
            f"{path}: a symbolic link to a missing file" if dangling else str(exc)
        ) from None


def _read_bytes(path: Path, budget: ReadBudget) -> Report:
    """A file read by the reader its first bytes call for."""
    with open_regular(path) as handle:
        head = handle.read(16)
        if not head:
            raise UnrecognisedFormat(f"{path}: empty file")
        if head.startswith(ZIP_MAGIC):
            with open_zip(handle, budget, str(path)) as archive:
                return _zip_reader(path, archive.namelist())(path, archive, budget)
    return _plain_reader(path, head)(path, budget)


def _read_safetensors(path: Path, budget: ReadBudget) -> Report:
    from paramscope.sources.safetensors_file import read_safetensors

    return read_safetensors(path, budget)


def _read_index(path: Path, budget: ReadBudget) -> Report:
    from paramscope.sources.safetensors_file import read_safetensors_index

    return read_safetensors_index(path, budget)


def read_file(path: str | Path) -> Report:
    """A Report of a checkpoint file, read without importing any deep-learning framework.

    Nothing in the file is executed; the read is bounded by the active limits
    (``paramscope.limits``) and, in a single-threaded process, by an address-space limit as
    a second wall; any problem becomes an InputError naming the file.
    """
    path = Path(path)
    budget = ReadBudget()
    try:
        with memory_growth_limit(budget.limits.child_memory):
            return _shown_safely(_read(path, budget))
    except InputError as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"  # names the file
        exc.args = (visible(message),)  # the path and what a parser said may hold anything
        raise
    except OSError as exc:  # the disk or the kernel refused a read (EIO, ENAMETOOLONG…)
        raise InputError(visible(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})")) from None
    except Exception as exc:
        if os.environ.get(STRICT_ENV):
            raise
        if isinstance(exc, MemoryError):
            raise OutOfMemory(
                visible(f"{path}: reading it needs more memory than the limits allow")
            ) from None
        raise InputError(visible(f"malformed {path}: {type(exc).__name__}: {str(exc)[:100]}")) from None


@dataclasses.dataclass(frozen=True)
class LimitedRead:
    """``read_file`` under fixed limits, in whatever process calls it: a scan worker started
    by spawn inherits no context, so the limits travel with the reader, which pickles."""

    limits: Limits

    @classmethod
    def active(cls, seconds: float | None = None) -> LimitedRead:
        """The active limits, with the wall-clock time of one file changed when given (a scan's
        ``--timeout``: the readers' own clock then agrees with the scan's)."""
        limits = active_limits()
        return cls(limits if seconds is None else limits.replace(seconds=seconds))

    def __call__(self, path: Path) -> Report:
        with read_limits(**dataclasses.asdict(self.limits)):
            return read_file(path)


def _shown_safely(report: Report) -> Report:
    """The report with the file's own path and name printable: readers take names from inside
    the file through the boundary, but the path (and the root named after it) is the user's
    file name, which may hold escape sequences too."""
    report.source = dataclasses.replace(report.source, path=visible(report.source.path or "") or None)
    report.root.name = visible(report.root.name)
    return report
