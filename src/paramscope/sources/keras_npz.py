"""The weights of a ``.keras`` archive saved with ``weights_format="npz"``, read without Keras.

Keras writes each layer's variables as a 0-d object array: a pickle of ``{"0": Variable, …}``
holding the backend's own Variable objects (a torch tensor, a jax array, a TF
ResourceVariable inside). NumPy cannot read that without unpickling, and Keras 3 loads it with
``allow_pickle=False`` and so fails on its own files. The restricted pickle walker reads each
Variable's recorded ``_shape`` and ``_dtype`` without importing or calling anything; framework
names are allowed as inert records, everything else (``os.system``…) is still refused.

The result has the same plain shape as an HDF5 walk (groups and datasets named
``layers/<attr>/vars/<i>``), so ``keras_file.structure_report`` names and roles it.
"""

from __future__ import annotations

import math
import tokenize
import zipfile

from paramscope.core.tree import join_path
from paramscope.errors import InputError
from paramscope.sources.limits import MAX_DIMS, MAX_PICKLE_BYTES, MAX_TENSORS, MAX_ZIP_MEMBERS
from paramscope.sources.pickle_walker import Call, Global, walk

WEIGHTS_MEMBER = "model.weights.npz"
FRAMEWORK_ROOTS = frozenset({"keras", "numpy", "torch", "jax", "jaxlib", "tensorflow", "ml_dtypes"})
ROOT_ENTRY = "__root__"


def _framework_name(target: Global) -> bool:
    return target.module.split(".", 1)[0] in FRAMEWORK_ROOTS or target == Global("functools", "partial")


def _record(function: Global, args: tuple) -> Call:
    """Every call stays a record: the backend tensors inside a Variable are not interpreted."""
    return Call(function, args)


def _no_persistent_ids(pid) -> None:
    raise InputError(f"unexpected persistent id {pid!r:.80} in Keras npz weights")


def _variables(entry: object, label: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """index -> (shape, dtype) from one member's unpickled 0-d object array."""
    state = entry.state if isinstance(entry, Call) else None
    if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[4], list) and state[4]):
        raise InputError(f"{label}: not a Keras variable record")
    store = state[4][0]
    if not isinstance(store, dict):
        raise InputError(f"{label}: not a Keras variable record")
    found = {}
    for index, variable in store.items():
        shape, dtype = _shape_and_dtype(variable)
        valid_shape = (
            isinstance(shape, tuple)
            and len(shape) <= MAX_DIMS
            and all(isinstance(d, int) and 0 <= d < 2**48 for d in shape)
        )
        if not (isinstance(index, str) and index.isdigit() and valid_shape and isinstance(dtype, str)):
            raise InputError(f"{label}: variable {index!r:.40} has no readable shape and dtype")
        if math.prod(shape) > 2**62:
            raise InputError(f"{label}: variable {index} has an absurd shape")
        found[index] = (shape, dtype)
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
    """The name of a pickled ``numpy.dtype(code, …)``, without calling anything from the file."""
    if not (isinstance(record, Call) and record.args and isinstance(record.args[0], str)):
        return None
    import numpy as np

    try:
        return np.dtype(record.args[0]).name  # a type code string such as 'f4'
    except (TypeError, ValueError):
        return None


def npz_structure(archive: zipfile.ZipFile) -> dict:
    """Groups and datasets of the archive's ``model.weights.npz``, as ``hdf5_structure`` gives."""
    from numpy.lib import format as npformat  # numpy only where this rare layout needs it

    groups: dict[str, dict] = {}
    datasets: list[dict] = []
    with archive.open(WEIGHTS_MEMBER) as stream, zipfile.ZipFile(stream) as weights:
        infos = weights.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise InputError(f"{WEIGHTS_MEMBER} has too many members")
        for info in infos:
            if not info.filename.endswith(".npy"):
                continue
            label = f"{WEIGHTS_MEMBER}/{info.filename}"
            if info.file_size > MAX_PICKLE_BYTES:
                raise InputError(f"{label}: larger than paramscope reads")
            entry_path = info.filename[: -len(".npy")]
            layer_group = "" if entry_path == ROOT_ENTRY else entry_path
            with weights.open(info) as member:
                try:
                    if npformat.read_magic(member) == (1, 0):
                        npformat.read_array_header_1_0(member, max_header_size=100_000)
                    else:
                        npformat.read_array_header_2_0(member, max_header_size=100_000)
                except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as exc:
                    raise InputError(f"{label}: not a readable .npy header ({exc})") from None
                record = walk(
                    member,
                    persistent_load=_no_persistent_ids,
                    also_allowed=_framework_name,
                    reduce=_record,
                )
            if layer_group:  # the root is no group of its own, as in the HDF5 layout
                groups[layer_group] = {}
            groups[join_path(layer_group, "vars")] = {}
            for index, (shape, dtype) in _variables(record, label).items():
                path = join_path(join_path(layer_group, "vars"), index)
                datasets.append({"path": path, "shape": shape, "dtype": dtype})
            if len(datasets) > MAX_TENSORS:
                raise InputError(f"{WEIGHTS_MEMBER}: too many variables")
    return {"groups": groups, "datasets": datasets}
