"""Operating-system limits: the second wall behind the read budget.

The budget bounds the work a reader does on purpose; these bound what it does by mistake.
A reader bug that the budget does not see (a native loop, an allocation nobody charged)
then ends in a ``MemoryError`` or a signal instead of swapping the machine to a halt.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator


def address_space() -> int | None:
    """This process's current virtual size in bytes, or None where /proc cannot tell."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def lower(limit: int, value: int, hard: bool = True) -> None:
    """Lower an OS limit (and its hard limit too, unless ``hard=False``, so that the code
    running under it cannot raise it back)."""
    soft_now, hard_now = resource.getrlimit(limit)
    if hard_now != resource.RLIM_INFINITY:
        value = min(value, hard_now)
    if not hard and soft_now != resource.RLIM_INFINITY:
        value = min(value, soft_now)
    resource.setrlimit(limit, (value, value if hard else hard_now))


def start_method() -> str:
    """How to start a child process: fork (fast) only while this process has one thread —
    forking beside a native thread pool (torch, jax) can deadlock the child — else spawn."""
    return "fork" if _threads() == 1 else "spawn"


def _threads() -> int:
    """Threads of this process as the kernel counts them (native pools included); 0 if unknown."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0  # unknown: act as if other threads may run


@contextlib.contextmanager
def memory_growth_limit(extra: int) -> Iterator[None]:
    """Within the block, this process may grow its address space by at most ``extra`` bytes.

    Only where this is the process's one thread (the command line reading a file): another
    thread — a framework's pool in a notebook — must never meet a limit meant for a reader.
    """
    size = address_space()
    if size is None or _threads() != 1:
        yield
        return
    before = resource.getrlimit(resource.RLIMIT_AS)
    lower(resource.RLIMIT_AS, size + extra, hard=False)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, before)
