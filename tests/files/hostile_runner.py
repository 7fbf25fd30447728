"""The harness of the hostile corpus: every file read in a forked, limited child, measured.

    python -m tests.files.hostile_runner FOLDER [--only TEXT]... [--shard I/N]

FOLDER is what ``hostile_corpus.write_corpus`` wrote (a ``manifest.json`` and one folder per
case); without a manifest, every file directly under FOLDER is read. One JSON line per file
goes to stdout: the case as the manifest describes it, then what happened.

Why this shape: the judged limits are those of the process that reads the file (2 s of CPU,
300 MB of memory), so this interpreter imports paramscope and the parsers it uses — never
torch or Keras — and forks a child per file, which reads the file through the path the CLI
takes (``paramscope.inspect``, then the JSON and text renderers) with ``PARAMSCOPE_STRICT=1``.
``os.wait4`` gives the child's CPU time and peak RSS, its own and its sandboxed parsers'. The
child's CPU limit (``RLIMIT_CPU``) sits a little above the judged 2 s and a wall clock kills it
at 20 s, so a hang is measured, not waited out; its address space is capped so that a memory
bomb cannot take the machine down with it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import resource
import select
import signal
import stat
import sys
import time
import traceback
from pathlib import Path

CPU_LIMIT_S = 3  # RLIMIT_CPU: SIGXCPU a little above the judged 2 s
WALL_LIMIT_S = 20.0
ADDRESS_SPACE_GROWTH = 4 * 1024**3  # a blow-up fails here instead of in the machine's memory
MAX_MESSAGE = 4000  # characters of a message sent back (its full length is sent too)
SHOW_TENSORS_UP_TO = 2000  # tensors: also render --show-tensors, which prints every name
FORGED_LINE = "\nINJECTED"  # the corpus's names with a newline go on with INJECTED
PRELOAD = (  # what reading any format imports: imported once here, shared by every child
    "paramscope",
    "paramscope.sources.detect",
    "paramscope.sources.torch_file",
    "paramscope.sources.safetensors_file",
    "paramscope.sources.numpy_file",
    "paramscope.sources.gguf_file",
    "paramscope.sources.onnx_file",
    "paramscope.sources.keras_file",
    "paramscope.sources.keras_shards",
    "paramscope.sources.h5_file",
    "paramscope.render.summary.json",
    "paramscope.render.summary.markdown",
    "paramscope.render.summary.text",
    "numpy.lib.format",
    "h5py",
    "gguf",
    "onnx",
)
FRAMEWORKS = ("torch", "keras", "tensorflow", "jax")


def preload() -> list[str]:
    """Import the readers and their parsers before forking; the import errors, if any."""
    errors = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a reader being rewritten: its files will show the error
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return errors


def address_space() -> int:
    """This process's virtual size (the child's limit is set above it)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def unsafe_characters(text: str) -> list[str]:
    """What a terminal must not receive: every non-printable character but the newline."""
    return sorted({repr(char) for char in text if char != "\n" and not char.isprintable()})[:20]


def _where(exc: BaseException) -> str:
    """The innermost frame inside paramscope, and the innermost of all, of an exception."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/paramscope/" in f.filename]
    spots = [f for f in (ours[-1] if ours else None, frames[-1] if frames else None) if f is not None]
    return " <- ".join(dict.fromkeys(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(spots)))


def _report_facts(report) -> dict:
    """The report rendered as the CLI renders it (JSON, text, Markdown), its totals, warnings
    and pickle verdict, and whatever in its text a terminal must not receive."""
    from paramscope.render import render

    json.loads(render("summary", report, "json"))
    text = render("summary", report, "text") + render("summary", report, "md")
    if sum(1 for _ in report.tensors()) <= SHOW_TENSORS_UP_TO:
        text += render("summary", report, "text", show_tensors=True)
    text.encode("utf-8")  # what a terminal or a file receives: lone surrogates fail here
    groups = [g for g in (report.optimizer, report.metrics, report.constants) if g is not None]
    totals = {role: t.as_dict() for role, t in report.totals.items()}
    totals.update({f"group:{g.name}": g.totals.as_dict() for g in groups})
    return {
        "outcome": "report",
        "totals": totals,
        "warnings": [w[:MAX_MESSAGE] for w in report.warnings],
        "pickle": report.pickle.as_dict() if report.pickle is not None else None,
        "unsafe_output": unsafe_characters(text),
        "forged_line": FORGED_LINE in text,
    }


def _read(path: Path) -> dict:
    """What reading ``path`` as the CLI does gives; runs in the child."""
    import paramscope
    from paramscope.errors import InputError

    try:
        return _report_facts(paramscope.inspect(path))
    except InputError as exc:
        message = str(exc)
        return {"outcome": "refused", "message": message[:MAX_MESSAGE], "message_length": len(message)}
    except MemoryError:
        return {"outcome": "memory", "message": "MemoryError"}
    except BaseException as exc:  # the findings: anything else escaping a reader or renderer
        try:
            message = str(exc)
        except Exception as inner:  # e.g. the repr of a 100,000-digit integer
            message = f"<str() failed: {type(inner).__name__}>"
        return {
            "outcome": "error",
            "error_type": type(exc).__name__,
            "message": message[:MAX_MESSAGE],
            "message_length": len(message),
            "where": _where(exc),
        }


def _child(path: Path, pipe: int) -> None:
    os.setpgid(0, 0)  # the parent kills the whole group: sandboxed parsers included
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_S, hard))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (address_space() + ADDRESS_SPACE_GROWTH, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    facts = _read(path)
    with os.fdopen(pipe, "w", encoding="utf-8") as out:
        out.write(json.dumps(facts))


def read_in_child(path: Path, wall_limit: float = WALL_LIMIT_S) -> dict:
    """Fork, read ``path`` in the child, and measure it: outcome, CPU seconds, peak RSS."""
    receive, send = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        status = 0
        try:
            os.close(receive)
            _child(path, send)
        except BaseException:
            status = 70
        finally:
            os._exit(status)
    os.close(send)
    data, timed_out = _collect(receive, start + wall_limit)
    if timed_out:
        _kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    _kill_group(pid)  # whatever the child left behind
    facts = _outcome(data, status, timed_out, wall_limit)
    facts["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    facts["wall_s"] = round(time.monotonic() - start, 3)
    facts["rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return facts


def _collect(pipe: int, deadline: float) -> tuple[bytes, bool]:
    """Everything the child writes, until it closes the pipe or the deadline passes."""
    chunks = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), True
            ready, _, _ = select.select([pipe], [], [], left)
            if ready:
                chunk = os.read(pipe, 1 << 16)
                if not chunk:
                    return b"".join(chunks), False
                chunks.append(chunk)
    finally:
        os.close(pipe)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _outcome(data: bytes, status: int, timed_out: bool, wall_limit: float) -> dict:
    if timed_out:
        return {"outcome": "timeout", "message": f"killed after {wall_limit:.0f} s of wall-clock time"}
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        if number == signal.SIGXCPU:
            return {"outcome": "cpu", "message": f"killed by {name} after {CPU_LIMIT_S} s of CPU"}
        return {"outcome": "crashed", "message": f"killed by {name}"}
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        code = os.WEXITSTATUS(status)
        return {"outcome": "crashed", "message": f"exited {code} without a result"}


def fingerprint(folder: Path) -> dict[str, str]:
    """Every regular file under ``folder`` (links not followed): its size, time and digest."""
    prints = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            status = path.lstat()
            if not path.is_symlink() and path.is_file():
                prints[os.fsencode(path).hex()] = f"{status.st_size}:{status.st_mtime_ns}:{_digest(path)}"
    return prints


def _digest(path: Path) -> str:
    """sha256 of the file, or of its first and last MiB when it is large (sparse 64 GB files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= 64 << 20:
            digest.update(handle.read())
        else:
            digest.update(handle.read(1 << 20))
            handle.seek(size - (1 << 20))
            digest.update(handle.read())
    return digest.hexdigest()


def disk_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder``: what the case's files hold."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if not path.is_symlink() and path.is_file():
                total += path.lstat().st_size
    return total


def make_specials(folder: Path, specials: dict[str, str]) -> list[Path]:
    """FIFOs and sockets the case names, made now (a copied corpus could hang on them)."""
    made = []
    for name, kind in specials.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mknod(path, 0o600 | (stat.S_IFIFO if kind == "fifo" else stat.S_IFSOCK))
        made.append(path)
    return made


def run_case(folder: Path, case: dict, marker: Path | None) -> dict:
    """Read one case's target in a child; the case, the outcome and what it did to its folder."""
    case_folder = folder / case["name"]
    specials = make_specials(case_folder, case.get("specials", {}))
    before = fingerprint(case_folder)
    ran_before = marker is not None and marker.exists()
    try:
        facts = read_in_child(case_folder / case["target"])
    finally:
        for path in specials:
            path.unlink(missing_ok=True)
    facts["disk_bytes"] = disk_bytes(case_folder)
    facts["modified"] = fingerprint(case_folder) != before
    facts["executed"] = marker is not None and marker.exists() and not ran_before
    facts["path"] = str(case_folder / case["target"])
    return {**{k: v for k, v in case.items() if k not in ("links", "sparse")}, **facts}


def load_cases(folder: Path) -> tuple[list[dict], Path | None]:
    manifest = folder / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        return data["cases"], Path(data["marker"])
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return [{"name": "", "kind": "", "format": "", "expect": "", "target": p.name} for p in files], None


def _shard(text: str) -> tuple[int, int]:
    """`I/N`: this run reads every Nth case from the Ith, so that N runs share the cores."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"expected I/N with I < N, got {text!r}")
    return int(index), int(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--only", action="append", default=[], help="cases whose name contains TEXT")
    parser.add_argument(
        "--shard", type=_shard, default=(0, 1), metavar="I/N", help="every Nth case from the Ith (0-based)"
    )
    args = parser.parse_args(argv)
    os.environ["PARAMSCOPE_STRICT"] = "1"  # a reader bug propagates instead of becoming an InputError
    for error in preload():
        print(f"hostile_runner: preload failed: {error}", file=sys.stderr)
    leaked = [name for name in FRAMEWORKS if name in sys.modules]
    if leaked:
        parser.error(f"{', '.join(leaked)} imported: the memory measured would not be the reader's")
    cases, marker = load_cases(args.folder)
    if args.only:
        cases = [c for c in cases if any(text in c["name"] for text in args.only)]
    index, count = args.shard
    for case in cases[index::count]:
        print(json.dumps(run_case(args.folder, case, marker)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
