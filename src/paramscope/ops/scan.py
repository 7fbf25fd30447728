"""scan: one line for every checkpoint under a folder, read in parallel, whatever the files do.

A folder downloaded from anywhere may hold files made to hang a reader, exhaust its memory or
crash a native parser, and file names made to forge output lines. So each file is read in a
worker process of a small pool of our own (the stdlib pools cannot kill one task): a worker
runs under an address-space limit, the parent gives each file a wall-clock limit, and a worker
that overruns, crashes or dies is killed with every process it started and replaced; its file
gets an error line and the scan goes on. Workers answer with plain data (JSON), which the
parent validates. Lines come back in folder order, whatever order the workers finish in.

Symbolic links to folders are not followed. Every other entry goes to the reader, which
checks FIFOs, sockets, devices and dangling links with ``stat`` and never opens them. Files
that are no checkpoint format are skipped, unless they are named like one: the reader refuses
an empty or truncated ``model.pt``, a FIFO ``y.pt`` or a dangling link ``x.pt`` as damaged
(sources/detect.py knows the names), so it gets its error line and never vanishes from the
listing.

A pickled file's line carries its verdict (data-only, needs-code, malicious) and the names
behind it, at most ``MAX_VERDICT_NAMES`` of each kind: a line is a summary, ``paramscope
summary FILE`` lists them all. ``failing`` says which lines reach a ``--fail-on`` level.

This is the mechanism; the API supplies the policy: the reader (``sources.detect.LimitedRead``,
the active read limits travelling with it into each worker) and the per-file time and memory,
which default to those limits there. Here, a ``timeout`` or ``max_memory`` of None is no bound.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from pathlib import Path

from paramscope.core.oslimits import address_space, lower, start_method
from paramscope.core.printable import one_line, visible
from paramscope.core.report import PickleVerdict, Report, Verdict
from paramscope.core.unread import OutOfMemory, RecognisedNotRead, UnrecognisedFormat
from paramscope.errors import InputError

SKIPPED_DIRS = {".git", "__pycache__", ".venv", "node_modules"}
COUNTS = ("tensors", "params", "bytes", "trainable", "frozen", "state", "unknown")
SOURCE_FACTS = ("framework_version", "backend")  # of the file's Source, beside its kind
MAX_ANSWER_BYTES = 64 * 1024  # a worker's answer for one file is a few hundred bytes
MAX_VERDICT_NAMES = 50  # names of each kind a worker sends: 2 × 50 escaped names fit the answer
MAX_NAME_CHARS = 160  # what pickle_verdict keeps of a name
VERDICT_KEYS = {"verdict", "needs_code", "malicious", "refused_protocols"}
# --fail-on LEVEL: the verdicts that fail a scan at that level
FAIL_ON = {
    "none": frozenset(),
    "malicious": frozenset({Verdict.MALICIOUS}),
    "needs-code": frozenset({Verdict.MALICIOUS, Verdict.NEEDS_CODE}),
}
MAX_ERROR_CHARS = 1000  # of an error a worker sends; the parent shows at most one 300-character line
MEMORY_EXCEEDED = "exceeded the memory limit"
READY = b""  # a worker's first message: started, the clock of its first file may start
# What a new worker may take to say READY, beyond a file's own time: a spawned worker imports
# its parent's main module first (torch, under a test runner: seconds on a loaded machine).
START_SECONDS = 60.0

# One file's Report, raising InputError (core.unread's refusals told apart). It must pickle: a
# spawned worker receives it. The API passes sources.detect.LimitedRead.
Read = Callable[[Path], Report]


@dataclass(frozen=True)
class ScanLine:
    """One file's line. ``path`` is the file's own path (undecodable bytes as surrogate
    escapes, so that it can be opened); ``kind`` and ``error`` are printable already."""

    path: str
    kind: str | None
    tensors: int
    params: int
    bytes: int
    trainable: int
    frozen: int
    state: int
    unknown: int
    error: str | None = None
    skipped: str | None = None  # a format recognised but not read (CoreML): listed, not an error
    pickle: PickleVerdict | None = None  # a pickled file's verdict; names printable already
    framework_version: str | None = None  # what the file says wrote it, as summary shows it
    backend: str | None = None

    @property
    def shown_path(self) -> str:
        """The path as it may be printed: no escape sequence, newline or lone surrogate."""
        return visible(self.path)

    def as_dict(self) -> dict:
        """Plain data for a JSON line, every string printable."""
        verdict = self.pickle.as_dict() if self.pickle is not None else None
        return {**asdict(self), "path": self.shown_path, "pickle": verdict}


def failing(lines: list[ScanLine], fail_on: str) -> list[ScanLine]:
    """The lines whose verdict reaches ``fail_on`` (a key of ``FAIL_ON``)."""
    levels = FAIL_ON[fail_on]
    return [line for line in lines if line.pickle is not None and line.pickle.verdict in levels]


@dataclass(frozen=True)
class FolderScan:
    """What ``scan`` found: the folder, and a line per checkpoint under it in folder order."""

    folder: str
    lines: list[ScanLine]

    @property
    def errors(self) -> list[ScanLine]:
        """The checkpoints that could not be read (each line says why)."""
        return [line for line in self.lines if line.error]

    def failing(self, fail_on: str) -> list[ScanLine]:
        """The pickled files whose verdict reaches ``fail_on`` (none, malicious or needs-code)."""
        return failing(self.lines, fail_on)


def _error_line(path: str, message: str) -> ScanLine:
    return ScanLine(path, None, 0, 0, 0, 0, 0, 0, 0, one_line(message))


def _entries(folder: Path) -> list[str]:
    """Every entry under ``folder`` that is not a folder, in folder order: regular files, and
    FIFOs, sockets, devices and dangling links, which the reader refuses by ``stat`` without
    opening them (a FIFO would block), so one named like a checkpoint gets its error line.

    ``os.walk`` lists symbolic links to folders without entering them, so links cannot make
    cycles.
    """
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        files.extend(os.path.join(root, n) for n in sorted(names))
    return files


# ---------------------------------------------------------------------------- the worker side


def _without_path(exc: InputError, path: str) -> str:
    """The reader's message without the file name it starts with: the reader names the file as
    ``Path`` spells it (``./x.pt`` becomes ``x.pt``), and the line shows the path already."""
    return str(exc).removeprefix(f"{Path(path)}: ")[:MAX_ERROR_CHARS]


def _error_answer(exc: InputError, path: str) -> dict:
    return {"error": _without_path(exc, path)}


def _summary(path: str, read: Read) -> dict | None:
    """A worker's answer for one file: its counts, its error, or None when it is no checkpoint."""
    try:
        report = read(Path(path))
    except RecognisedNotRead as exc:
        return {"skipped": _without_path(exc, path)}
    except UnrecognisedFormat:  # no checkpoint; one named like a checkpoint is refused as damaged
        return None
    except OutOfMemory:
        return {"error": MEMORY_EXCEEDED}
    except InputError as exc:
        return _error_answer(exc, path)
    except MemoryError:  # what read_file lets through under PARAMSCOPE_STRICT
        return {"error": MEMORY_EXCEEDED}
    totals = report.totals
    return {
        "kind": report.source.kind,
        "framework_version": report.source.framework_version,
        "backend": report.source.backend,
        "pickle": _verdict_answer(report.pickle),
        "tensors": totals["all"].tensors,
        "params": totals["all"].params,
        "bytes": totals["all"].bytes,
        "trainable": totals["trainable"].params,
        "frozen": totals["frozen"].params,
        "state": totals["state"].params,
        "unknown": totals["unknown"].params,
    }


def _verdict_answer(verdict: PickleVerdict | None) -> dict | None:
    """The verdict as plain data, with at most ``MAX_VERDICT_NAMES`` names of each kind."""
    if verdict is None:
        return None
    answer = verdict.as_dict()
    answer["needs_code"] = answer["needs_code"][:MAX_VERDICT_NAMES]
    answer["malicious"] = answer["malicious"][:MAX_VERDICT_NAMES]
    return answer


def _load_numpy() -> None:
    """Import numpy, the native library readers load, before a worker's size is measured.

    Its import maps ~100 MB of address space, more on machines with many cores (OpenBLAS
    reserves memory per thread): charged to the memory limit, it would fail every NumPy file
    where the limit is tight. Imported by the parent before it forks, it loads once for all.
    """
    import numpy  # noqa: F401


def _next_path(connection: Connection, parent: int) -> str | None:
    """The next file to read, or None once the parent is done or gone.

    A parent killed outright does not close every copy of its ends of the pipes (forked
    siblings hold some), so an idle worker also watches for having been orphaned.
    """
    while not connection.poll(1.0):
        if os.getppid() != parent:
            return None
    try:
        return os.fsdecode(connection.recv_bytes())
    except EOFError:
        return None


def _work(connection: Connection, parent: int, read: Read, memory: int | None) -> None:
    """A worker's life: read the files the parent sends, one at a time, answer each in JSON."""
    os.setpgrp()  # its own process group, so that killing the group kills the parsers it started
    _load_numpy()
    # Only the soft limit: the HDF5 sandbox a reader starts sets its own, which it could not
    # do under a lower hard limit. Nothing from a file runs, so nothing can raise it back.
    size = address_space()
    if size is not None and memory is not None:
        lower(resource.RLIMIT_AS, size + memory, hard=False)
    connection.send_bytes(READY)
    while (path := _next_path(connection, parent)) is not None:
        connection.send_bytes(json.dumps(_summary(path, read)).encode())


# ---------------------------------------------------------------------------- the parent side


def _parse_answer(path: str, answer: bytes) -> ScanLine | None:
    """The line a worker's answer stands for; ValueError when it is not one of ours."""
    fields = json.loads(answer)
    if fields is None:
        return None
    if not isinstance(fields, dict):
        raise ValueError("not an object")
    if fields.keys() == {"error"} and isinstance(fields["error"], str):
        return _error_line(path, fields["error"])
    if fields.keys() == {"skipped"} and isinstance(fields["skipped"], str):
        return ScanLine(path, None, 0, 0, 0, 0, 0, 0, 0, skipped=one_line(fields["skipped"]))
    if not {"kind", "pickle", *COUNTS} <= fields.keys() <= {"kind", "pickle", *COUNTS, *SOURCE_FACTS}:
        raise ValueError("unexpected fields")
    if not isinstance(fields["kind"], str):
        raise ValueError("a kind that is not text")
    counts = [fields[name] for name in COUNTS]
    if not all(type(count) is int and count >= 0 for count in counts):
        raise ValueError("counts are not non-negative integers")
    facts = {name: _optional_text(fields.get(name)) for name in SOURCE_FACTS}
    return ScanLine(path, visible(fields["kind"]), *counts, pickle=_parse_verdict(fields["pickle"]), **facts)


def _optional_text(value: object) -> str | None:
    """A worker's version or backend: None, or text made printable and short."""
    if value is not None and not isinstance(value, str):
        raise ValueError("a source fact that is not text")
    return None if value is None else visible(value)[:MAX_NAME_CHARS]


def _names(value: object) -> tuple[str, ...]:
    """A worker's list of names, printable and short; ValueError when it is not one."""
    if not isinstance(value, list) or len(value) > MAX_VERDICT_NAMES:
        raise ValueError("not a list of names")
    if not all(isinstance(name, str) for name in value):
        raise ValueError("a name that is not text")
    return tuple(visible(name)[:MAX_NAME_CHARS] for name in value)


def _parse_verdict(answer: object) -> PickleVerdict | None:
    """A worker's verdict as the record it stands for; ValueError when it is not one."""
    if answer is None:
        return None
    if (
        not isinstance(answer, dict)
        or answer.keys() != VERDICT_KEYS
        or not isinstance(answer["verdict"], str)
    ):
        raise ValueError("not a verdict")
    malicious = answer["malicious"]
    if not isinstance(malicious, list) or not all(
        isinstance(entry, dict) and entry.keys() == {"global", "does"} for entry in malicious
    ):
        raise ValueError("not a list of dangerous names")
    dangerous = zip(
        _names([entry["global"] for entry in malicious]),
        _names([entry["does"] for entry in malicious]),
        strict=True,
    )
    return PickleVerdict(
        Verdict(answer["verdict"]),
        _names(answer["needs_code"]),
        tuple(dangerous),
        _protocols(answer["refused_protocols"]),
    )


def _protocols(value: object) -> tuple[int, ...]:
    """A worker's pickle protocols (PROTO's operand is one byte); ValueError when it is not one."""
    if not isinstance(value, list) or not all(type(p) is int and 0 <= p <= 255 for p in value):
        raise ValueError("not a list of pickle protocols")
    return tuple(value)


def _crash_message(exitcode: int | None) -> str:
    if exitcode is None or exitcode >= 0:
        return f"the reader crashed (exit code {exitcode})"
    try:
        return f"the reader crashed ({signal.Signals(-exitcode).name})"
    except ValueError:
        return f"the reader crashed (signal {-exitcode})"


class _Worker:
    """One worker process, the pipe to it, and the file it is reading."""

    def __init__(self, context: BaseContext, read: Read, memory: int | None) -> None:
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_work, args=(child_end, os.getpid(), read, memory))
        self.process.start()
        child_end.close()
        self.index = -1
        self.deadline = 0.0
        self.started = False  # it said READY

    def give(self, index: int, path: str, seconds: float) -> None:
        """Send the worker a file; it must answer within ``seconds`` of saying READY (a new
        worker gets ``START_SECONDS`` more to say it)."""
        start = 0.0 if self.started else START_SECONDS
        self.index, self.deadline = index, time.monotonic() + start + seconds
        with contextlib.suppress(OSError):  # a worker that died is found by its sentinel
            self.connection.send_bytes(os.fsencode(path))

    def answer(self) -> bytes | None:
        """The worker's answer, or None when its end of the pipe closed or it sent too much."""
        try:
            return self.connection.recv_bytes(MAX_ANSWER_BYTES)
        except (EOFError, OSError):
            return None

    def stop(self) -> None:
        """Kill the worker and every process it started, and reap it; once.

        The group is killed before the worker is reaped: until then its pid, which is the
        group's id, cannot be reused by an unrelated process.
        """
        if self.connection.closed:
            return
        self.connection.close()
        with contextlib.suppress(ProcessLookupError):  # not yet in its own group, or all gone
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.kill()
        self.process.join()


class _Pool:
    """Workers reading ``paths``, one file each at a time; ``run`` returns a line per path."""

    def __init__(self, paths: list[str], read: Read, size: int, seconds: float, memory: int | None) -> None:
        self._paths, self._read, self._size = paths, read, size
        self._seconds, self._memory = seconds, memory
        # fork is fast, and safe while this process runs no other thread
        self._context = multiprocessing.get_context(start_method())
        self._todo = deque(range(len(paths)))
        self._lines: list[ScanLine | None] = [None] * len(paths)
        self._running: list[_Worker] = []

    def run(self) -> list[ScanLine | None]:
        if self._context.get_start_method() == "fork":
            _load_numpy()
        try:
            for _ in range(min(self._size, len(self._paths))):
                self._feed(self._start())
            while self._running:
                self._wait()
        finally:
            for worker in self._running:
                worker.stop()
        return self._lines

    def _start(self) -> _Worker:
        worker = _Worker(self._context, self._read, self._memory)
        self._running.append(worker)
        return worker

    def _feed(self, worker: _Worker) -> None:
        """Give ``worker`` the next file; stop it when none is left."""
        if self._todo:
            index = self._todo.popleft()
            worker.give(index, self._paths[index], self._seconds)
        else:
            self._running.remove(worker)
            worker.stop()

    def _wait(self) -> None:
        """Wait for an answer, a death or a deadline, and settle every worker it concerns."""
        timeout = min(worker.deadline for worker in self._running) - time.monotonic()
        watched = [o for worker in self._running for o in (worker.connection, worker.process.sentinel)]
        ready = set(wait(watched, timeout=max(0.0, timeout) if math.isfinite(timeout) else None))
        now = time.monotonic()
        for worker in list(self._running):
            self._settle(worker, ready, now)

    def _settle(self, worker: _Worker, ready: set, now: float) -> None:
        answer = worker.answer() if worker.connection in ready else None
        if answer == READY:  # a spawned worker may take seconds to start: not the file's time
            worker.started = True
            worker.deadline = now + self._seconds
        elif answer is not None:
            try:
                self._lines[worker.index] = _parse_answer(self._paths[worker.index], answer)
            except ValueError:
                self._fail(worker, "the reader sent an invalid answer")
            else:
                self._feed(worker)
        elif worker.connection in ready or worker.process.sentinel in ready:
            self._fail(worker, None)
        elif now >= worker.deadline:
            self._fail(worker, f"exceeded {self._seconds:g} s")

    def _fail(self, worker: _Worker, message: str | None) -> None:
        """Kill ``worker``, give its file an error line (None: it crashed), replace it."""
        self._running.remove(worker)
        worker.stop()
        message = message or _crash_message(worker.process.exitcode)
        self._lines[worker.index] = _error_line(self._paths[worker.index], message)
        if self._todo:
            self._feed(self._start())


def scan(
    folder: str | Path,
    read: Read,
    workers: int | None = None,
    *,
    timeout: float | None = None,
    max_memory: int | None = None,
) -> list[ScanLine]:
    """The line of every checkpoint under ``folder``, in folder order, each file read by ``read``.

    ``workers`` processes (default: one per CPU) read the files; each file may take
    ``timeout`` seconds and each worker may grow by ``max_memory`` bytes (None: no bound).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{visible(str(folder))}: not a folder")
    if any(value is not None and value <= 0 for value in (timeout, max_memory)):
        raise InputError("the timeout and the memory limit must be positive")
    paths = _entries(folder)
    if not paths:
        return []
    seconds = math.inf if timeout is None else timeout
    pool = _Pool(paths, read, workers or os.cpu_count() or 1, seconds, max_memory)
    return [line for line in pool.run() if line is not None]
