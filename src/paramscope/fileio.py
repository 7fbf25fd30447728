"""Writing outputs safely: atomically, never half a file, never over an input."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from paramscope.errors import InputError


def _default_mode() -> int:
    """The mode any other tool would create a file with: 0o666 less the umask (mkstemp's
    temporary files are 0o600, which would hide reports from the rest of a team)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def refuse_inputs(target: Path, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse ``target`` if it is one of the inputs (the same file by any path or hard link)."""
    if not target.exists():
        return
    for source in inputs:
        try:
            same = os.path.samefile(target, source)
        except OSError:
            continue
        if same:
            raise InputError(
                f"{target}: is the input {os.fspath(source)}; paramscope never writes over its input"
            )


def write_atomic(
    path: str | os.PathLike, data: str | bytes, inputs: Iterable[str | os.PathLike] = ()
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A reader sees the old file or the whole new one, never a partial write, and a failure
    leaves no stray file behind. ``path`` may not be any of ``inputs``.
    """
    target = Path(path)
    refuse_inputs(target, inputs)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"{target}: cannot be written: {folder} {reason}")
    payload = data.encode() if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"{target}: cannot be written ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{target}: cannot be written ({exc.strerror})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
