"""`scan` as JSON: the folder as the source, then per file its own ``source`` and counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paramscope.core.kinds import Kind
from paramscope.core.printable import visible
from paramscope.ops.scan import ScanLine
from paramscope.render.envelope import envelope

if TYPE_CHECKING:
    from paramscope.ops.scan import FolderScan

FOLDER_KIND = Kind.FOLDER.value  # the scan's own source: a folder, not a model


def _file_dict(line: ScanLine) -> dict:
    """A file's entry; ``source.kind`` is null when it could not be read (``error``) or was
    recognised and not read (``skipped``). ``pickle``: its verdict, with at most 50 names."""
    source = {
        "kind": line.kind,
        "framework_version": line.framework_version,
        "backend": line.backend,
        "path": line.shown_path,
    }
    return {
        "source": source,
        "tensors": line.tensors,
        "params": line.params,
        "bytes": line.bytes,
        "trainable": line.trainable,
        "frozen": line.frozen,
        "state": line.state,
        "unknown": line.unknown,
        "error": line.error,
        "skipped": line.skipped,
        "pickle": line.pickle.as_dict() if line.pickle is not None else None,
    }


def document(scanned: FolderScan) -> dict:
    folder = {
        "kind": FOLDER_KIND,
        "framework_version": None,
        "backend": None,
        "path": visible(scanned.folder),
    }
    return envelope("scan", folder, files=[_file_dict(line) for line in scanned.lines])
