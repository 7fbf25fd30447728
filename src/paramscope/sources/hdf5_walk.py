"""The structure of an HDF5 file as plain data: groups, their small attributes, datasets.

Runs inside the sandbox (sandbox.py). Reads no dataset values. Refuses what Keras's own
loader refuses and what could reach outside the file: soft and external links, datasets
with external storage, virtual datasets, and shapes too large to be real.
"""

from __future__ import annotations

import math
import zipfile

from paramscope.errors import InputError
from paramscope.sources.limits import MAX_DIMS, MAX_TENSORS

MAX_ATTRIBUTE_BYTES = 64 * 1024 * 1024
MAX_ELEMENTS = 2**48


def _attribute(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_attribute(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)[:200]


def _walk(handle) -> dict:
    import h5py

    groups: dict[str, dict] = {}
    datasets: list[dict] = []

    def visit(name: str, link) -> None:
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            kind = "external" if isinstance(link, h5py.ExternalLink) else "soft"
            raise InputError(f"refused HDF5 {kind} link {name!r}")
        item = handle[name]
        if isinstance(item, h5py.Dataset):
            if item.is_virtual:
                raise InputError(f"refused virtual dataset {name!r}")
            if item.external:
                raise InputError(f"refused dataset {name!r} with external storage")
            shape = tuple(int(d) for d in item.shape or ())
            if len(shape) > MAX_DIMS or math.prod(shape) > MAX_ELEMENTS:
                raise InputError(f"refused dataset {name!r} with an absurd shape")
            datasets.append({"path": name, "shape": shape, "dtype": item.dtype.name})
            if len(datasets) > MAX_TENSORS:
                raise InputError("too many datasets")
        else:
            groups[name] = {
                k: _attribute(v)
                for k, v in item.attrs.items()
                if item.attrs.get_id(k).get_storage_size() <= MAX_ATTRIBUTE_BYTES
            }

    handle.visititems_links(visit)
    root_attrs = {
        k: _attribute(v)
        for k, v in handle.attrs.items()
        if handle.attrs.get_id(k).get_storage_size() <= MAX_ATTRIBUTE_BYTES
    }
    return {"root": root_attrs, "groups": groups, "datasets": datasets}


def hdf5_structure(path: str, member: str | None = None) -> dict:
    """The structure of an HDF5 file, or of one HDF5 member of a zip archive."""
    import h5py

    if member is None:
        with h5py.File(path, "r") as handle:
            return _walk(handle)
    with zipfile.ZipFile(path) as archive, archive.open(member) as stream, h5py.File(stream, "r") as handle:
        return _walk(handle)
