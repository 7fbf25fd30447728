"""freeze --out: the plan as a file others can load.

* legacy ``.h5``: refused. Keras's legacy loader matches weights trainable-first, in an order
  tied to the flags saved with them; rewriting only the flags would make the file unloadable.
* Keras 3 model or ``.keras`` file: a ``.keras`` archive whose config.json carries each
  layer's planned ``trainable`` flag (Keras 3 restores per-layer flags on load). A live model
  is saved by Keras to a temporary file first; then only config.json is rewritten, the
  weights copied byte for byte. The live model and the input file are never changed.
* torch: a JSON plan — ``requires_grad`` per parameter and the BatchNorm modules to keep in
  ``eval()`` — that ``paramscope.freeze(model, plan=...)`` applies.

Written atomically; an existing file is never overwritten without ``force``.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

from paramscope.core.report import Role
from paramscope.errors import InputError
from paramscope.fileio import write_atomic
from paramscope.ops.freeze import FreezePlan

PLAN_VERSION = 1


def _set_flags(layer: dict, path: str, flags: dict[str, bool]) -> None:
    config = layer.get("config")
    if not isinstance(config, dict):
        return
    if path in flags:
        config["trainable"] = flags[path]
    children = config.get("layers") if isinstance(config.get("layers"), list) else []
    for child in children:
        if isinstance(child, dict) and isinstance(child.get("config"), dict):
            name = child["config"].get("name", "")
            _set_flags(child, f"{path}/{name}" if path else name, flags)


def rewrite_keras_archive(source: Path, flags: dict[str, bool]) -> bytes:
    """A copy of a .keras archive with the flags set in config.json; other members verbatim."""
    output = io.BytesIO()
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(output, "w") as rewritten:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                _set_flags(config, "", flags)
                data = json.dumps(config).encode()
            rewritten.writestr(info, data)
    return output.getvalue()


def torch_plan(plan: FreezePlan) -> dict:
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
            if t.role.value in ("trainable", "frozen")
        )
    ]
    return {"schema_version": PLAN_VERSION, "requires_grad": requires_grad, "eval": frozen_bn}


def write_plan(plan: FreezePlan, out: str | Path, force: bool = False) -> Path:
    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out}: already exists (use --force to overwrite)")
    kind = plan.report.source.kind
    if kind == "torch":
        write_atomic(out, json.dumps(torch_plan(plan), indent=2) + "\n")
        return out
    if kind == "h5":
        raise InputError(
            "a legacy .h5 lists each layer's weights trainable-first, in an order Keras's loader ties to "
            "the flags saved with it: changing flags in the file would make it unloadable. Load the model "
            "and save it as .keras, then freeze that"
        )
    if kind not in ("keras", "keras_file") or plan.layer_flags is None:
        raise InputError("--out writes Keras 3 models, .keras files and torch plans")
    if out.suffix != ".keras":
        raise InputError(f"{out}: a Keras model is written as a .keras file")
    if kind == "keras_file":
        write_atomic(out, rewrite_keras_archive(Path(plan.report.source.path), plan.layer_flags))
        return out
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "model.keras"
        plan.report.root.origin.save(saved)
        write_atomic(out, rewrite_keras_archive(saved, plan.layer_flags))
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
