"""safetensors files and sharded ``*.safetensors.index.json`` checkpoints, header only.

Validated as the reference implementation (huggingface/safetensors) validates before it maps
a file: the header length is capped, the header is one JSON object without duplicate keys,
every dtype is known, each tensor's byte range equals its shape times its dtype size, and the
ranges tile the data buffer exactly — sorted, contiguous, no gap, no overlap, nothing past the
end. We never read tensor data. The ``safetensors`` package would do the same checks but needs
the data mapped and a framework to return tensors; a header walk needs neither. The one
exception: a bitsandbytes 4-bit layer's quant state, a small JSON text stored as a uint8
tensor, is read to learn the layer's logical shape (packed_weights.py).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.boundary import beside, load_json, name_of, open_regular, read_small, shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.packed_weights import QUANT_STATE_BYTES, Hints, config_beside

Locations = dict[str, tuple[Path, int, int]]  # tensor name -> (file, offset of its bytes, length)

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
            raise InputError(f"duplicate key {key!r:.80} in the header")
        result[key] = value
    return result


def read_header(path: Path, budget: ReadBudget) -> tuple[dict, int]:
    """The parsed header and the size of the data buffer after it (which ends the file)."""
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(8)
        if len(head) < 8:
            raise InputError(f"{path}: truncated safetensors file (no header length)")
        length = int.from_bytes(head, "little")
        if 8 + length > size:  # checked before the cap: raising a limit cannot mend a cut file
            raise InputError(
                f"{path}: truncated or corrupt safetensors file (header claims {length:,} bytes, "
                f"file has {size:,})"
            )
        budget.check("header_bytes", length, "safetensors header")
        raw = handle.read(length)
    header = load_json(raw, budget, "safetensors header", object_pairs_hook=_no_duplicates)
    if not isinstance(header, dict):
        raise InputError(f"{path}: safetensors header is not a JSON object")
    return header, size - 8 - length


def _offsets(value: object, label: str) -> tuple[int, int]:
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(type(o) is int and 0 <= o < 2**64 for o in value)
        and value[0] <= value[1]
    ):
        raise InputError(f"{label}: bad data_offsets {value!r:.60}")
    return value[0], value[1]


def _entries(
    path: Path, header: dict, buffer_size: int, budget: ReadBudget, locations: Locations
) -> list[FlatTensor]:
    """The tensors in the writer's order, each validated, their byte ranges tiling the buffer;
    where each one's bytes lie goes into ``locations``."""
    budget.check("tensors", budget.used("tensors") + len(header) - ("__metadata__" in header), str(path))
    ranges = []
    for raw_name, info in header.items():
        if raw_name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise InputError(f"{path}: __metadata__ must map strings to strings")
            continue
        budget.charge("tensors")
        name = name_of(raw_name, budget, "a tensor name")
        label = f"{path}: tensor {name!r:.80}"
        if not isinstance(info, dict) or set(info) - {"dtype", "shape", "data_offsets"}:
            raise InputError(f"{label}: malformed entry")
        dtype = info.get("dtype")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise InputError(f"{label}: unknown dtype {dtype!r:.40}")
        shape = shape_of(info.get("shape"), budget, label)
        begin, end = _offsets(info.get("data_offsets"), label)
        our_dtype, bits = DTYPES[dtype]
        needed = (math.prod(shape) * bits + 7) // 8
        if needed != end - begin:
            raise InputError(
                f"{label}: {dtype} {list(shape)} needs {needed:,} bytes, its offsets span {end - begin:,}"
            )
        ranges.append((begin, end, FlatTensor(name, shape, our_dtype, (path.name, name))))
        locations[name] = (path, begin - buffer_size, end - begin)  # from the file's end
    tiles = sorted(ranges, key=lambda r: (r[0], r[1]))
    position = 0
    for begin, end, entry in tiles:
        if begin != position:
            kind = "overlaps the previous tensor" if begin < position else "leaves a gap before it"
            raise InputError(
                f"{path}: tensor {entry.name!r:.80} {kind} (offset {begin:,}, expected {position:,})"
            )
        position = end
    if position != buffer_size:
        raise InputError(f"{path}: tensors cover {position:,} bytes of a {buffer_size:,}-byte data buffer")
    return [entry for _, _, entry in ranges]  # as the writer listed them


def _hints(folder: Path, locations: Locations, budget: ReadBudget) -> Hints:
    """The quantization config beside the checkpoint, and the bytes of small tensors."""

    def content(name: str) -> bytes:
        file, offset, length = locations[name]
        if length > QUANT_STATE_BYTES:
            raise InputError(f"{file}: tensor {name!r:.80} is too large to read ({length:,} bytes)")
        with open_regular(file) as handle:
            handle.seek(offset, os.SEEK_END)
            data = handle.read(length)
        if len(data) != length:
            raise InputError(f"{file}: tensor {name!r:.80} is cut short")
        return data

    return Hints(config=lambda: config_beside(folder, budget), content=content)


def read_safetensors(path: Path, budget: ReadBudget) -> Report:
    header, buffer_size = read_header(path, budget)
    locations: Locations = {}
    entries = _entries(path, header, buffer_size, budget, locations)
    return flat_report(
        entries,
        Source(kind=Kind.SAFETENSORS, path=str(path)),
        "safetensors",
        path.name,
        budget=budget,
        hints=_hints(path.parent, locations, budget),
    )


def index_weight_map(path: Path, budget: ReadBudget) -> dict[str, str]:
    index = load_json(read_small(path, budget, "index"), budget, "index", object_pairs_hook=_no_duplicates)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise InputError(f"{path}: index has no weight_map")
    for shard in weight_map.values():
        if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard in (".", ".."):
            raise InputError(f"{path}: shard name {shard!r:.60} is not a bare file name")
    return weight_map


def read_safetensors_index(path: Path, budget: ReadBudget) -> Report:
    """A sharded checkpoint: the index's weight map, each shard's header checked."""
    weight_map = index_weight_map(path, budget)
    shards = sorted(set(weight_map.values()))
    budget.check("shards", len(shards), "index")
    by_name: dict[str, FlatTensor] = {}
    locations: Locations = {}
    files: dict[tuple[int, int], str] = {}  # (device, inode) -> shard: each file is read once
    for shard in shards:
        shard_path = beside(path.parent, shard, "shard")
        if not shard_path.is_file():
            raise InputError(f"{path}: shard {shard!r:.80} is missing")
        status = shard_path.stat()
        earlier = files.setdefault((status.st_dev, status.st_ino), shard)
        if earlier != shard:
            raise InputError(f"{path}: shards {earlier!r:.60} and {shard!r:.60} are the same file")
        header, buffer_size = read_header(shard_path, budget)
        in_shard: Locations = {}
        for entry in _entries(shard_path, header, buffer_size, budget, in_shard):
            if weight_map.get(entry.name) == shard:
                by_name[entry.name] = entry
                locations[entry.name] = in_shard[entry.name]
        budget.tick()
    missing = [name for name in weight_map if name not in by_name]
    if missing:
        raise InputError(
            f"{path}: {len(missing)} tensor(s) of the weight map are not in their shard, e.g. {missing[0]!r:.80}"
        )
    entries = [by_name[name] for name in weight_map]
    return flat_report(
        entries,
        Source(kind=Kind.SAFETENSORS, path=str(path)),
        "safetensors",
        path.name.removesuffix(".index.json"),
        warnings=[f"sharded: {len(shards)} shard(s)"],
        budget=budget,
        hints=_hints(path.parent, locations, budget),
    )
