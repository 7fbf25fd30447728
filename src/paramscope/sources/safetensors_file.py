"""safetensors files and sharded ``*.safetensors.index.json`` checkpoints, header only.

Validated as the reference implementation (huggingface/safetensors) validates before it maps
a file: the header length is capped, the header is one JSON object without duplicate keys,
every dtype is known, each tensor's byte range equals its shape times its dtype size, and the
ranges tile the data buffer exactly — sorted, contiguous, no gap, no overlap, nothing past the
end. We never read tensor data. The ``safetensors`` package would do the same checks but needs
the data mapped and a framework to return tensors; a header walk needs neither.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.limits import MAX_DIMS, MAX_HEADER_BYTES, MAX_SHARDS, MAX_TENSORS

DTYPES = {  # safetensors name -> (our name, bits)
    "BOOL": ("bool", 8),
    "U8": ("uint8", 8),
    "I8": ("int8", 8),
    "F8_E5M2": ("float8_e5m2", 8),
    "F8_E4M3": ("float8_e4m3fn", 8),
    "F8_E8M0": ("float8_e8m0fnu", 8),
    "I16": ("int16", 16),
    "U16": ("uint16", 16),
    "F16": ("float16", 16),
    "BF16": ("bfloat16", 16),
    "I32": ("int32", 32),
    "U32": ("uint32", 32),
    "F32": ("float32", 32),
    "F64": ("float64", 64),
    "I64": ("int64", 64),
    "U64": ("uint64", 64),
    "C64": ("complex64", 64),
    "F4": ("float4_e2m1fn_x2", 4),
}


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise InputError(f"duplicate key {key!r} in the header")
        result[key] = value
    return result


def read_header(path: Path) -> tuple[dict, int]:
    """The parsed header and the size of the data buffer after it."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(8)
        if len(head) < 8:
            raise InputError(f"{path}: truncated safetensors file (no header length)")
        length = int.from_bytes(head, "little")
        if length > MAX_HEADER_BYTES:
            raise InputError(
                f"{path}: safetensors header of {length:,} bytes exceeds the {MAX_HEADER_BYTES:,} cap"
            )
        if 8 + length > size:
            raise InputError(f"{path}: truncated safetensors file (header runs past the end)")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: safetensors header is not a JSON object")
    return header, size - 8 - length


def _entries(path: Path, header: dict, buffer_size: int) -> list[tuple[int, int, FlatTensor]]:
    if len(header) > MAX_TENSORS:
        raise InputError(f"{path}: too many tensors")
    ranges = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise InputError(f"{path}: __metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or set(info) - {"dtype", "shape", "data_offsets"}:
            raise InputError(f"{path}: tensor {name!r}: malformed entry")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPES:
            raise InputError(f"{path}: tensor {name!r}: unknown dtype {dtype!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_DIMS
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise InputError(f"{path}: tensor {name!r}: bad shape {shape!r:.60}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        ):
            raise InputError(f"{path}: tensor {name!r}: bad data_offsets {offsets!r:.60}")
        our_dtype, bits = DTYPES[dtype]
        begin, end = offsets
        if end < begin or (math.prod(shape) * bits + 7) // 8 != end - begin:
            raise InputError(
                f"{path}: tensor {name!r}: {dtype} {shape} needs {(math.prod(shape) * bits + 7) // 8:,} bytes, "
                f"its offsets span {end - begin:,}"
            )
        ranges.append((begin, end, FlatTensor(name, tuple(shape), our_dtype, (path.name, name))))
    ranges.sort(key=lambda r: (r[0], r[1]))
    position = 0
    for begin, end, entry in ranges:
        if begin != position:
            kind = "overlaps the previous tensor" if begin < position else "leaves a gap before it"
            raise InputError(
                f"{path}: tensor {entry.name!r} {kind} (offset {begin:,}, expected {position:,})"
            )
        position = end
    if position != buffer_size:
        raise InputError(f"{path}: tensors cover {position:,} bytes of a {buffer_size:,}-byte data buffer")
    return ranges


def read_safetensors(path: Path) -> Report:
    header, buffer_size = read_header(path)
    entries = [entry for _, _, entry in _entries(path, header, buffer_size)]
    order = {name: i for i, name in enumerate(header)}
    entries.sort(key=lambda e: order[e.name])  # as the writer listed them
    return flat_report(entries, Source(kind="safetensors", path=str(path)), "safetensors", path.name)


def read_safetensors_index(path: Path) -> Report:
    """A sharded checkpoint: the index's weight map, each shard's header checked."""
    try:
        index = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: index is not valid JSON ({exc})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise InputError(f"{path}: index has no weight_map")
    shards = sorted(set(weight_map.values()), key=str)
    if len(shards) > MAX_SHARDS:
        raise InputError(f"{path}: too many shards")
    for shard in shards:
        if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard in (".", ".."):
            raise InputError(f"{path}: shard name {shard!r:.60} is not a bare file name")
    by_name: dict[str, FlatTensor] = {}
    for shard in shards:
        shard_path = path.parent / shard
        if not shard_path.is_file():
            raise InputError(f"{path}: shard {shard} is missing")
        header, buffer_size = read_header(shard_path)
        for _, _, entry in _entries(shard_path, header, buffer_size):
            if weight_map.get(entry.name) == shard:
                by_name[entry.name] = entry
    missing = [name for name in weight_map if name not in by_name]
    if missing:
        raise InputError(
            f"{path}: {len(missing)} tensor(s) of the weight map are not in their shard, e.g. {missing[0]!r}"
        )
    entries = [by_name[name] for name in weight_map]
    return flat_report(
        entries,
        Source(kind="safetensors", path=str(path)),
        "safetensors",
        path.name.removesuffix(".index.json"),
        warnings=[f"sharded: {len(shards)} shard(s)"],
    )
