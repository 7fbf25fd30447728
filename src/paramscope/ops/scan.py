"""scan: one line for every checkpoint under a folder, read in parallel.

Files that are no checkpoint format are skipped; a damaged or hostile checkpoint gets a line
with its error instead of stopping the scan. Each file is read in a worker process, so one
bad file cannot take the others down, and all cores are used.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from paramscope.errors import InputError

SKIPPED_DIRS = {".git", "__pycache__", ".venv", "node_modules"}


@dataclass(frozen=True)
class ScanLine:
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

    def as_dict(self) -> dict:
        return asdict(self)


def _candidates(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            yield Path(root) / name


def summarise(path_text: str) -> ScanLine | None:
    """The scan line of one file, or None when it is no checkpoint."""
    from paramscope.sources.detect import UnrecognisedFormat, read_file

    path = Path(path_text)
    try:
        report = read_file(path)
    except UnrecognisedFormat:
        return None
    except InputError as exc:
        return ScanLine(path_text, None, 0, 0, 0, 0, 0, 0, 0, str(exc).removeprefix(f"{path}: "))
    totals = report.totals
    return ScanLine(
        path_text,
        report.source.kind,
        totals["all"].tensors,
        totals["all"].params,
        totals["all"].bytes,
        totals["trainable"].params,
        totals["frozen"].params,
        totals["state"].params,
        totals["unknown"].params,
    )


def scan(folder: str | Path, workers: int | None = None) -> list[ScanLine]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    paths = [str(p) for p in _candidates(folder)]
    if not paths:
        return []
    method = "fork" if threading.active_count() == 1 else "spawn"
    with ProcessPoolExecutor(
        max_workers=workers or os.cpu_count(), mp_context=multiprocessing.get_context(method)
    ) as pool:
        lines = list(pool.map(summarise, paths, chunksize=8))
    return [line for line in lines if line is not None]
