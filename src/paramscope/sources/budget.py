"""The read budget: every limit a file reader enforces, charged in one place.

A checkpoint is untrusted input. Each read of a file gets one :class:`ReadBudget`, and every
reader charges it for the work the file makes us do — bytes read or decompressed, JSON values
and pickle opcodes, nesting depth, tensors and repeated references, name lengths, wall-clock
time. A breach is a clean refusal that names the limit and how to raise it, never a hang or a
blow-up. The limits sit far above the largest real checkpoints (a 1e12-parameter sharded
index, a 256k-token GGUF vocabulary, a 1,000-layer .keras, a 400B-parameter torch pickle) and
far below what would cost a hostile file more than a second or a few hundred MB.

Readers charge as they go (``charge``) or test a declared size before they allocate
(``check``); per-item limits that do not accumulate (dimensions of one tensor, characters of
one name) are tested with ``check`` too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from paramscope.errors import InputError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one file read may cost. Change with ``--limit NAME=N`` or ``limits={...}``."""

    header_bytes: int = 100 * MiB  # one JSON header, index, config or metadata file
    json_values: int = 2_000_000  # values one JSON document may create
    pickle_bytes: int = 256 * MiB  # one pickle stream (data.pkl of a 400B-param model is ~50 MB)
    # A single pickle needs ~35 opcodes and ~20 objects per tensor: these pass 50,000 tensors
    # (the largest single-file checkpoints hold a few thousand) at ~1 µs per opcode.
    pickle_opcodes: int = 2_000_000
    pickle_objects: int = 1_500_000  # values a pickle creates (about 64 bytes each at most; ~40 a tensor)
    depth: int = 256  # nesting: containers in a pickle or JSON document, nodes in a name
    # Tensors in one file, index or folder: the largest real indexes (DeepSeek-V3 with its FP8
    # scales) hold about 92,000; each costs about 2 KB and 20-40 µs from file to JSON.
    tensors: int = 100_000
    references: int = 10_000  # extra references to tensors already listed (aliases; tied weights)
    dims: int = 64  # dimensions of one tensor
    name_chars: int = 4096  # characters of one name
    tree_chars: int = 64 * MiB  # characters of all node paths built from a file's names
    zip_members: int = 500_000
    zip_ratio: int = 200  # uncompressed / compressed size of a member we decompress
    decompressed_bytes: int = 1024 * MiB  # all the bytes decompressed from archive members
    shards: int = 100_000
    metadata_entries: int = 1_000_000  # GGUF metadata keys and array elements walked
    seconds: float = 60.0  # wall-clock time of one file read
    child_memory: int = 384 * MiB  # address space a reader or sandboxed parser may add to its own

    def replace(self, **changes: float) -> Limits:
        """These limits with some changed; unknown names are a clean error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InputError(f"unknown limit {unknown[0]!r}; known limits: {', '.join(sorted(known))}")
        typed = {name: type(getattr(self, name))(value) for name, value in changes.items()}
        return dataclasses.replace(self, **typed)


DEFAULT_LIMITS = Limits()
_ACTIVE: ContextVar[Limits] = ContextVar("paramscope_limits", default=DEFAULT_LIMITS)


def active_limits() -> Limits:
    """The limits file reads use now: the defaults, or those set by :func:`limits`."""
    return _ACTIVE.get()


@contextlib.contextmanager
def limits(**changes: float) -> Iterator[Limits]:
    """Raise (or lower) read limits inside a ``with`` block, like ``decimal.localcontext``::

    with paramscope.limits(pickle_opcodes=50_000_000):
        report = paramscope.inspect("huge.pt")
    """
    token = _ACTIVE.set(_ACTIVE.get().replace(**changes))
    try:
        yield _ACTIVE.get()
    finally:
        _ACTIVE.reset(token)


# What each limit counts, for the refusal message.
WORDS = {
    "header_bytes": "bytes of JSON",
    "json_values": "JSON values",
    "pickle_bytes": "bytes of pickle",
    "pickle_opcodes": "pickle opcodes",
    "pickle_objects": "objects created by a pickle",
    "depth": "levels of nesting",
    "tensors": "tensors",
    "references": "repeated tensor references",
    "dims": "dimensions",
    "name_chars": "characters in a name",
    "tree_chars": "characters of node paths",
    "zip_members": "archive members",
    "zip_ratio": "× compression ratio",
    "decompressed_bytes": "decompressed bytes",
    "shards": "shards",
    "metadata_entries": "metadata entries",
    "seconds": "seconds",
    "child_memory": "bytes of parser memory",
}


class BudgetExceeded(InputError):
    """A file asked for more work than its read budget allows."""

    def __init__(self, limit: str, bound: float, what: str = "") -> None:
        self.limit = limit
        subject = f"{what} " if what else ""
        if limit == "seconds":
            message = f"reading took longer than {bound:,.0f} s (raise with --limit seconds=N)"
        else:
            message = f"{subject}exceeds {int(bound):,} {WORDS[limit]} (raise with --limit {limit}=N)"
        super().__init__(message)


class ReadBudget:
    """The work one file read has left. Not thread-safe: one budget per read."""

    __slots__ = ("_deadline", "_used", "limits")

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else active_limits()
        self._used: dict[str, int] = {}
        self._deadline = time.monotonic() + self.limits.seconds

    def charge(self, limit: str, amount: int = 1, what: str = "") -> None:
        """Spend ``amount`` of an accumulating limit; refuse once the total passes it."""
        used = self._used.get(limit, 0) + amount
        self._used[limit] = used
        if used > getattr(self.limits, limit):
            raise self._exceeded(limit, what)

    def check(self, limit: str, value: int, what: str = "") -> None:
        """Refuse one value (a declared size, a dimension count) above a limit."""
        if value > getattr(self.limits, limit):
            raise self._exceeded(limit, what)

    def used(self, limit: str) -> int:
        return self._used.get(limit, 0)

    def tick(self) -> None:
        """Refuse once the read has run past its wall-clock time; long loops call this."""
        if time.monotonic() > self._deadline:
            raise self._exceeded("seconds", "")

    def seconds_left(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def _exceeded(self, limit: str, what: str) -> BudgetExceeded:
        return BudgetExceeded(limit, getattr(self.limits, limit), what)
