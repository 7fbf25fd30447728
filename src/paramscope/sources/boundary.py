"""The boundary between a file's bytes and the code that trusts them.

Every value a reader takes from an untrusted file passes through one of these once: files
are opened only if they are regular files, JSON is parsed only after its size and value count
fit the budget, shapes are lists of non-negative integers whose product fits in 63 bits,
names are text of bounded length with every unprintable character made visible. Past this
point, readers and everything downstream (renderers, operations) trust the values.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from paramscope.core.printable import visible
from paramscope.errors import InputError
from paramscope.sources.budget import BudgetExceeded, ReadBudget

MAX_ELEMENTS = 2**63 - 1  # the product of a shape's dimensions must fit in a signed 64-bit integer
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


_READS: ContextVar[set[str] | None] = ContextVar("paramscope_reads", default=None)


@contextlib.contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Inside the block, the set of every file a reader opened or sized: the files that a
    command's outputs must never overwrite (a shard of an index, an external-data file)."""
    token = _READS.set(set())
    try:
        yield _READS.get()
    finally:
        _READS.reset(token)


def _record(path: str | os.PathLike) -> None:
    reads = _READS.get()
    if reads is not None:
        reads.add(os.fspath(path))


def beside(folder: Path, relative: str, what: str) -> Path:
    """``folder / relative``, if it resolves (symbolic links followed) to a path inside the
    folder. An index or a model names companion files; a link among them must not lead
    elsewhere — the size of /etc/shadow would leak through a refusal."""
    target = folder / relative
    try:
        inside = target.resolve().is_relative_to(folder.resolve())
    except (ValueError, UnicodeEncodeError, OSError):  # NUL, lone surrogates, a link loop
        raise InputError(f"{what} {visible(relative)!r:.80} is not a usable file name") from None
    if not inside:
        raise InputError(f"{what} {visible(relative)!r:.80} leads outside the model's folder")
    return target


def _refuse_special(path: str | os.PathLike, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise InputError(f"{path}: {kind}, not a regular file")


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file (after symbolic links).

    Opened non-blocking, so that opening a FIFO cannot wait for a writer, and checked with
    ``fstat`` on the open descriptor, so the file checked is the file read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        _refuse_special(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    _record(path)
    return os.fdopen(fd, "rb")


def require_regular(path: str | os.PathLike) -> int:
    """The size of ``path`` if it is a regular file; for paths handed to a parser by name."""
    try:
        status = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    _refuse_special(path, status.st_mode)
    _record(path)
    return status.st_size


def read_small(path: Path, budget: ReadBudget, what: str) -> bytes:
    """All of a small file (an index, a config), refused before reading if it is too large."""
    with open_regular(path) as handle:
        budget.check("header_bytes", os.fstat(handle.fileno()).st_size, what)
        return handle.read(budget.limits.header_bytes + 1)


def load_json(
    data: bytes,
    budget: ReadBudget,
    what: str,
    object_pairs_hook: Callable[[list[tuple[str, object]]], object] | None = None,
) -> object:
    """A JSON document, parsed only once its bytes and values fit the budget.

    The value count is bounded before parsing by counting the bytes that open a value
    (``,``, ``[``, ``{``): each value after the first in a container follows a comma, the
    first follows its bracket. Strings containing those bytes only make the bound larger.
    So ``[{}, {}, …]`` of 90 MB is refused at once instead of growing to 2 GB.
    """
    budget.check("header_bytes", len(data), what)
    budget.check("json_values", data.count(b",") + data.count(b"[") + data.count(b"{") + 1, what)
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=object_pairs_hook)
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text (byte {exc.start:,})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise BudgetExceeded("depth", budget.limits.depth, what) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InputError(f"{what} is not valid JSON ({str(exc)[:80]})") from None


def shape_of(value: object, budget: ReadBudget, what: str) -> tuple[int, ...]:
    """A tensor shape: at most ``dims`` non-negative integers whose product fits in 63 bits.

    The product is taken over the non-zero dimensions, so ``[0, 2**70]`` is refused too:
    such a tensor is empty, but no writer produces it and a reader that multiplies in another
    order overflows.
    """
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{what}: shape {value!r:.60} is not a list of dimensions")
    budget.check("dims", len(value), what)
    product = 1
    for dim in value:
        if type(dim) is not int or dim < 0:
            raise InputError(f"{what}: bad dimension {dim!r:.40} in its shape")
        product *= dim or 1
        if product > MAX_ELEMENTS:
            raise InputError(f"{what}: a shape of more than 2**63 elements")
    return tuple(value)


def name_of(value: object, budget: ReadBudget, what: str) -> str:
    """A name from a file as printable text of bounded length."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        raise InputError(f"{what}: a name that is not text ({type(value).__name__})")
    budget.check("name_chars", len(value), what)
    return visible(value)


def expect(value: object, kind: type | tuple[type, ...], what: str) -> object:
    """``value`` if it is of ``kind`` (bool is not an int here), else a clean error."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
        return value
    expected = " or ".join(_TYPE_WORDS.get(k, k.__name__) for k in kinds)
    raise InputError(f"{what} should be {expected}, not {_TYPE_WORDS.get(type(value), type(value).__name__)}")


_TYPE_WORDS = {dict: "an object", list: "a list", str: "text", int: "an integer", bool: "true/false"}
