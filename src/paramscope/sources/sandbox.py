"""Run a native parser in a child process that is limited, watched and not trusted.

libhdf5 has a steady stream of parser CVEs (heap overflows on crafted files). It runs in a
child under OS limits taken from the read budget: address space (its size once the parser's
library is loaded, plus ``child_memory``), CPU seconds (``seconds``) and the size of any file
it writes (``decompressed_bytes``, for a member it must spill to disk). A crash, an endless
loop or a memory blow-up there becomes one clean :class:`InputError` here.

libhdf5 can also loop forever inside one call on a crafted file, holding no lock the OS
could break and well within any memory limit. The child beats at every ``budget.tick()`` (a
link visited, an attribute read, a chunk decompressed); a child that burns ``STALL_CPU``
seconds of CPU without a beat is stuck in native code and is killed, long before the
wall-clock deadline.

The child is treated as compromised: a libhdf5 bug could put anything on the channel. So the
channel carries JSON bytes, never a pickle (unpickling the reply would run the child's code
in this process). The parent reads them from the pipe until the child closes it, within the
wall clock and a size cap (``Connection.recv_bytes`` would wait forever for a message the
child began and never finished), parses them within the budget (``boundary.load_json``), and
the caller validates the contents into typed records.
"""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing
import os
import resource
import select
import signal
from collections.abc import Callable

from paramscope.core.oslimits import address_space, lower, start_method
from paramscope.core.printable import one_line
from paramscope.errors import InputError
from paramscope.sources.boundary import expect, load_json
from paramscope.sources.budget import BudgetExceeded, Limits, ReadBudget

MAX_ERROR = 200  # characters of a refusal the child reports
STALL_CPU = 1.0  # seconds of CPU a child may spend between two beats
POLL_SECONDS = 0.1  # how often the parent looks at a silent child's beats
DONE = 2**64 - 1  # the beat count a child sets once its function has returned
ChildFunction = Callable[..., object]  # called as function(*args, budget); returns JSON-able data


class _BeatingBudget(ReadBudget):
    """The child's budget: every ``tick()`` also tells the parent the parser moves on."""

    __slots__ = ("_beats",)

    def __init__(self, limits: Limits, beats) -> None:
        super().__init__(limits)
        self._beats = beats

    def tick(self) -> None:
        self._beats.value += 1
        super().tick()


def _confine(limits: Limits) -> None:
    """The child's limits, soft and hard, so that the parser cannot raise them back."""
    size = address_space()
    if size is not None:
        lower(resource.RLIMIT_AS, size + limits.child_memory)
    lower(resource.RLIMIT_CPU, max(1, math.ceil(limits.seconds)))
    lower(resource.RLIMIT_FSIZE, limits.decompressed_bytes)


def _reply(function: ChildFunction, args: tuple, limits: Limits, preload: tuple[str, ...], beats) -> dict:
    try:
        for module in preload:  # trusted library code, loaded before the limits count
            importlib.import_module(module)
        _confine(limits)
        budget = _BeatingBudget(limits, beats)
        budget.tick()  # the first beat: from here on, the parent watches for stalls
        return {"ok": function(*args, budget)}
    except InputError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": str(BudgetExceeded("child_memory", limits.child_memory, "parsing this file"))}
    except Exception as exc:  # any parser failure on hostile bytes is a bad file
        return {"error": f"damaged or unreadable file ({type(exc).__name__}: {str(exc)[:100]})"}


def _encoded(reply: dict, limits: Limits) -> bytes:
    try:
        data = json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
    except MemoryError:
        data = b""
    if not data or len(data) > limits.header_bytes:
        refusal = BudgetExceeded("header_bytes", limits.header_bytes, "the structure of this file")
        data = json.dumps({"error": str(refusal)}).encode()
    return data


def _child(
    connection, function: ChildFunction, args: tuple, limits: Limits, preload: tuple[str, ...], beats
) -> None:
    try:
        reply = _reply(function, args, limits, preload, beats)
        beats.value = DONE  # parsing is over: encoding a large reply is no stall
        data = memoryview(_encoded(reply, limits))
        while data:
            data = data[os.write(connection.fileno(), data) :]
    finally:
        connection.close()  # the end of the reply


def _cpu_seconds(pid: int) -> float | None:
    """A process's CPU time so far, or None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


class _Watch:
    """A silent child is still parsing while its beats move, or while it spends no CPU."""

    def __init__(self, pid: int, beats, parser: str) -> None:
        self._pid, self._beats, self._parser = pid, beats, parser
        self._last, self._cpu_at_last = 0, 0.0

    def check(self) -> None:
        beats = self._beats.value
        cpu = _cpu_seconds(self._pid)
        if beats == DONE or cpu is None:
            return
        if beats != self._last:
            self._last, self._cpu_at_last = beats, cpu
        elif beats > 0 and cpu - self._cpu_at_last > STALL_CPU:
            raise InputError(
                f"the {self._parser} parser made no progress in {STALL_CPU:.0f} s of CPU (an endless loop?)"
            )


def _read_reply(fd: int, budget: ReadBudget, watch: _Watch) -> bytes:
    """Everything the child writes before it closes the pipe, within the deadline and the cap,
    unless it stalls first."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks, size = [], 0
    while True:
        left = budget.seconds_left()
        if left <= 0:
            raise BudgetExceeded("seconds", budget.limits.seconds)
        if not poller.poll(min(left, POLL_SECONDS) * 1000):
            watch.check()
            continue
        chunk = os.read(fd, 1024 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > budget.limits.header_bytes:
            raise BudgetExceeded("header_bytes", budget.limits.header_bytes, "the parser's reply")
        chunks.append(chunk)


def parse_reply(data: bytes, budget: ReadBudget, label: str) -> object:
    """The child's result from its reply bytes, or the InputError it reported.

    A reply is ``{"ok": value}`` or ``{"error": "message"}``; anything else is refused. The
    message is shown on one line with its unprintable characters escaped: the child may lie.
    """
    reply = expect(
        load_json(data, budget, f"{label}: the parser's reply"), dict, f"{label}: the parser's reply"
    )
    if set(reply) == {"ok"}:
        return reply["ok"]
    if set(reply) == {"error"} and isinstance(reply["error"], str):
        raise InputError(f"{label}: {one_line(reply['error'], MAX_ERROR)}")
    raise InputError(f"{label}: the parser's reply is neither a result nor an error")


class Sandboxed:
    """``function(*args, budget)`` running in a limited child process, started at once so that
    the caller can work while it runs; ``result()`` waits for it. Use it as a context manager:
    leaving the block kills a child that is still running.

    ``preload`` names modules the child imports before its limits apply (the parser's own
    library). Forks when this process runs no other thread (fast, and safe then); otherwise
    spawns.
    """

    def __init__(
        self,
        function: ChildFunction,
        *args: object,
        label: str,
        budget: ReadBudget,
        parser: str = "HDF5",
        preload: tuple[str, ...] = (),
    ) -> None:
        self._label, self._budget, self._parser = label, budget, parser
        limits = budget.limits.replace(seconds=max(budget.seconds_left(), 1.0))
        method = start_method()
        context = multiprocessing.get_context(method)
        self._receiver, sender = context.Pipe(duplex=False)
        self._beats = context.RawValue("Q", 0)
        self._process = context.Process(
            target=_child, args=(sender, function, args, limits, preload, self._beats), daemon=True
        )
        self._process.start()
        sender.close()

    def __enter__(self) -> Sandboxed:
        return self

    def __exit__(self, *_exc) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._receiver.close()

    def _died(self) -> InputError:
        """Why the child ended without a reply, from the signal that ended it."""
        self._process.join()
        code = self._process.exitcode
        if code == -signal.SIGXCPU:
            return BudgetExceeded("seconds", self._budget.limits.seconds)
        try:
            cause = f" ({signal.Signals(-code).name})" if code is not None and code < 0 else ""
        except ValueError:
            cause = f" (signal {-code})"
        return InputError(f"the {self._parser} parser crashed on this file{cause}")

    def result(self) -> object:
        """The child's result as plain JSON data, or an InputError naming the file."""
        try:
            data = _read_reply(
                self._receiver.fileno(), self._budget, _Watch(self._process.pid, self._beats, self._parser)
            )
            if not data:
                raise self._died()
        except InputError as exc:
            exc.args = (f"{self._label}: {exc}",)
            raise
        finally:
            self._stop()
        return parse_reply(data, self._budget, self._label)
