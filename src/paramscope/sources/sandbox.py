"""Run a parser in a child process with memory and CPU limits.

libhdf5 has a steady stream of parser CVEs (heap overflows on crafted files). A crash, an
endless loop or a memory blow-up in the child becomes a clean error here, and cannot take
down or hijack the process that holds the user's session. The child returns plain data.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading

from paramscope.errors import InputError

MEMORY_LIMIT = 4 * 1024**3  # bytes of address space for the child
CPU_SECONDS = 60


def _child(connection, function, args) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
        connection.send(("ok", function(*args)))
    except InputError as exc:
        connection.send(("error", str(exc)))
    except MemoryError:
        connection.send(("error", "parsing needed more memory than paramscope allows"))
    except Exception as exc:  # any parser failure on hostile bytes is a bad file
        connection.send(("error", f"damaged or unreadable file ({type(exc).__name__}: {str(exc)[:100]})"))
    finally:
        connection.close()


class Sandboxed:
    """``function(*args)`` running in a limited child process, started at once so that the
    caller can work while it runs; ``result()`` waits for it. Use it as a context manager:
    leaving the block kills a child that is still running.

    Forks when this process runs no other thread (fast, and safe then); otherwise spawns.
    """

    def __init__(self, function, *args, label: str, timeout: float = CPU_SECONDS + 5) -> None:
        self._label, self._timeout = label, timeout
        method = "fork" if threading.active_count() == 1 else "spawn"
        context = multiprocessing.get_context(method)
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(sender, function, args), daemon=True)
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

    def result(self):
        """The child's result, or an InputError."""
        try:
            if not self._receiver.poll(self._timeout):
                raise InputError(f"{self._label}: parsing took longer than {self._timeout:.0f} s")
            status, payload = self._receiver.recv()
        except EOFError:
            raise InputError(f"{self._label}: the HDF5 parser crashed on this file") from None
        finally:
            self._stop()
        if status == "error":
            raise InputError(f"{self._label}: {payload}")
        return payload


def run_sandboxed(function, *args, label: str, timeout: float = CPU_SECONDS + 5):
    """``function(*args)`` in a limited child process; its result, or an InputError."""
    with Sandboxed(function, *args, label=label, timeout=timeout) as call:
        return call.result()
