"""GGUF files (llama.cpp), versions 2 and 3, split files too.

We check the fixed header ourselves (magic, version, tensor and metadata counts) before the
``gguf`` package memory-maps the file, so an absurd count is refused instead of walked.
Parameters are element counts, quantized or not; bytes come from the quantization's block
size, as stored.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.limits import MAX_SHARDS, MAX_TENSORS

MAX_METADATA = 1_000_000
PLAIN_TYPES = {
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "f64": "float64",
    "i8": "int8",
    "i16": "int16",
    "i32": "int32",
    "i64": "int64",
}  # quantized types keep GGML's names (q4_k…)
SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$")


def _check_header(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:4] != b"GGUF":
        raise InputError(f"{path}: truncated GGUF header")
    version, tensors, metadata = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise InputError(f"{path}: GGUF version {version} is not supported (2 and 3 are)")
    if tensors > MAX_TENSORS or metadata > MAX_METADATA:
        raise InputError(f"{path}: absurd GGUF counts ({tensors:,} tensors, {metadata:,} metadata entries)")


def _parts(path: Path) -> list[Path]:
    match = SPLIT.match(path.name)
    if not match:
        return [path]
    total = int(match["total"])
    if not 1 <= total <= MAX_SHARDS:
        raise InputError(f"{path}: split into {total} parts")
    parts = [path.with_name(f"{match['stem']}-{i:05d}-of-{total:05d}.gguf") for i in range(1, total + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise InputError(f"{path}: split file part {missing[0]} is missing")
    return parts


def _dtype(ggml_name: str) -> str:
    return PLAIN_TYPES.get(ggml_name.lower(), ggml_name.lower())


def read_gguf(path: Path, budget: ReadBudget) -> Report:
    try:
        from gguf import GGUFReader
    except ImportError:
        raise InputError(
            f"{path}: a GGUF file; reading it needs the gguf package (pip install 'paramscope[gguf]')"
        ) from None
    entries = []
    for part in _parts(path):
        _check_header(part)
        try:
            reader = GGUFReader(part)
        except Exception as exc:  # the parser's failures on damaged bytes are bad files
            raise InputError(f"{part}: damaged GGUF file ({type(exc).__name__}: {str(exc)[:80]})") from None
        for tensor in reader.tensors:
            shape = tuple(
                int(d) for d in reversed(tensor.shape.tolist())
            )  # GGML lists the fastest axis first
            entries.append(
                FlatTensor(
                    tensor.name,
                    shape,
                    _dtype(tensor.tensor_type.name),
                    (part.name, tensor.name),
                    nbytes=int(tensor.n_bytes),
                )
            )
    name = SPLIT.match(path.name)["stem"] if SPLIT.match(path.name) else path.name
    return flat_report(entries, Source(kind="gguf", path=str(path)), "GGUF", name)
