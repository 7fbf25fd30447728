"""Where each variable's elements lie in a Keras ``.keras`` archive or ``.h5`` file.

libhdf5 parses the file in the sandbox (sandbox.py), twice at once: the structure walk the
reader uses (hdf5_structure.py: groups, their names, every dataset's shape and dtype), and
:func:`locate_datasets` here, which answers where each dataset's bytes start. Only datasets
stored contiguously and unfiltered — as Keras writes them — are read, straight from the file
by byte range (a ``.keras`` archive stores its weights member uncompressed; its range in the
archive is checked); each range must lie inside the HDF5 file and its dtype agree with the
structure's. Chunked, compressed or compact datasets are reported as not read.

The variables are placed as the reader names them (keras_store.py): in Keras 3's layout a
layer's variables are ``<layer>/vars/0, 1, …`` and its node path is the chain of its layers'
saved names; in a legacy ``.h5`` each weight is listed by name under its layer. A tensor of
the report takes the dataset at its place only when their shapes agree.
"""

from __future__ import annotations

import contextlib
import math
import re
import zipfile
from pathlib import Path

import numpy as np

from paramscope.core.report import Node, Report
from paramscope.core.tree import join_path
from paramscope.errors import InputError
from paramscope.sources.archive import open_zip, zip_errors
from paramscope.sources.boundary import expect, open_regular, require_regular
from paramscope.sources.budget import ReadBudget
from paramscope.sources.detect import HDF5_MAGIC, ZIP_MAGIC
from paramscope.sources.hdf5_structure import Hdf5Dataset, Hdf5Structure, start_walk, structure_of
from paramscope.sources.hdf5_walk import Window, _member_offset
from paramscope.sources.keras_file import HDF5_WEIGHTS
from paramscope.sources.keras_store import (
    MAX_INDEX_DIGITS,
    NOT_LAYERS,
    _name,
    _names,
    _owner,
    _scoped,
    is_keras3_layout,
)
from paramscope.sources.sandbox import Sandboxed
from paramscope.sources.values import FileRange, Located, Values

NUMERIC_DTYPE = re.compile(r"[<>|=]?[biuf][1248]")
NOT_PLAIN = "stored chunked, compressed or compact in the HDF5 file: its values are not read"


def locate_datasets(path: str, member: str | None, budget: ReadBudget) -> list[list]:
    """Runs in the sandbox: ``[path, byte offset in the HDF5 file or -1, stored plainly, dtype]``
    of every dataset; a member of a zip archive is read in place, as the structure walk does."""
    import h5py

    with open_regular(path) as raw, contextlib.ExitStack() as stack:
        source: object = path
        if member is not None:
            with zip_errors(path), open_zip(raw, budget, path) as archive:
                info = archive.getinfo(member)
            source = Window(raw, _member_offset(raw, info), info.file_size)
        else:
            require_regular(path)
        handle = stack.enter_context(h5py.File(source, "r"))
        names: list[str] = []
        handle.visit(names.append)  # every object once, however many links reach it
        return [
            _location(name, handle[name], h5py, budget) for name in names if _is_dataset(handle, name, h5py)
        ]


def _is_dataset(handle, name: str, h5py) -> bool:
    return handle.get(name, getclass=True) is h5py.Dataset


def _location(name: str, dataset, h5py, budget: ReadBudget) -> list:
    budget.tick()
    budget.charge("tensors", 1, "datasets")
    plist = dataset.id.get_create_plist()
    plain = (
        plist.get_layout() == h5py.h5d.CONTIGUOUS
        and plist.get_nfilters() == 0
        and plist.get_external_count() == 0
    )
    offset = dataset.id.get_offset() if plain else None
    return [name, -1 if offset is None else int(offset), plain, dataset.dtype.str]


def _range(
    dataset: Hdf5Dataset, reply: list, file: Path, file_size: int, container: tuple[int, int]
) -> FileRange | str:
    """A dataset's values, its location in the reply checked against the structure and file."""
    _, offset, plain, code = reply
    if not plain:
        return NOT_PLAIN
    if not (isinstance(code, str) and NUMERIC_DTYPE.fullmatch(code)) or np.dtype(code).name != dataset.dtype:
        raise InputError(f"dataset {dataset.path!r:.80}: the HDF5 walks disagree on its dtype")
    dtype, count = np.dtype(code), math.prod(dataset.shape)
    start, length = container
    if count == 0:
        return FileRange(file, file_size, start, dtype, 0)
    if type(offset) is not int or offset < 0:
        return "never written to the file: it holds no values"
    if offset + count * dtype.itemsize > length:
        raise InputError(f"dataset {dataset.path!r:.80} reaches past the end of the HDF5 file")
    return FileRange(file, file_size, start + offset, dtype, count)


def _replies(reply: object, label: str) -> dict[str, list]:
    """The sandbox's answer, by dataset path: nothing in it is trusted before it is checked."""
    checked = {}
    for item in expect(reply, list, label):
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)):
            raise InputError(f"{label}: a malformed dataset location")
        checked[item[0]] = item
    return checked


def _keras3_places(structure: Hdf5Structure, budget: ReadBudget) -> dict[str, list[Hdf5Dataset]]:
    """Node path -> the datasets of its variables, in the order the reader lists them: numbered
    ``vars/<i>`` by index, then named ones (a wrapped torch module's) in file order."""
    groups = structure.groups
    layers = {
        group
        for group in groups
        if group not in NOT_LAYERS
        and group.rpartition("/")[2] != "vars"
        and join_path(group, "vars") in groups
    }
    nodes = {"": ""}
    for group in sorted(layers, key=len):  # a layer's owner is a shorter path
        owner = _owner(group, layers)
        if owner in nodes:
            saved = groups[join_path(group, "vars")].get("name", group.rpartition("/")[2])
            nodes[group] = join_path(nodes[owner], _name(saved, budget, f"layer {group!r:.80}"))
    places: dict[str, list[tuple[tuple[bool, int], Hdf5Dataset]]] = {}
    for position, dataset in enumerate(structure.datasets):
        group, _, leaf = dataset.path.rpartition("/")
        layer = group.removesuffix("vars").removesuffix("/")
        if group.rpartition("/")[2] == "vars" and layer in nodes:
            numbered = leaf.isascii() and leaf.isdigit() and len(leaf) <= MAX_INDEX_DIGITS
            key = (not numbered, int(leaf) if numbered else position)
            places.setdefault(nodes[layer], []).append((key, dataset))
    return {
        node: [dataset for _, dataset in sorted(found, key=lambda f: f[0])] for node, found in places.items()
    }


def _keras3_tensors(root: Node, structure: Hdf5Structure, budget: ReadBudget) -> dict[str, Hdf5Dataset]:
    """Each report tensor's dataset: the one at its place in its node, if their shapes agree."""
    places = _keras3_places(structure, budget)
    found = {}
    for node in root.walk():
        datasets = places.get(node.path, [])
        if len(datasets) == len(node.tensors):
            found.update(
                (tensor.path, dataset)
                for tensor, dataset in zip(node.tensors, datasets, strict=True)
                if tensor.shape == dataset.shape
            )
    return found


def _legacy_tensors(root: Node, structure: Hdf5Structure, budget: ReadBudget) -> dict[str, Hdf5Dataset]:
    """Each report tensor's dataset in a legacy ``.h5``: listed by name under its layer."""
    groups = structure.groups
    base = "model_weights" if "model_weights" in groups else ""
    listing = groups.get(base, {}) if base else structure.root
    datasets = {dataset.path: dataset for dataset in structure.datasets}
    by_path = {}
    for layer in _names(listing, "layer_names", budget, "layer_names"):
        group = join_path(base, layer)
        for weight in _names(groups.get(group, {}), "weight_names", budget, "weight_names"):
            dataset = datasets.get(f"{group}/{weight}")
            if dataset is not None:
                by_path[_scoped(layer, weight)] = dataset
    shapes = {tensor.path: tensor.shape for tensor in root.all_tensors()}
    return {path: dataset for path, dataset in by_path.items() if shapes.get(path) == dataset.shape}


def _container(path: Path, budget: ReadBudget) -> tuple[str | None, tuple[int, int]] | str:
    """(the HDF5 member of a .keras archive or None for the file itself, (its first byte, its
    bytes)); or why the file's weights are not read."""
    with open_regular(path) as handle:
        head = handle.read(len(HDF5_MAGIC))
        size = handle.seek(0, 2)
        if head.startswith(HDF5_MAGIC):
            return None, (0, size)
        if not head.startswith(ZIP_MAGIC):
            return "sharded Keras weights are not read yet"
        with zip_errors(str(path)), open_zip(handle, budget, str(path)) as archive:
            if HDF5_WEIGHTS not in archive.namelist():
                return "a .keras archive whose weights are not HDF5 (npz): its values are not read"
            info = archive.getinfo(HDF5_WEIGHTS)
            if info.compress_type != zipfile.ZIP_STORED:
                return f"{HDF5_WEIGHTS} is compressed in the archive: its values are not read"
            return HDF5_WEIGHTS, (_member_offset(handle, info), info.file_size)


def keras_values(path: Path, report: Report, budget: ReadBudget) -> Values:
    container = _container(path, budget)
    if isinstance(container, str):
        return Values({}, container)
    member, span = container
    label = str(path)
    with (
        start_walk(path, budget, member=member) as walk,
        Sandboxed(locate_datasets, label, member, label=label, budget=budget, preload=("h5py",)) as locate,
    ):
        structure = structure_of(walk.result(), budget, label)
        replies = _replies(locate.result(), f"{label}: the HDF5 location walk's reply")
    keras3 = "layer_names" not in structure.root and is_keras3_layout(structure)
    tensors = (_keras3_tensors if keras3 else _legacy_tensors)(report.root, structure, budget)
    size = path.stat().st_size
    located: Located = {}
    for tensor_path, dataset in tensors.items():
        reply = replies.get(dataset.path)
        located[tensor_path] = (
            _range(dataset, reply, path, size, span)
            if reply is not None
            else "not found among the file's data"
        )
    return Values(located)
