"""Zip archives (torch, .keras, .npz) opened once, within the budget, members streamed.

``zipfile`` builds a ``ZipInfo`` for every central-directory entry before anyone can count
them, and decompresses whatever a member declares. So before it parses anything we read the
end-of-central-directory record ourselves (zip64 too) and refuse an absurd entry count or
directory size; member names are checked once (no absolute or parent paths, no duplicates);
members are decompressed only through :func:`read_member`, which refuses a declared size
over the caller's limit or a compression ratio over ``zip_ratio`` and charges every byte to
``decompressed_bytes``. Every exception zipfile and zlib raise on damaged bytes becomes one
clean :class:`InputError` here, at the boundary.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from paramscope.errors import InputError
from paramscope.sources.budget import BudgetExceeded, ReadBudget

EOCD = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_EOCD = b"PK\x06\x06"
MAX_COMMENT = 0xFFFF
CHUNK = 1024 * 1024

# What zipfile and zlib raise on damaged or unsupported archives.
ZIP_DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    ValueError,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
    OSError,
    KeyError,
    IndexError,
    OverflowError,
)


@contextlib.contextmanager
def zip_errors(what: str) -> Iterator[None]:
    """Damage found by zipfile/zlib inside the block as one clean error about ``what``."""
    try:
        yield
    except InputError:
        raise
    except ZIP_DAMAGE as exc:
        raise InputError(f"{what}: damaged zip archive ({type(exc).__name__}: {str(exc)[:80]})") from None


def _directory_size(handle: BinaryIO) -> tuple[int, int]:
    """(entries, central directory bytes) from the end records, before zipfile reads them."""
    size = os.fstat(handle.fileno()).st_size
    tail_length = min(size, 22 + MAX_COMMENT + 20)
    handle.seek(size - tail_length)
    tail = handle.read(tail_length)
    at = tail.rfind(EOCD)
    if at < 0 or len(tail) - at < 22:
        raise InputError("damaged zip archive (no end of central directory)")
    entries, directory = struct.unpack("<xxxxxxxxxxHI", tail[at : at + 16])
    locator = at - 20
    if locator >= 0 and tail[locator : locator + 4] == ZIP64_LOCATOR:
        (record_offset,) = struct.unpack("<Q", tail[locator + 8 : locator + 16])
        if record_offset + 56 > size:
            raise InputError("damaged zip archive (zip64 record past the end)")
        handle.seek(record_offset)
        record = handle.read(56)
        if record[:4] != ZIP64_EOCD:
            raise InputError("damaged zip archive (bad zip64 record)")
        entries, directory = struct.unpack("<QQ", record[32:48])
    return entries, directory


def open_zip(handle: BinaryIO, budget: ReadBudget, what: str) -> zipfile.ZipFile:
    """The archive on an open file, its member count and names checked before use."""
    with zip_errors(what):
        entries, directory = _directory_size(handle)
        budget.check("zip_members", entries, what)
        budget.check("header_bytes", directory, f"{what}'s zip directory")
        handle.seek(0)
        archive = zipfile.ZipFile(handle)
    names = archive.namelist()
    budget.check("zip_members", len(names), what)
    for name in names:
        if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
            archive.close()
            raise InputError(f"{what}: archive member {name!r:.80} has an absolute or parent path")
    if len(names) != len(set(names)):
        archive.close()
        raise InputError(f"{what}: archive has duplicate member names")
    size = os.fstat(handle.fileno()).st_size
    for info in archive.infolist():
        if _impossible(info, size):
            archive.close()
            raise InputError(
                f"{what}: member {info.filename!r:.80} declares more bytes than the archive holds"
            )
    return archive


def _impossible(info: zipfile.ZipInfo, archive_size: int) -> bool:
    """Whether a member's declared sizes cannot be true: its compressed bytes past the end of
    the archive, or a stored (uncompressed) member whose two sizes differ. Readers that take a
    member's size as evidence (torch storages) can then trust it."""
    if info.header_offset + info.compress_size > archive_size:
        return True
    return info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size


def _checked_info(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, budget: ReadBudget, limit: str):
    info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
    label = f"member {info.filename!r:.80}"
    budget.check(limit, info.file_size, label)
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > budget.limits.zip_ratio * max(
        info.compress_size, 1
    ):
        raise BudgetExceeded("zip_ratio", budget.limits.zip_ratio, f"{label} (a zip bomb?)")
    return info


def open_member(
    archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, budget: ReadBudget, limit: str
) -> BinaryIO:
    """A member's stream, its declared size within ``limit`` and its ratio within bounds.

    zipfile stops a member's stream at its declared size, so the checks bound what it yields;
    the bytes are charged to ``decompressed_bytes`` as the caller reads them through this.
    """
    info = _checked_info(archive, member, budget, limit)
    if info.compress_type != zipfile.ZIP_STORED:
        budget.charge("decompressed_bytes", info.file_size, f"member {info.filename!r:.80}")
    return archive.open(info)


def _name(member: str | zipfile.ZipInfo) -> str:
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member
    return f"member {name!r:.80}"


def peek_member(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo) -> BinaryIO:
    """A member's stream for reading a bounded prefix (a .npy header): zipfile decompresses
    lazily, so no size cap applies — the caller reads at most a header's worth."""
    return archive.open(member)


def read_member(
    archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, budget: ReadBudget, limit: str
) -> bytes:
    """A whole member in memory, within ``limit`` bytes (``pickle_bytes``, ``header_bytes``…)."""
    with zip_errors(_name(member)), open_member(archive, member, budget, limit) as stream:
        return stream.read()


def copy_member(
    archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, budget: ReadBudget, limit: str, target: BinaryIO
) -> None:
    """Stream a member into ``target`` a chunk at a time, never whole in memory."""
    with zip_errors(_name(member)), open_member(archive, member, budget, limit) as stream:
        while chunk := stream.read(CHUNK):
            target.write(chunk)
            budget.tick()
