"""NumPy ``.npy`` and ``.npz`` files, headers only.

numpy's own header parser (``numpy.lib.format``) reads the dict literal with
``ast.literal_eval`` (no code runs) and is the reference; we call it on the header bytes
only. Object arrays are refused: loading them unpickles arbitrary objects.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.limits import MAX_TENSORS, MAX_ZIP_MEMBERS


def _header(handle, label: str) -> tuple[tuple[int, ...], str]:
    try:
        version = npformat.read_magic(handle)
        if version == (1, 0):
            shape, _fortran, dtype = npformat.read_array_header_1_0(handle, max_header_size=100_000)
        else:
            shape, _fortran, dtype = npformat.read_array_header_2_0(handle, max_header_size=100_000)
    except (
        ValueError,
        OSError,
        EOFError,
        SyntaxError,
        tokenize.TokenError,
    ) as exc:  # numpy's parser raises all
        raise InputError(f"{label}: not a readable .npy header ({exc})") from None
    if dtype.hasobject:
        raise InputError(f"{label}: object array refused (loading it would unpickle arbitrary objects)")
    if math.prod(shape) > 2**62:
        raise InputError(f"{label}: absurd shape {shape}")
    return tuple(int(d) for d in shape), np.dtype(dtype).name


def read_npy(path: Path) -> Report:
    with open(path, "rb") as handle:
        shape, dtype = _header(handle, str(path))
    entry = FlatTensor(path.stem, shape, dtype, path.stem)
    return flat_report([entry], Source(kind="npz", path=str(path)), "A .npy file", path.name)


def read_npz(path: Path) -> Report:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    entries = []
    with archive:
        infos = [i for i in archive.infolist() if i.filename.endswith(".npy")]
        if len(archive.infolist()) > MAX_ZIP_MEMBERS or len(infos) > MAX_TENSORS:
            raise InputError(f"{path}: too many members")
        for info in infos:
            name = info.filename.removesuffix(".npy")
            if name.startswith("/") or ".." in name.split("/"):
                raise InputError(f"{path}: member name {info.filename!r} is not a plain name")
            with archive.open(info) as handle:
                shape, dtype = _header(handle, f"{path}:{info.filename}")
            entries.append(FlatTensor(name.replace("/", "."), shape, dtype, name))
    if not entries:
        raise InputError(f"{path}: holds no arrays")
    return flat_report(entries, Source(kind="npz", path=str(path)), "An .npz file", path.name)
