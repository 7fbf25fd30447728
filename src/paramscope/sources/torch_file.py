"""torch ``.pt`` / ``.pth`` / ``.bin`` files, zip (torch >= 1.6) and legacy, without torch.

The pickle inside is read by our inert walker (pickle_walker.py): tensors become references
to storages that we size-check against the bytes the file really holds, but never read; every
global the pickles name goes into the report's verdict (pickle_verdict.py) — what ``torch.load``
would import or run — and nothing is imported here. Checkpoints that nest a state dict (``{'model': ..., 'optimizer': ..., 'epoch': ...}``,
Lightning's ``state_dict``) are unwrapped; optimizer moments are reported apart from the model.
"""

from __future__ import annotations

import mmap
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from paramscope.core.dtypes import dtype_bits
from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.archive import read_member
from paramscope.sources.boundary import name_of, open_regular
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.pickle_verdict import verdict_of
from paramscope.sources.pickle_walker import Names, StorageRef, TensorRef, tensors_in, walk, walk_at

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
EXPANDED = (
    "{count} tensor(s) are expanded views (stride 0): their elements repeat one stored value "
    "and are not stored; counts and bytes are those of the view, as torch reports numel()."
)
StorageBytes = Callable[[StorageRef], int]  # the bytes the file really holds for a storage


def _strip_container(paths: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Drop a leading key shared by every model tensor (`state_dict.`, `model.`)."""
    while paths and all(len(p) > 1 for p in paths) and len({p[0] for p in paths}) == 1:
        paths = [p[1:] for p in paths]
    return paths


def _check_view(ref: TensorRef, storage_bytes: int) -> None:
    """A tensor's elements must lie inside the bytes its storage really has in the file."""
    bits = dtype_bits(ref.storage.dtype)
    if bits is None:
        return
    if ref.storage.numel * bits > storage_bytes * 8:
        raise InputError(
            f"storage {ref.storage.key!r:.40} declares {ref.storage.numel:,} elements; the file holds "
            f"{storage_bytes:,} bytes for it"
        )
    if 0 in ref.shape:
        return
    last = ref.offset + sum((d - 1) * s for d, s in zip(ref.shape, ref.stride, strict=True))
    if (last + 1) * bits > storage_bytes * 8:
        raise InputError(f"a tensor of shape {ref.shape} reaches past its storage")


def _flat(
    refs: list[tuple[tuple[str, ...], TensorRef]], storage_bytes: StorageBytes, budget
) -> list[FlatTensor]:
    paths = _strip_container([path for path, _ in refs])
    entries = []
    for path, (_, ref) in zip(paths, refs, strict=True):
        _check_view(ref, storage_bytes(ref.storage))
        name = name_of(".".join(path), budget, "a tensor name")
        identity = (ref.storage.key, ref.offset, ref.shape, ref.stride)
        requires_grad = ref.requires_grad if ref.parameter else None
        entries.append(FlatTensor(name, ref.shape, ref.storage.dtype, identity, requires_grad))
    return entries


Found = list[tuple[tuple[str, ...], TensorRef, bool]]


def _found(obj: object, path: Path, budget: ReadBudget) -> Found:
    """Every tensor in the unpickled object, with its key path and whether it is optimizer state."""
    found, seen, repeats = [], set(), 0
    for entry in tensors_in(obj, budget):
        budget.charge("tensors", 1, "checkpoint")
        if id(entry[1]) in seen:  # refused here, before a row is built for each alias
            repeats += 1
            budget.check("references", repeats, "the file")
        seen.add(id(entry[1]))
        found.append(entry)
    if not found:
        raise InputError(f"{path}: holds no tensors (not a state dict or checkpoint)")
    return found


def _repeats_elements(ref: TensorRef) -> bool:
    """A view whose stride is 0 along a dimension of more than one element (``expand``)."""
    return any(stride == 0 and dim > 1 for dim, stride in zip(ref.shape, ref.stride, strict=True))


def _report(
    found: Found, path: Path, storage_bytes: StorageBytes, variant: str, budget: ReadBudget, names: Names
) -> Report:
    model = [(p, r) for p, r, in_optimizer in found if not in_optimizer]
    optimizer = [(p, r) for p, r, in_optimizer in found if in_optimizer]
    expanded = sum(_repeats_elements(ref) for _, ref, _ in found)
    report = flat_report(
        _flat(model, storage_bytes, budget),
        Source(kind="torch_file", path=str(path), framework_version=variant),
        "A torch file",
        path.name,
        optimizer=_flat(optimizer, storage_bytes, budget) if optimizer else None,
        warnings=[EXPANDED.format(count=expanded)] if expanded else [],
        budget=budget,
    )
    report.pickle = verdict_of(names.values())
    return report


@contextmanager
def _naming_danger(names: Names) -> Iterator[None]:
    """A file that cannot be read but reaches dangerous globals says so in its error."""
    try:
        yield
    except InputError as exc:
        verdict = verdict_of(names.values())
        if not verdict.malicious:
            raise
        reached = ", ".join(name for name, _ in verdict.malicious[:3])
        raise type(exc)(f"malicious pickle (reaches {reached}); {exc}") from None


def read_torch_zip(path: Path, archive: zipfile.ZipFile, budget: ReadBudget) -> Report:
    infos = archive.infolist()
    if any(i.filename.endswith("/constants.pkl") for i in infos) and any(
        "/code/" in i.filename for i in infos
    ):
        raise InputError(
            f"{path}: a TorchScript archive; paramscope reads state dicts and checkpoints "
            "(save model.state_dict() with torch.save)"
        )
    pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if len(pickles) != 1:
        raise InputError(f"{path}: not a torch archive (no single */data.pkl)")
    prefix = pickles[0].filename[: -len("data.pkl")] + "data/"
    sizes = {
        i.filename[len(prefix) :]: _storage_size(i, budget) for i in infos if i.filename.startswith(prefix)
    }
    names: Names = {}
    with _naming_danger(names):
        obj = walk(read_member(archive, pickles[0], budget, "pickle_bytes"), budget=budget, names=names)
        found = _found(obj, path, budget)

    def storage_bytes(storage: StorageRef) -> int:
        size = sizes.get(storage.key)
        if size is None:
            raise InputError(f"{path}: tensor storage {storage.key!r:.40} is missing from the archive")
        return size

    with _naming_danger(names):
        return _report(found, path, storage_bytes, "zip", budget, names)


def _storage_size(info: zipfile.ZipInfo, budget: ReadBudget) -> int:
    """The bytes a storage member holds, as evidence for its tensors' sizes. torch stores
    storages uncompressed (open_zip has checked those sizes against the archive); a compressed
    one may not claim more than ``zip_ratio`` times its compressed bytes."""
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > budget.limits.zip_ratio * max(
        info.compress_size, 1
    ):
        raise BudgetExceeded("zip_ratio", budget.limits.zip_ratio, f"storage {info.filename!r:.60}")
    return info.file_size


def _legacy_storages(
    data: mmap.mmap, pos: int, found: Found, budget: ReadBudget, names: Names
) -> dict[str, int]:
    """Key -> bytes of each storage written after the pickles: an int64 element count, then the
    elements, whose size the pickle's storage type gives. Only the counts are read; each
    storage must lie inside the file."""
    keys, pos = walk_at(data, pos, budget, names=names)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InputError("the legacy storage list is not a list of keys")
    budget.check("tensors", len(keys), "legacy checkpoint")
    bits = {ref.storage.key: dtype_bits(ref.storage.dtype) for _, ref, _ in found}
    sizes: dict[str, int] = {}
    for key in keys:
        if key not in bits or bits[key] is None:
            break  # a storage no tensor names: the ones after it cannot be located
        if pos + 8 > len(data):
            raise InputError(f"storage {key!r:.40} is missing from the end of the file")
        count = int.from_bytes(data[pos : pos + 8], "little", signed=True)
        size = (count * bits[key] + 7) // 8 if count >= 0 else -1
        if not 0 <= size <= len(data) - pos - 8:
            raise InputError(f"storage {key!r:.40} declares {count:,} elements past the end of the file")
        sizes[key] = size
        pos += 8 + size
    return sizes


def read_torch_legacy(path: Path, budget: ReadBudget) -> Report:
    """The pre-1.6 format: magic, protocol and sys-info pickles, the object's pickle, the list
    of storage keys, then each storage's element count and raw elements."""
    names: Names = {}
    with (
        open_regular(path) as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        _naming_danger(names),
    ):
        magic, pos = walk_at(data, 0, budget, names=names)
        if magic != LEGACY_MAGIC:
            raise InputError(f"{path}: not a legacy torch file (bad magic number)")
        _, pos = walk_at(data, pos, budget, names=names)  # protocol version
        _, pos = walk_at(data, pos, budget, names=names)  # sys info
        obj, pos = walk_at(data, pos, budget, names=names)
        found = _found(obj, path, budget)
        sizes = _legacy_storages(data, pos, found, budget, names)

    def storage_bytes(storage: StorageRef) -> int:
        if storage.key not in sizes:
            raise InputError(f"{path}: tensor storage {storage.key!r:.40} is missing from the file")
        return sizes[storage.key]

    with _naming_danger(names):
        return _report(found, path, storage_bytes, "legacy", budget, names)


def looks_like_legacy(head: bytes) -> bool:
    """Protocol-2 pickle of the 10-byte legacy magic number (`\\x80\\x02\\x8a\\x0a...`)."""
    return head[:4] == b"\x80\x02\x8a\x0a" and int.from_bytes(head[4:14], "little") == LEGACY_MAGIC


__all__ = ["looks_like_legacy", "read_torch_legacy", "read_torch_zip"]
