"""freeze --out: a freeze plan as a file others can load, and a torch plan applied.

Writing is edge work (a Keras archive, Keras's own ``save``, torch's setters), so it lives
here with the readers, not with the planning in ``ops/freeze.py``; it takes the plan as plain
data (:class:`Plan`).

* legacy ``.h5``: refused. Keras's legacy loader matches weights trainable-first, in an order
  tied to the flags saved with them; rewriting only the flags would make the file unloadable.
* Keras 3 model or ``.keras`` file: a ``.keras`` archive whose config.json carries each
  layer's planned ``trainable`` flag (Keras 3 restores per-layer flags on load). A live model
  is saved by Keras to a temporary file first; then only config.json is rewritten, the other
  members streamed across a chunk at a time through the archive caps (a weights member can
  be gigabytes, or a decompression bomb). The live model and the input file are never changed.
* torch: a JSON plan — ``requires_grad`` per parameter and the BatchNorm modules to keep in
  ``eval()`` — that ``paramscope.freeze(model, plan=...)`` applies.

Written atomically; an existing file is never overwritten without ``force``, and the input
file — by its own path, a symbolic or a hard link — never, whatever ``force`` says.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from paramscope.core.kinds import Freezing
from paramscope.core.printable import visible
from paramscope.core.report import Report, Role
from paramscope.core.tree import join_path
from paramscope.errors import InputError
from paramscope.fileio import refuse_inputs, write_atomic
from paramscope.sources.archive import copy_member, open_zip, read_member, zip_errors
from paramscope.sources.boundary import expect, load_json, open_regular
from paramscope.sources.budget import ReadBudget, active_limits

PLAN_VERSION = 1
CONFIG = "config.json"


class Plan(Protocol):
    """What writing needs of a freeze plan (``ops.freeze.FreezePlan``)."""

    report: Report  # the model or file planned on
    roles_after: dict[str, Role]  # tensor path -> role once the plan is applied
    layer_flags: dict[str, bool] | None  # Keras: each layer's trainable flag once applied


def _set_flags(model: dict, flags: dict[str, bool]) -> None:
    """Set each planned flag on its layer's config; layers are found by their names' path,
    escaped as the report escapes them."""
    stack = [(model, "")]
    while stack:
        layer, path = stack.pop()
        config = layer.get("config")
        if not isinstance(config, dict):
            continue
        if path in flags:
            config["trainable"] = flags[path]
        children = config.get("layers") if isinstance(config.get("layers"), list) else []
        for child in children:
            child_config = child.get("config") if isinstance(child, dict) else None
            name = child_config.get("name") if isinstance(child_config, dict) else None
            if isinstance(name, str):
                stack.append((child, join_path(path, visible(name))))


def _flagged_config(data: bytes, flags: dict[str, bool], budget: ReadBudget) -> bytes:
    config = expect(load_json(data, budget, CONFIG), dict, CONFIG)
    _set_flags(config, flags)
    return json.dumps(config).encode()


def _copy_budget(source_size: int) -> ReadBudget:
    """Copying a stored member writes bytes the input already holds, so the cap on what
    members may expand to is at least the input's size; compressed members keep the ratio cap."""
    limits = active_limits()
    return ReadBudget(limits.replace(decompressed_bytes=max(limits.decompressed_bytes, source_size)))


def rewrite_keras_archive(source: Path, flags: dict[str, bool], target: BinaryIO) -> None:
    """A copy of a .keras archive into ``target`` with the flags set in config.json; the other
    members streamed verbatim, never whole in memory."""
    with open_regular(source) as handle:
        budget = _copy_budget(os.fstat(handle.fileno()).st_size)
        with (
            zip_errors(str(source)),
            open_zip(handle, budget, str(source)) as archive,
            zipfile.ZipFile(target, "w") as rewritten,
        ):
            for info in archive.infolist():
                budget.tick()
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.compress_type, copy.external_attr = info.compress_type, info.external_attr
                copy.file_size = info.file_size  # zipfile decides on zip64 from it
                if info.filename == CONFIG:
                    data = read_member(archive, info, budget, "header_bytes")
                    rewritten.writestr(copy, _flagged_config(data, flags, budget))
                else:
                    with rewritten.open(copy, "w") as member:
                        copy_member(archive, info, budget, "decompressed_bytes", member)


@contextlib.contextmanager
def _atomic_output(target: Path) -> Iterator[BinaryIO]:
    """A new file beside ``target``, renamed over it once complete (``fileio.write_atomic``
    for output streamed rather than held in memory). Created with mode 0o666 less the umask."""
    folder = target.parent if str(target.parent) else Path(".")
    temporary = folder / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise InputError(f"{target}: cannot be written ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_keras(out: Path, source: Path, flags: dict[str, bool]) -> None:
    with _atomic_output(out) as target:
        rewrite_keras_archive(source, flags, target)


def torch_plan(plan: Plan) -> dict:
    requires_grad = {  # each parameter once: a tied alias is its owner's parameter
        tensor.path.replace("/", "."): plan.roles_after[tensor.path] is Role.TRAINABLE
        for tensor in plan.report.tensors()
        if tensor.shared_with is None and plan.roles_after[tensor.path] in (Role.TRAINABLE, Role.FROZEN)
    }
    frozen_bn = [
        node.path.replace("/", ".")
        for node in plan.report.nodes()
        if node.type.startswith("BatchNorm")
        and node.tensors
        and all(
            not requires_grad.get(t.path.replace("/", "."), True)
            for t in node.tensors
            if t.role in (Role.TRAINABLE, Role.FROZEN)
        )
    ]
    return {"schema_version": PLAN_VERSION, "requires_grad": requires_grad, "eval": frozen_bn}


def write_plan(plan: Plan, out: str | Path, force: bool = False) -> Path:
    out = Path(out)
    inputs = [plan.report.source.path] if plan.report.source.path else []
    refuse_inputs(out, inputs)  # before --force is even considered
    if out.exists() and not force:
        raise InputError(f"{out}: already exists (use --force to overwrite)")
    kind = plan.report.source.kind
    if kind.freezing is Freezing.PER_PARAMETER:
        write_atomic(out, json.dumps(torch_plan(plan), indent=2) + "\n", inputs=inputs)
        return out
    if kind.freezing is Freezing.PER_PARENT and kind.is_file:
        raise InputError(
            "a legacy .h5 lists each layer's weights trainable-first, in an order Keras's loader ties to "
            "the flags saved with it: changing flags in the file would make it unloadable. Load the model "
            "and save it as .keras, then freeze that"
        )
    if kind.freezing is not Freezing.PER_VARIABLE or plan.layer_flags is None:
        raise InputError("--out writes Keras 3 models, .keras files and torch plans")
    if out.suffix != ".keras":
        raise InputError(f"{out}: a Keras model is written as a .keras file")
    if kind.is_file:
        _write_keras(out, Path(plan.report.source.path), plan.layer_flags)
        return out
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "model.keras"
        plan.report.root.origin.save(saved)
        _write_keras(out, saved, plan.layer_flags)
    return out


def apply_torch_plan(model, data: dict) -> None:
    """Set requires_grad and eval() from a torch plan written by ``write_plan``."""
    if data.get("schema_version") != PLAN_VERSION or not isinstance(data.get("requires_grad"), dict):
        raise InputError("not a paramscope torch freeze plan")
    try:
        for name, flag in data["requires_grad"].items():
            model.get_parameter(name).requires_grad_(bool(flag))
        for name in data.get("eval", []):
            model.get_submodule(name).eval()
    except AttributeError as exc:
        raise InputError(f"the plan does not fit this model ({exc})") from None
