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


def run_sandboxed(function, *args, label: str, timeout: float = CPU_SECONDS + 5):
    """``function(*args)`` in a limited child process; its result, or an InputError.

    Forks when this process runs no other thread (fast, and safe then); otherwise spawns.
    """
    method = "fork" if threading.active_count() == 1 else "spawn"
    context = multiprocessing.get_context(method)
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, function, args), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise InputError(f"{label}: parsing took longer than {timeout:.0f} s")
        status, payload = receiver.recv()
    except EOFError:
        raise InputError(f"{label}: the HDF5 parser crashed on this file") from None
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if status == "error":
        raise InputError(f"{label}: {payload}")
    return payload
