"""torch ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` files, zip (torch >= 1.6) and legacy, without torch.

The pickle inside is read by our inert walker (pickle_walker.py): tensors become references
to storages that we size-check against the bytes the file really holds, but never read; every
global the pickles name goes into the report's verdict (pickle_verdict.py) — what ``torch.load``
would import or run — and nothing is imported here. What the pickle holds is read by
torch_pickled.py: state dicts, whole pickled ``nn.Module``s (their module tree, parameters and
buffers, as the live module would report them), NumPy arrays. Checkpoints that nest the model
(``{'model': ..., 'optimizer': ..., 'epoch': ...}``, Lightning's ``state_dict``) are unwrapped,
optimizer moments are reported apart from the model, training bookkeeping is left out and the
checkpoint's own facts (epoch, hyper-parameters) become metadata (torch_checkpoint.py).
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from paramscope.core.dtypes import dtype_bits
from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Role, Source, Verdict
from paramscope.errors import InputError
from paramscope.sources.archive import read_member
from paramscope.sources.boundary import name_of, open_regular
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.flat import FlatModule, FlatTensor, flat_report
from paramscope.sources.packed_weights import Hints, config_beside
from paramscope.sources.pickle_numpy import ArrayRef
from paramscope.sources.pickle_verdict import verdict_of
from paramscope.sources.pickle_walker import Call, Names, StorageRef, TensorRef, walk, walk_at
from paramscope.sources.torch_checkpoint import checkpoint_metadata, layout
from paramscope.sources.torch_pickled import BUFFER, PARAMETER, Held, ModuleSeen, Sighting, Unread, holdings
from paramscope.sources.torch_prune import Pruned, mask_name, prune_warnings, pruned_names

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
PROTO_OPCODE = 0x80
PLAIN_PICKLE = "plain pickle"  # the variant of a file that is one pickle, not torch's format
# how pickle.dump starts a dict or list in protocols 0 and 1 (no PROTO opcode to go by)
UNPREFIXED_STARTS = (b"(dp0\n", b"(lp0\n", b"}q\x00", b"]q\x00")
EXPANDED = (
    "{count} tensor(s) are expanded views (stride 0): their elements repeat one stored value "
    "and are not stored; counts and bytes are those of the view, as torch reports numel()."
)
UNREAD = (
    "{count} tensor(s) the pickled modules register are not plain tensor records and are not "
    "counted: {shown}."
)
StorageBytes = Callable[[StorageRef], int]  # the bytes the file really holds for a storage


def _container_depth(paths: list[tuple[str, ...]], modules: set[tuple[str, ...]]) -> int:
    """How many leading keys every model tensor shares (`state_dict.`, `model.`): they are
    dropped, up to a pickled module, whose tensors keep the names torch gives them from there."""
    depth = 0
    while (
        paths
        and paths[0][:depth] not in modules
        and all(len(p) > depth + 1 for p in paths)
        and len({p[depth] for p in paths}) == 1
    ):
        depth += 1
    return depth


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


def _slot_role(held: Held, tensor: TensorRef) -> Role | None:
    """The role a module gives what it registers: a parameter trains unless switched off, a
    buffer is state. None for a plain tensor: its name and dtype are all there is to go by."""
    if held.slot == PARAMETER:
        return Role.TRAINABLE if tensor.requires_grad else Role.FROZEN
    return Role.STATE if held.slot == BUFFER else None


def _entry(held: Held, name: str, storage_bytes: StorageBytes, key: str | None) -> FlatTensor:
    """One tensor as a flat entry: a NumPy array as it is (its bytes were checked against its
    record), a torch tensor once its view fits its storage; a module's parameter or buffer
    with the role its module gives it. ``key``: its full key path, where ``name`` cuts one."""
    tensor = held.tensor
    if isinstance(tensor, ArrayRef):
        return FlatTensor(name, tensor.shape, tensor.dtype, id(tensor), nbytes=tensor.nbytes, key=key)
    _check_view(tensor, storage_bytes(tensor.storage))
    identity = (tensor.storage.key, tensor.offset, tensor.shape, tensor.stride)
    requires_grad = tensor.requires_grad if tensor.parameter else None
    role = _slot_role(held, tensor)
    return FlatTensor(
        name,
        tensor.shape,
        tensor.storage.dtype,
        identity,
        requires_grad,
        role=role,
        persistent=held.persistent,
        key=key,
    )


def _dotted(path: tuple[str, ...], budget: ReadBudget) -> str:
    return name_of(".".join(path), budget, "a tensor name")


def _flat(
    found: list[Sighting], storage_bytes: StorageBytes, budget: ReadBudget
) -> tuple[list[FlatTensor], list[FlatModule]]:
    """Flat entries named from the shared container down (keyed by their full key paths, the
    container's included: ``state_dict.layer.weight``), and the pickled modules under it."""
    held = [s for s in found if isinstance(s, Held)]
    modules = [s for s in found if isinstance(s, ModuleSeen)]
    depth = _container_depth([h.path for h in held], {m.path for m in modules})
    prefix = held[0].path[:depth] if held else ()
    entries = [
        _entry(h, _dotted(h.path[depth:], budget), storage_bytes, _dotted(h.path, budget) if depth else None)
        for h in held
    ]
    return entries, [
        FlatModule(_dotted(m.path[depth:], budget), m.type, m.mode)
        for m in modules
        if m.path[:depth] == prefix
    ]


def _pruned_state(entries: list[FlatTensor]) -> tuple[list[FlatTensor], list[str]]:
    """A pruned layer's mask is a buffer (state), whatever a state dict's names say; and a
    warning for each pruned layer, whose surviving weights only the mask's data could tell."""
    masks = {
        mask_name(layer, tensor): (layer, tensor) for layer, tensor in pruned_names(e.name for e in entries)
    }
    if not masks:
        return entries, []
    sizes = {e.name: math.prod(e.shape) for e in entries if e.name in masks}
    entries = [dataclasses.replace(e, role=Role.STATE) if e.name in masks else e for e in entries]
    pruned = [Pruned(layer, tensor, sizes[mask], None) for mask, (layer, tensor) in masks.items()]
    return entries, prune_warnings(pruned)


def _found(obj: object, path: Path, budget: ReadBudget) -> list[Sighting]:
    """Every tensor and module in the unpickled object, with its key path and whether it is
    optimizer state."""
    found, seen, repeats = [], set(), 0
    for entry in holdings(obj, budget):
        if isinstance(entry, Held):
            budget.charge("tensors", 1, "checkpoint")
            if id(entry.tensor) in seen:  # refused here, before a row is built for each alias
                repeats += 1
                budget.check("references", repeats, "the file")
            seen.add(id(entry.tensor))
        found.append(entry)
    return found


def _repeats_elements(tensor: TensorRef | ArrayRef) -> bool:
    """A view whose stride is 0 along a dimension of more than one element (``expand``)."""
    if isinstance(tensor, ArrayRef):
        return False
    return any(stride == 0 and dim > 1 for dim, stride in zip(tensor.shape, tensor.stride, strict=True))


def _notes(found: list[Sighting], model: list[Sighting]) -> list[str]:
    """What the report must say about the tensors it counts."""
    notes = []
    expanded = sum(_repeats_elements(s.tensor) for s in found if isinstance(s, Held))
    if expanded:
        notes.append(EXPANDED.format(count=expanded))
    unread = [s.path for s in model if isinstance(s, Unread)]
    if unread:
        shown = ", ".join(".".join(p) for p in unread[:3])
        notes.append(UNREAD.format(count=len(unread), shown=shown))
    return notes


def _report(
    obj: object,
    found: list[Sighting],
    path: Path,
    storage_bytes: StorageBytes,
    variant: str,
    budget: ReadBudget,
    names: Names,
) -> Report:
    """The report of what the pickle holds. A pickle without tensors is no checkpoint — unless
    it is malicious: then its verdict is the report (no counts), not a bad-input error."""
    verdict = verdict_of(names.values(), names.protocols)
    if not any(isinstance(s, Held) for s in found) and verdict.verdict is not Verdict.MALICIOUS:
        raise InputError(f"{path}: holds no tensors (not a state dict or checkpoint)")
    parts = layout(obj, found)
    entries, modules = _flat(parts.model, storage_bytes, budget)
    entries, pruned = _pruned_state(entries)
    optimizer = _flat(parts.optimizer, storage_bytes, budget)[0] if parts.optimizer else None
    report = flat_report(
        entries,
        Source(kind=Kind.TORCH_FILE, path=str(path), framework_version=variant),
        "A torch file",
        path.name,
        optimizer=optimizer,
        warnings=_notes(found, parts.model) + pruned + parts.warnings(),
        budget=budget,
        modules=modules,
        hints=Hints(config=lambda: config_beside(path.parent, budget), content=_stored_bytes(path, budget)),
    )
    report.pickle = verdict
    report.metadata = checkpoint_metadata(obj, budget)
    return report


def _stored_bytes(path: Path, budget: ReadBudget) -> Callable[[str], bytes]:
    """A small tensor's stored bytes (bitsandbytes' quant state, its 4-bit weight's logical
    shape), read where diff reads values; imported here, as values_torch imports this module."""
    from paramscope.sources.values_torch import stored_bytes

    return stored_bytes(path, budget)


@contextmanager
def _naming_danger(path: Path, names: Names) -> Iterator[None]:
    """A file that cannot be read but reaches dangerous globals says so in its error."""
    try:
        yield
    except BudgetExceeded:
        raise  # its message names the limit to raise; a re-worded copy could not be built
    except InputError as exc:
        verdict = verdict_of(names.values())
        if not verdict.malicious:
            raise
        reached = ", ".join(name for name, _ in verdict.malicious[:3])
        reason = str(exc).removeprefix(f"{path}: ")
        raise InputError(f"{path}: malicious pickle (reaches {reached}); {reason}") from None


def read_torch_zip(path: Path, archive: zipfile.ZipFile, budget: ReadBudget) -> Report:
    infos = archive.infolist()
    pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if len(pickles) != 1:
        raise InputError(f"{path}: not a torch archive (no single */data.pkl)")
    prefix = pickles[0].filename[: -len("data.pkl")] + "data/"
    sizes = {
        i.filename[len(prefix) :]: _storage_size(i, budget) for i in infos if i.filename.startswith(prefix)
    }
    names = Names()
    with _naming_danger(path, names):
        obj = walk(read_member(archive, pickles[0], budget, "pickle_bytes"), budget=budget, names=names)
        found = _found(obj, path, budget)

    def storage_bytes(storage: StorageRef) -> int:
        size = sizes.get(storage.key)
        if size is None:
            raise InputError(f"{path}: tensor storage {storage.key!r:.40} is missing from the archive")
        return size

    with _naming_danger(path, names):
        return _report(obj, found, path, storage_bytes, "zip", budget, names)


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
    data: mmap.mmap, pos: int, found: list[Sighting], budget: ReadBudget, names: Names
) -> dict[str, int]:
    """Key -> bytes of each storage written after the pickles: an int64 element count, then the
    elements, whose size the pickle's storage type gives. Only the counts are read; each
    storage must lie inside the file."""
    keys, pos = walk_at(data, pos, budget, names=names)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InputError("the legacy storage list is not a list of keys")
    budget.check("tensors", len(keys), "legacy checkpoint")
    bits = {
        s.tensor.storage.key: dtype_bits(s.tensor.storage.dtype)
        for s in found
        if isinstance(s, Held) and isinstance(s.tensor, TensorRef)
    }
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
    of storage keys, then each storage's element count and raw elements. A pickle whose first
    value is not the magic number is a plain pickle (``pickle.dump``): read as one."""
    names = Names()
    with (
        open_regular(path) as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        _naming_danger(path, names),
    ):
        magic, pos = walk_at(data, 0, budget, names=names)
        if magic != LEGACY_MAGIC and not isinstance(magic, Call):  # a call: torch runs it, then checks
            return _plain_pickle(magic, path, budget, names)
        _, pos = walk_at(data, pos, budget, names=names)  # protocol version
        _, pos = walk_at(data, pos, budget, names=names)  # sys info
        obj, pos = walk_at(data, pos, budget, names=names)
        found = _found(obj, path, budget)
        sizes = _legacy_storages(data, pos, found, budget, names)

    def storage_bytes(storage: StorageRef) -> int:
        if storage.key not in sizes:
            raise InputError(f"{path}: tensor storage {storage.key!r:.40} is missing from the file")
        return sizes[storage.key]

    with _naming_danger(path, names):
        return _report(obj, found, path, storage_bytes, "legacy", budget, names)


def _plain_pickle(obj: object, path: Path, budget: ReadBudget, names: Names) -> Report:
    """What a plain pickle holds, with its verdict. Its NumPy arrays carry their own bytes; a
    torch tensor in one names a storage that only a torch file holds, so it is refused."""
    found = _found(obj, path, budget)

    def storage_bytes(storage: StorageRef) -> int:
        raise InputError(f"{path}: tensor storage {storage.key!r:.40} is not in a plain pickle")

    return _report(obj, found, path, storage_bytes, PLAIN_PICKLE, budget, names)


def looks_like_legacy(head: bytes) -> bool:
    """A pickle: the legacy format starts with one holding the magic number, in the protocol the
    file was saved with (``\\x80\\x02\\x8a\\x0a…`` by default, ``L1195…L`` in protocols 0-1). Any
    pickle is read as a candidate: ``torch.load`` unpickles the first one before it checks the
    number, so a pickle whose first value is a call is a torch file in effect — its verdict
    says what that call would do. Any other is a plain pickle, read as one; without a PROTO
    opcode (protocols 0-1) only the way ``pickle.dump`` starts a dict or list is taken as one."""
    if len(head) >= 2 and head[0] == PROTO_OPCODE:
        return 1 <= head[1] <= 5
    return (head[:1] == b"L" and head[1:3].isdigit()) or head.startswith(UNPREFIXED_STARTS)


__all__ = ["looks_like_legacy", "read_torch_legacy", "read_torch_zip"]
