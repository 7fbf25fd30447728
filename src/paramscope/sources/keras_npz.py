"""The weights of a ``.keras`` archive saved with ``weights_format="npz"``, read without Keras.

Keras writes each layer's variables as a 0-d object array: a pickle of ``{"0": Variable, …}``
holding the backend's own Variable objects (a torch tensor, a jax array, a TF
ResourceVariable inside). NumPy cannot read that without unpickling, and Keras 3 loads it with
``allow_pickle=False`` and so fails on its own files. The restricted pickle walker reads each
Variable's recorded ``_shape`` and ``_dtype`` without importing or calling anything; framework
names are allowed as inert records, everything else (``os.system``…) is still refused.

The npz is a zip inside the zip. It is copied out through the archive caps into an unnamed
temporary file, so that it is opened like any archive (``open_zip``: its entry count and
directory checked before zipfile parses them) and its members read through the same caps.
The result has the layout of an HDF5 walk (groups and datasets named
``layers/<attr>/vars/<i>``), so keras_store.py reads it as it reads the HDF5 one.
"""

from __future__ import annotations

import re
import tempfile
import tokenize
import zipfile

from paramscope.core.printable import visible
from paramscope.core.tree import join_path
from paramscope.errors import InputError
from paramscope.sources.archive import copy_member, open_member, open_zip, zip_errors
from paramscope.sources.boundary import name_of, shape_of
from paramscope.sources.budget import ReadBudget
from paramscope.sources.hdf5_structure import Hdf5Dataset, Hdf5Structure
from paramscope.sources.pickle_verdict import is_data_only
from paramscope.sources.pickle_walker import Call, Global, Names, walk

WEIGHTS_MEMBER = "model.weights.npz"
FRAMEWORK_ROOTS = frozenset({"keras", "numpy", "torch", "jax", "jaxlib", "tensorflow", "ml_dtypes"})
ROOT_ENTRY = "__root__"
MAX_NPY_HEADER = 100_000
TYPE_CODE = re.compile(r"[<>|=]?[A-Za-z][A-Za-z0-9]{0,15}")  # 'f4', '<i8', 'bool': no structured dtypes


def _framework_name(target: Global) -> bool:
    return target.module.split(".", 1)[0] in FRAMEWORK_ROOTS or target == Global("functools", "partial")


def _refuse_foreign_names(names: dict, label: str) -> None:
    """Keras pickles only its own and its backends' objects here; anything else is no Keras
    weights file (the names were recorded, never imported)."""
    foreign = sorted(g.dotted for g in names.values() if not (_framework_name(g) or is_data_only(g)))
    if foreign:
        raise InputError(f"{label}: refused global {visible(foreign[0])[:120]} (not a Keras weights record)")


def _record(function: Global, args: tuple) -> Call:
    """Every call stays a record: the backend tensors inside a Variable are not interpreted."""
    return Call(function, args)


def _no_persistent_ids(pid) -> None:
    raise InputError(f"unexpected persistent id {pid!r:.80} in Keras npz weights")


def _variables(entry: object, label: str, budget: ReadBudget) -> dict[str, tuple[tuple[int, ...], str]]:
    """index -> (shape, dtype) from one member's unpickled 0-d object array."""
    state = entry.state if isinstance(entry, Call) else None
    if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[4], list) and state[4]):
        raise InputError(f"{label}: not a Keras variable record")
    store = state[4][0]
    if not isinstance(store, dict):
        raise InputError(f"{label}: not a Keras variable record")
    found = {}
    for index, variable in store.items():
        budget.tick()
        shape, dtype = _shape_and_dtype(variable)
        if not (isinstance(index, str) and index.isascii() and index.isdigit()) or not isinstance(dtype, str):
            raise InputError(f"{label}: variable {index!r:.40} has no readable shape and dtype")
        what = f"{label}: variable {index}"
        found[index] = (shape_of(shape, budget, what), name_of(dtype, budget, what))
    return found


def _shape_and_dtype(value: object) -> tuple[object, object]:
    """A Keras Variable's recorded ``_shape``/``_dtype``, or those of a plain ndarray or NumPy
    scalar (optimizer state)."""
    if not isinstance(value, Call):
        return None, None
    if isinstance(value.state, dict):
        return value.state.get("_shape"), value.state.get("_dtype")
    if (
        isinstance(value.function, Global) and value.function.name == "scalar" and value.args
    ):  # numpy scalar(dtype, bytes)
        return (), _dtype_name(value.args[0])
    state = value.state
    if isinstance(state, tuple) and len(state) == 5:  # ndarray state: (1, shape, dtype, …)
        return state[1], _dtype_name(state[2])
    return None, None


def _dtype_name(record: object) -> str | None:
    """The name of a pickled ``numpy.dtype(code, …)``, without calling anything from the file:
    only a short type code reaches NumPy."""
    if not (isinstance(record, Call) and record.args and isinstance(record.args[0], str)):
        return None
    if not TYPE_CODE.fullmatch(record.args[0]):
        return None
    import numpy as np

    try:
        return np.dtype(record.args[0]).name
    except (TypeError, ValueError):
        return None


def _skip_npy_header(member, label: str) -> None:
    from numpy.lib import format as npformat  # numpy only where this rare layout needs it

    try:
        if npformat.read_magic(member) == (1, 0):
            npformat.read_array_header_1_0(member, max_header_size=MAX_NPY_HEADER)
        else:
            npformat.read_array_header_2_0(member, max_header_size=MAX_NPY_HEADER)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as exc:
        raise InputError(f"{label}: not a readable .npy header ({str(exc)[:80]})") from None


def _entry_variables(weights: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, budget: ReadBudget) -> dict:
    with open_member(weights, info, budget, "pickle_bytes") as member:
        _skip_npy_header(member, label)
        names = Names()
        record = walk(member, persistent_load=_no_persistent_ids, reduce=_record, budget=budget, names=names)
    _refuse_foreign_names(names, label)
    return _variables(record, label, budget)


def npz_structure(archive: zipfile.ZipFile, budget: ReadBudget) -> Hdf5Structure:
    """Groups and datasets of the archive's ``model.weights.npz``, as an HDF5 walk gives them."""
    groups: dict[str, dict] = {}
    datasets: list[Hdf5Dataset] = []
    with tempfile.TemporaryFile() as spill, zip_errors(WEIGHTS_MEMBER):
        copy_member(archive, WEIGHTS_MEMBER, budget, "decompressed_bytes", spill)
        spill.flush()  # open_zip measures the file through its descriptor
        with open_zip(spill, budget, WEIGHTS_MEMBER) as weights:
            for info in weights.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                label = f"{WEIGHTS_MEMBER}/{name_of(info.filename, budget, WEIGHTS_MEMBER)}"
                entry_path = label[len(WEIGHTS_MEMBER) + 1 : -len(".npy")]
                layer_group = "" if entry_path == ROOT_ENTRY else entry_path
                if layer_group:  # the root is no group of its own, as in the HDF5 layout
                    groups[layer_group] = {}
                vars_group = join_path(layer_group, "vars")
                groups[vars_group] = {}
                for index, (shape, dtype) in _entry_variables(weights, info, label, budget).items():
                    budget.charge("tensors", 1, WEIGHTS_MEMBER)
                    datasets.append(Hdf5Dataset(join_path(vars_group, index), shape, dtype))
    return Hdf5Structure(groups, tuple(datasets))
