"""An HDF5 file's structure as typed records: what the sandboxed walk (hdf5_walk.py) replies,
validated once in this process.

The reply comes from a child that parsed hostile bytes with libhdf5 and may be compromised,
so nothing in it is trusted: it must have exactly the shape hdf5_walk.py writes, every path
and dtype is a bounded name (``name_of``: unprintable characters escaped), every shape passes
``shape_of``, every attribute is text or a list of text, every dataset is charged to
``tensors``. The records below are what the Keras readers see, and they trust them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paramscope.errors import InputError
from paramscope.sources.boundary import MAX_ELEMENTS, expect, name_of, shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_walk import WANTED, walk_file, walk_files, walk_member
from paramscope.sources.sandbox import Sandboxed

Attribute = str | tuple[str, ...]  # a text attribute, or a list of names
Attributes = Mapping[str, Attribute]


@dataclass(frozen=True)
class Hdf5Dataset:
    path: str
    shape: tuple[int, ...]
    dtype: str
    declared: int = 0  # bytes its shape and dtype declare
    stored: int = 0  # bytes the file holds for it (fewer: compressed, or chunks never written)


@dataclass(frozen=True)
class Hdf5Structure:
    """Groups by path (objects reached by several hard links share one attributes mapping),
    the root group's attributes, and every dataset."""

    groups: Mapping[str, Attributes]
    datasets: tuple[Hdf5Dataset, ...]
    root: Attributes = field(default_factory=dict)


def _attribute(value: object, what: str) -> Attribute:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InputError(f"{what} is neither text nor a list of text")


def _attributes(value: object, what: str) -> Attributes:
    entry = expect(value, dict, what)
    unknown = set(entry) - set(WANTED)
    if unknown:
        raise InputError(f"{what}: unexpected attribute {sorted(unknown)[0]!r:.80}")
    return {name: _attribute(item, f"{what}: attribute {name}") for name, item in entry.items()}


def _entry(value: object, count: int, what: str) -> int:
    if type(value) is not int or not 0 <= value < count:
        raise InputError(f"{what}: {value!r:.40} is not one of the {count:,} attribute entries")
    return value


def _items(value: object, length: int, what: str) -> list:
    if not isinstance(value, list) or len(value) != length:
        raise InputError(f"{what}: {value!r:.80} is not a list of {length}")
    return value


def structure_of(reply: object, budget: ReadBudget, label: str) -> Hdf5Structure:
    """The typed structure in a walk's reply, or a clean error for anything else."""
    what = f"{label}: the HDF5 walk's reply"
    reply = expect(reply, dict, what)
    if set(reply) != {"attributes", "root", "groups", "datasets"}:
        raise InputError(f"{what} does not have the fields of a structure")
    entries = [_attributes(entry, what) for entry in expect(reply["attributes"], list, what)]
    root = entries[_entry(reply["root"], len(entries), what)]
    groups: dict[str, Attributes] = {}
    for item in expect(reply["groups"], list, what):
        budget.tick()
        path, entry = _items(item, 2, what)
        groups[name_of(path, budget, what)] = entries[_entry(entry, len(entries), what)]
    datasets = [_dataset(item, budget, label, what) for item in expect(reply["datasets"], list, what)]
    return Hdf5Structure(groups, tuple(datasets), root)


def _dataset(item: object, budget: ReadBudget, label: str, what: str) -> Hdf5Dataset:
    budget.tick()
    budget.charge("tensors", 1, label)
    path, shape, dtype, declared, stored = _items(item, 5, what)
    name = name_of(path, budget, what)
    return Hdf5Dataset(
        name,
        shape_of(shape, budget, f"dataset {name!r:.80}"),
        name_of(dtype, budget, what),
        _bytes(declared, what),
        _bytes(stored, what),
    )


def _bytes(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_ELEMENTS * 64:
        raise InputError(f"{what}: {value!r:.40} is not a size in bytes")
    return value


def start_walk(path: Path, budget: ReadBudget, member: str | None = None) -> Sandboxed:
    """The walk of an HDF5 file, or of an HDF5 member of a zip archive, started in the sandbox;
    ``structure_of(walk.result(), …)`` is its structure."""
    function, args = (walk_file, (str(path),)) if member is None else (walk_member, (str(path), member))
    return Sandboxed(function, *args, label=str(path), budget=budget, preload=("h5py",))


def read_structure(path: Path, budget: ReadBudget) -> Hdf5Structure:
    """The structure of one HDF5 file, walked in the sandbox."""
    with start_walk(path, budget) as walk:
        return structure_of(walk.result(), budget, str(path))


def read_structures(paths: list[Path], budget: ReadBudget, label: str) -> list[Hdf5Structure]:
    """The structures of several HDF5 files (shards), walked in one sandboxed child."""
    with Sandboxed(
        walk_files, [str(p) for p in paths], label=label, budget=budget, preload=("h5py",)
    ) as walk:
        replies = expect(walk.result(), list, f"{label}: the HDF5 walk's reply")
    if len(replies) != len(paths):
        raise InputError(f"{label}: the HDF5 walk replied for {len(replies)} of {len(paths)} files")
    return [
        structure_of(reply, budget, f"{label} ({path.name})")
        for reply, path in zip(replies, paths, strict=True)
    ]
