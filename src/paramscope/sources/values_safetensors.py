"""Where each tensor's bytes lie in a safetensors file or sharded checkpoint.

The header is read and validated as the reader reads it (safetensors_file.py: byte ranges
that tile the data buffer exactly, nothing past the end), which also gives each tensor's
range; tensors are named by the same flat placement as the report.
"""

from __future__ import annotations

import math
from pathlib import Path

from paramscope.core.report import Report
from paramscope.sources.boundary import beside
from paramscope.sources.budget import ReadBudget
from paramscope.sources.flat import FlatTensor
from paramscope.sources.safetensors_file import Locations, _entries, _hints, index_weight_map, read_header
from paramscope.sources.values import FileRange, Located, Values, flat_paths, stored


def _shard(path: Path, budget: ReadBudget) -> tuple[list[FlatTensor], Locations]:
    header, buffer_size = read_header(path, budget)
    locations: Locations = {}
    return _entries(path, header, buffer_size, budget, locations), locations


def _sharded(index: Path, budget: ReadBudget) -> tuple[list[FlatTensor], Locations]:
    """The tensors of an index's weight map, in its order, each from the shard it names."""
    weight_map = index_weight_map(index, budget)
    by_name: dict[str, FlatTensor] = {}
    locations: Locations = {}
    for shard in sorted(set(weight_map.values())):
        entries, in_shard = _shard(beside(index.parent, shard, "shard"), budget)
        for entry in entries:
            if weight_map.get(entry.name) == shard:
                by_name[entry.name] = entry
                locations[entry.name] = in_shard[entry.name]
        budget.tick()
    return [by_name[name] for name in weight_map if name in by_name], locations


def safetensors_values(path: Path, report: Report, budget: ReadBudget) -> Values:
    entries, locations = _sharded(path, budget) if path.name.endswith(".index.json") else _shard(path, budget)
    sizes: dict[Path, int] = {}
    located: Located = {}
    paths = flat_paths(entries, _hints(path.parent, locations, budget), budget)
    for tensor_path, entry in zip(paths, entries, strict=True):
        file, from_end, length = locations[entry.name]
        size = sizes.setdefault(file, file.stat().st_size)
        dtype, count = stored(entry.dtype, math.prod(entry.shape), length)
        located[tensor_path] = FileRange(file, size, size + from_end, dtype, count)
    return Values(located)
