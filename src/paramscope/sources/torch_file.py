"""torch ``.pt`` / ``.pth`` / ``.bin`` files, zip (torch >= 1.6) and legacy, without torch.

The pickle inside is read by our restricted walker (pickle_walker.py): tensors become
references to storages that we size-check against the archive but never read. Checkpoints
that nest a state dict (``{'model': ..., 'optimizer': ..., 'epoch': ...}``, Lightning's
``state_dict``) are unwrapped; optimizer moments are reported apart from the model.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from paramscope.core.dtypes import dtype_bits
from paramscope.core.report import Report, Source
from paramscope.errors import InputError
from paramscope.sources.flat import FlatTensor, flat_report
from paramscope.sources.limits import MAX_PICKLE_BYTES, MAX_TENSORS, MAX_ZIP_MEMBERS, MAX_ZIP_RATIO
from paramscope.sources.pickle_walker import TensorRef, walk

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
OPTIMIZER_KEYS = ("optimizer", "optimizers", "optimizer_states", "optimizer_state_dict", "optim")


def _tensors(value, path: tuple, found: list, in_optimizer: bool) -> None:
    """Every TensorRef under ``value`` with its key path; whether it sits in optimizer state."""
    if isinstance(value, TensorRef):
        found.append((path, value, in_optimizer))
        if len(found) > MAX_TENSORS:
            raise InputError("too many tensors")
    elif isinstance(value, dict):
        optimizer_like = in_optimizer or ("state" in value and "param_groups" in value)
        for key, item in value.items():
            is_optimizer = optimizer_like or (isinstance(key, str) and key.lower() in OPTIMIZER_KEYS)
            _tensors(item, (*path, str(key)), found, is_optimizer)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _tensors(item, (*path, str(i)), found, in_optimizer)


def _strip_container(paths: list[tuple]) -> list[tuple]:
    """Drop a leading key shared by every model tensor (`state_dict.`, `model.`)."""
    while paths and all(len(p) > 1 for p in paths) and len({p[0] for p in paths}) == 1:
        paths = [p[1:] for p in paths]
    return paths


def _flat(refs: list[tuple[tuple, TensorRef]], check_storage) -> list[FlatTensor]:
    paths = _strip_container([path for path, _ in refs])
    entries = []
    for path, (_, ref) in zip(paths, refs, strict=True):
        check_storage(ref)
        identity = (ref.storage.key, ref.offset, ref.shape, ref.stride)
        requires_grad = ref.requires_grad if ref.parameter else None
        entries.append(FlatTensor(".".join(path), ref.shape, ref.storage.dtype, identity, requires_grad))
    return entries


def _report(obj, path: Path, check_storage, variant: str) -> Report:
    found: list = []
    _tensors(obj, (), found, False)
    if not found:
        raise InputError(f"{path}: holds no tensors (not a state dict or checkpoint)")
    model = [(p, r) for p, r, opt in found if not opt]
    optimizer = [(p, r) for p, r, opt in found if opt]
    return flat_report(
        _flat(model, check_storage),
        Source(kind="torch_file", path=str(path), framework_version=variant),
        "A torch file",
        path.name,
        optimizer=_flat(optimizer, check_storage) if optimizer else None,
    )


def read_torch_zip(path: Path) -> Report:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise InputError(f"{path}: too many archive members")
        pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
        if any(i.filename.endswith("/constants.pkl") for i in infos) and any(
            "/code/" in i.filename for i in infos
        ):
            raise InputError(
                f"{path}: a TorchScript archive; paramscope reads state dicts and checkpoints "
                "(save model.state_dict() with torch.save)"
            )
        if len(pickles) != 1:
            raise InputError(f"{path}: not a torch archive (no single */data.pkl)")
        info = pickles[0]
        prefix = info.filename[: -len("data.pkl")]
        if info.file_size > MAX_PICKLE_BYTES:
            raise InputError(f"{path}: data.pkl is larger than paramscope reads ({info.file_size:,} bytes)")
        if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_ZIP_RATIO:
            raise InputError(f"{path}: data.pkl expands suspiciously (zip bomb?)")
        sizes = {
            i.filename[len(prefix) + len("data/") :]: i.file_size
            for i in infos
            if i.filename.startswith(prefix + "data/")
        }
        obj = walk(archive.read(info))

    def check_storage(ref: TensorRef) -> None:
        size = sizes.get(ref.storage.key)
        if size is None:
            raise InputError(f"{path}: tensor storage {ref.storage.key!r} is missing from the archive")
        _check_view(path, ref, size)

    return _report(obj, path, check_storage, "zip")


def _check_view(path: Path, ref: TensorRef, storage_bytes: int | None) -> None:
    bits = dtype_bits(ref.storage.dtype)
    if bits is None or storage_bytes is None:
        return
    last = ref.offset + sum((d - 1) * s for d, s in zip(ref.shape, ref.stride, strict=False) if d > 0)
    needed = 0 if 0 in ref.shape else (last + 1) * bits // 8
    if needed > storage_bytes:
        raise InputError(f"{path}: a tensor of shape {ref.shape} reaches past its storage")


def read_torch_legacy(path: Path) -> Report:
    """The pre-1.6 format: magic, protocol and sys-info pickles, then the object's pickle."""
    with open(path, "rb") as handle:
        magic = walk(handle)
        if magic != LEGACY_MAGIC:
            raise InputError(f"{path}: not a legacy torch file (bad magic number)")
        walk(handle)  # protocol version
        walk(handle)  # sys info
        start = handle.tell()
        obj = walk(handle)
        if handle.tell() - start > MAX_PICKLE_BYTES:
            raise InputError(f"{path}: pickle larger than paramscope reads")
    return _report(obj, path, lambda ref: _check_view(path, ref, None), "legacy")


def looks_like_legacy(head: bytes) -> bool:
    """Protocol-2 pickle of the 10-byte legacy magic number (`\\x80\\x02\\x8a\\x0a...`)."""
    return head[:4] == b"\x80\x02\x8a\x0a" and int.from_bytes(head[4:14], "little") == LEGACY_MAGIC


__all__ = ["looks_like_legacy", "read_torch_legacy", "read_torch_zip"]
