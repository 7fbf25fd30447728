"""TorchScript archives (``torch.jit.save`` of a scripted, traced or frozen module), read
without torch and without running any of the code they carry.

What torch writes (torch/csrc/jit/serialization/export_module.cpp, ``ScriptModuleSerializer::
serialize``), all under one folder named after the archive:

- ``data.pkl``: the module object. Each module is a ``__torch__.<qualifier>.<Class>`` record
  (NEWOBJ, then BUILD with its attribute dict): parameters, buffers and plain tensor attributes
  as tensors whose storages are ``data/<key>``, submodules as nested records, ``training`` as a
  bool. A class that defines ``__getstate__`` pickles whatever that returns instead.
- ``constants.pkl``: a tuple of the tensors the code names ``CONSTANTS.c0``, ``c1``… (storages
  in ``constants/``). A frozen model's weights live there, not in ``data.pkl``.
- ``code/<qualifier as a path>.py``: the TorchScript source of the classes, a ``.debug_pkl`` of
  source ranges beside each; ``traced_inputs.pkl`` (a traced module's example inputs, storages
  not written), ``version`` or ``.data/version``, ``extra/`` (the user's extra files).

Parameters and buffers cannot be told apart from the pickles: both are plain
``_rebuild_tensor_v2`` records, a buffer and a ``requires_grad=False`` parameter alike, and a
tensor attribute that is neither looks the same. ``torch.jit.load`` learns it from the class
source: python_print.cpp writes ``__parameters__ = ["a", "b", ]`` and ``__buffers__ = [...]``
as the first lines of every module class, and import_source.cpp reads those list literals into
the class type that ``named_parameters()`` and ``named_buffers()`` consult. So we read those
lines as text, with an anchored pattern that accepts only what python_print writes (a
``class Name(Module):`` line, then the two lists of double-quoted names). Nothing else in
``code/`` is interpreted and no ``.debug_pkl`` is opened (torch reads those lazily, for error
messages, with an unpickler that resolves no Python global); a class whose source does not
match is a clean error, as it would be for torch.

The verdict (``report.pickle``): ``torch.load(weights_only=True)`` refuses every TorchScript
archive, and ``torch.jit.load`` compiles the archive's classes and runs their code (a class's
``__setstate__`` while it loads), so the archive needs code: its ``__torch__`` classes, mangling
removed, are listed as that code. They are not Python imports — torch's C++ unpickler looks them
up in the archive's own ``code/`` — and its list helpers (``torch.jit._pickle``) are torch's own,
so those are left out. Every other global goes to verdict_of as in any torch file: a pickle that
reaches ``os.system`` is malicious here too.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from paramscope.core.kinds import Kind
from paramscope.core.printable import visible
from paramscope.core.report import Node, PickleVerdict, Report, Role, Source, TensorGroup
from paramscope.core.tree import TreeBuilder, UniqueNames, join_path
from paramscope.errors import InputError
from paramscope.sources.archive import read_member
from paramscope.sources.boundary import name_of
from paramscope.sources.budget import BudgetExceeded, ReadBudget
from paramscope.sources.pickle_verdict import verdict_of
from paramscope.sources.pickle_walker import (
    REBUILD_PARAMETER,
    REBUILD_TENSOR,
    TORCH_DTYPES,
    Call,
    Global,
    Names,
    TensorRef,
    tensors_in,
    walk,
)
from paramscope.sources.torch_file import _check_view, _storage_size

TORCHSCRIPT = "__torch__"
NATIVE_CLASSES = "__torch__.torch.classes."  # C++ classes registered with torch: no source in code/
MANGLING = re.compile(r"\.___torch_mangle_\d+")  # what import_source.cpp strips, too
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_LIST = r'((?:"[^"\\\n]*", )*)'  # python_print: each name quoted, followed by ", "
MODULE_CLASS = re.compile(
    rf"^class ({_NAME})\(Module\):\n  __parameters__ = \[{_LIST}\]\n(?:  __buffers__ = \[{_LIST}\]\n)?",
    re.MULTILINE,
)
ANY_CLASS = re.compile(rf"^class ({_NAME})(\(Module\))?", re.MULTILINE)
QUOTED = re.compile(r'"([^"\\\n]*)"')
PLAIN_RECORDS = frozenset(  # what the walker interprets, or records that hold no tensor
    {
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("collections", "OrderedDict"),
        ("builtins", "complex"),
        ("torch", "device"),
        ("torch", "per_tensor_affine"),  # quantization schemes
        ("torch", "per_channel_affine"),
        ("torch", "per_channel_affine_float_qparams"),
        *REBUILD_PARAMETER,
    }
)
SHOWN = 3  # names quoted in a warning


@dataclass(frozen=True)
class ModuleClass:
    """What ``torch.jit.load`` learns from a module class's source: which attributes are what."""

    parameters: frozenset[str]
    buffers: frozenset[str]


Classes = dict[Global, ModuleClass | None]  # None: a TorchScript class that is not a module


def _is_torchscript(target: Global) -> bool:
    return target.module == TORCHSCRIPT or target.module.startswith(TORCHSCRIPT + ".")


def _demangled(target: Global) -> str:
    """``__torch__.torch.nn.modules.linear.___torch_mangle_3.Linear`` → ``torch.nn.modules.linear.Linear``."""
    module = MANGLING.sub("", target.module)[len(TORCHSCRIPT) + 1 :]
    return f"{module}.{target.name}" if module else target.name


@contextmanager
def _reading(member: str, names: Names) -> Iterator[None]:
    """An error in one member says which one, and names the dangerous globals already reached."""
    try:
        yield
    except BudgetExceeded:
        raise
    except InputError as exc:
        malicious = verdict_of(names.values()).malicious
        danger = (
            f"malicious pickle (reaches {', '.join(n for n, _ in malicious[:SHOWN])}); " if malicious else ""
        )
        raise InputError(f"{danger}TorchScript archive's {visible(member)[:60]}: {str(exc)[:160]}") from None


def _prefix(members: set[str]) -> str:
    """The archive's folder: the one holding ``constants.pkl`` (torch's own test) and ``data.pkl``."""
    folders = {
        m[: -len("constants.pkl")] for m in members if m.endswith("/constants.pkl") and m.count("/") == 1
    }
    if len(folders) != 1:
        raise InputError("not a TorchScript archive (no single */constants.pkl)")
    prefix = folders.pop()
    if f"{prefix}data.pkl" not in members:
        raise InputError("a TorchScript archive without its data.pkl")
    return prefix


def _format_version(archive: zipfile.ZipFile, prefix: str, members: set[str], budget: ReadBudget) -> int:
    """The archive format's version, as PyTorchStreamReader reads it (``.data/version`` first)."""
    for member in (f"{prefix}.data/version", f"{prefix}version"):
        if member in members:
            text = read_member(archive, member, budget, "header_bytes").decode("ascii", "replace").strip()
            if not (text.isdigit() and len(text) <= 8):
                raise InputError(f"TorchScript archive version {text!r:.40} is not a number")
            return int(text)
    raise InputError("a TorchScript archive without its version record")


def _classes_in(source: str) -> tuple[dict[str, ModuleClass], dict[str, bool]]:
    """The module classes one code file defines, with their lists; every class it defines, and
    whether it is declared a module."""
    modules = {}
    for match in MODULE_CLASS.finditer(source):
        name, parameters, buffers = match.groups()
        modules[name] = ModuleClass(
            frozenset(QUOTED.findall(parameters)), frozenset(QUOTED.findall(buffers or ""))
        )
    return modules, {name: bool(module) for name, module in ANY_CLASS.findall(source)}


def _class_table(
    archive: zipfile.ZipFile, prefix: str, members: set[str], records: list[Global], budget: ReadBudget
) -> Classes:
    """Each TorchScript class data.pkl names: a module (with its lists) or another class."""
    sources: dict[str, tuple[dict[str, ModuleClass], dict[str, bool]]] = {}
    table: Classes = {}
    for target in records:
        if target.module.startswith(NATIVE_CLASSES):
            table[target] = None
            continue
        member = f"{prefix}code/{target.module.replace('.', '/')}.py"
        if target.module not in sources:
            if member not in members:
                raise InputError(f"class {visible(target.dotted)[:80]!r} has no source in the archive")
            text = read_member(archive, member, budget, "header_bytes").decode("utf-8", "replace")
            sources[target.module] = _classes_in(text)
            budget.tick()
        modules, defined = sources[target.module]
        if target.name not in defined:
            raise InputError(f"class {visible(target.dotted)[:80]!r} is not defined in its source")
        if defined[target.name] and target.name not in modules:
            raise InputError(
                f"module class {visible(target.dotted)[:80]!r} has no lists as torch writes them"
            )
        table[target] = modules.get(target.name)
    return table


@dataclass
class _ModuleWalk:
    """The module records of data.pkl as a Node tree, as ``named_modules()`` nests them.

    A module's parameters and buffers (its class's lists) become its tensors, before its
    children, as ``named_parameters()`` orders them, so the first owner of a tied tensor is
    torch's. Other attribute values are kept aside (``loose``) and their tensors listed once at
    the end, however many attributes share them."""

    classes: Classes
    budget: ReadBudget
    builder: TreeBuilder = field(default_factory=TreeBuilder)
    listed: dict[int, TensorRef] = field(default_factory=dict)  # parameters and buffers
    loose: dict[str, object] = field(default_factory=dict)  # attribute path -> value
    restored: list[str] = field(default_factory=list)  # classes whose state __getstate__ wrote
    odd: list[str] = field(default_factory=list)  # listed attributes that are not tensors
    _visited: set[int] = field(default_factory=set)
    _ancestors: set[int] = field(default_factory=set)

    def is_module(self, value: object) -> bool:
        return (
            isinstance(value, Call)
            and isinstance(value.function, Global)
            and self.classes.get(value.function) is not None
        )

    def node(self, record: Call, path: str, name: str) -> Node:
        if id(record) in self._ancestors:
            raise InputError(f"module {path!r:.80} contains itself")
        self.budget.check("depth", len(self._ancestors), "the TorchScript module tree")
        self.budget.charge("tree_chars", len(path), "the TorchScript module tree")
        if id(record) in self._visited:  # a shared module: its subtree again, as named_modules shows it
            self.budget.charge("references", 1, "the TorchScript module tree")
        self._visited.add(id(record))
        node = Node(path=path, name=name, type=record.function.name)
        state, kind = record.state, self.classes[record.function]
        if not isinstance(state, dict):
            self.restored.append(visible(record.function.name))
            self.loose[join_path(path, "__getstate__")] = state
            return node
        training = state.get("training")
        node.mode = ("train" if training else "eval") if isinstance(training, bool) else None
        children = []
        for key, value in state.items():
            attribute = name_of(key, self.budget, "a module attribute")
            if attribute in kind.parameters or attribute in kind.buffers:
                self._listed(node, attribute, value, attribute in kind.parameters)
            elif self.is_module(value):
                children.append((attribute, value))
            elif value is not None:
                self.loose[join_path(path, attribute)] = value
        self._ancestors.add(id(record))
        node.children = [self.node(child, join_path(path, a), a) for a, child in children]
        self._ancestors.discard(id(record))
        return node

    def _listed(self, node: Node, name: str, value: object, parameter: bool) -> None:
        if value is None:  # an absent optional parameter (``bias=False``)
            return
        if not isinstance(value, TensorRef):
            self.odd.append(join_path(node.path, name))
            return
        self.budget.charge("tensors", 1, "the TorchScript archive")
        self.listed[id(value)] = value
        trains = Role.TRAINABLE if value.requires_grad else Role.FROZEN
        role = trains if parameter else Role.STATE
        persistent = None if parameter else True  # TorchScript saves every buffer in state_dict()
        key = f"{node.path.replace('/', '.')}.{name}" if node.path else name  # its state_dict() key
        tensor = self.builder.tensor(
            value, node.path, name, value.shape, value.storage.dtype, role, persistent=persistent, key=key
        )
        if tensor.shared_with is not None:
            self.budget.charge("references", 1, "the TorchScript archive")
        node.tensors.append(tensor)

    def attribute_tensors(self) -> list[tuple[str, TensorRef]]:
        """Tensors held by attributes that are neither parameters nor buffers, each once."""
        found, seen = [], set(self.listed)
        for keys, ref, _ in tensors_in(self.loose, self.budget):
            self.budget.charge("tensors", 1, "the TorchScript archive")
            if id(ref) not in seen:
                seen.add(id(ref))
                found.append((".".join(keys).replace("/", "."), ref))
        return found


def _storages(archive: zipfile.ZipFile, prefix: str, folder: str, budget: ReadBudget) -> dict[str, int]:
    """Key -> bytes of each storage member under ``folder/``."""
    start = f"{prefix}{folder}/"
    return {
        info.filename[len(start) :]: _storage_size(info, budget)
        for info in archive.infolist()
        if info.filename.startswith(start)
    }


def _check_storages(refs: list[TensorRef], sizes: dict[str, int], folder: str) -> None:
    """Each tensor lies inside the bytes its storage really has (torch reads them all)."""
    for ref in refs:
        size = sizes.get(ref.storage.key)
        if size is None:
            raise InputError(
                f"tensor storage {f'{folder}/{ref.storage.key}'!r:.60} is missing from the archive"
            )
        _check_view(ref, size)


def _constants(value: object, budget: ReadBudget) -> tuple[TensorGroup | None, list[TensorRef]]:
    """constants.pkl's tensors as the code names them (``CONSTANTS.c0``…), each once."""
    builder, names, seen = TreeBuilder(), UniqueNames(), set()
    tensors, refs = [], []
    for keys, ref, _ in tensors_in(value, budget):
        budget.charge("tensors", 1, "the TorchScript constants")
        if id(ref) in seen:
            continue
        seen.add(id(ref))
        name = names(name_of("c" + ".".join(keys), budget, "a constant"))
        tensors.append(
            builder.tensor(
                ref, "constants", name, ref.shape, ref.storage.dtype, Role.STATE, key=f"CONSTANTS.{name}"
            )
        )
        refs.append(ref)
    return (TensorGroup("constants", tensors) if tensors else None), refs


def _interpreted(target: Global) -> bool:
    """Whether the walker reads what this global builds (tensors, storages, dicts), or it is a
    TorchScript class or one of torch's list helpers."""
    if _is_torchscript(target) or target.module == "torch.jit._pickle":
        return True
    if target.module == "torch._utils" and target.name in REBUILD_TENSOR:
        return True
    if target.module == "torch" and (target.name.endswith("Storage") or target.name in TORCH_DTYPES):
        return True
    return (target.module, target.name) in PLAIN_RECORDS


def _uninterpreted(names: Names) -> list[str]:
    """Globals whose records paramscope does not read (quantized or sparse tensors, anything
    foreign): the tensors they build are not counted."""
    return sorted(visible(g.dotted)[:80] for g in names.values() if not _interpreted(g))


def _verdict(names: Names) -> PickleVerdict:
    """See the module docstring: TorchScript classes are the code loading needs."""
    loaded = [
        Global(TORCHSCRIPT, _demangled(g)) if _is_torchscript(g) else g
        for g in names.values()
        if g.module != "torch.jit._pickle"
    ]
    return verdict_of(loaded)


def _warnings(
    modules: _ModuleWalk, attributes: list, names: Names, constants: TensorGroup | None
) -> list[str]:
    warnings = []
    if attributes:
        shown = ", ".join(visible(name)[:60] for name, _ in attributes[:SHOWN])
        warnings.append(
            f"{len(attributes)} tensor attribute(s) are neither parameters nor buffers ({shown}): not "
            "counted, as named_parameters() and named_buffers() do not list them."
        )
    if modules.restored:
        warnings.append(
            f"{len(modules.restored)} module(s) restore their state with __setstate__, TorchScript code "
            f"paramscope does not run ({', '.join(sorted(set(modules.restored))[:SHOWN])}): their tensors "
            "are taken as attributes, not as parameters or buffers."
        )
    if modules.odd:
        warnings.append(f"parameters or buffers that are not tensors: {', '.join(modules.odd[:SHOWN])}.")
    foreign = _uninterpreted(names)
    if foreign:
        warnings.append(
            f"the pickles name {', '.join(foreign[:SHOWN])}, not read: what they build is not counted."
        )
    if constants is not None and not modules.listed:
        warnings.append(
            "no parameters or buffers: the code's tensor constants, where torch.jit.freeze puts the "
            "weights, are listed apart."
        )
    return warnings


def _read_pickles(
    archive: zipfile.ZipFile, prefix: str, members: list[str], budget: ReadBudget, names: Names
) -> tuple[object, list[Global], object]:
    """data.pkl, the TorchScript classes it names, constants.pkl; every other top-level pickle
    (``traced_inputs.pkl``, a mobile ``bytecode.pkl``) is walked for its globals only."""
    data_names = Names()
    with _reading("data.pkl", names):
        data = walk(
            read_member(archive, f"{prefix}data.pkl", budget, "pickle_bytes"), budget=budget, names=data_names
        )
    names.update(data_names)
    with _reading("constants.pkl", names):
        constants = walk(
            read_member(archive, f"{prefix}constants.pkl", budget, "pickle_bytes"), budget=budget, names=names
        )
    known = (f"{prefix}data.pkl", f"{prefix}constants.pkl")
    others = [m for m in members if m.startswith(prefix) and m.endswith(".pkl") and m.count("/") == 1]
    for member in others:
        if member not in known:
            with _reading(member[len(prefix) :], names):
                walk(read_member(archive, member, budget, "pickle_bytes"), budget=budget, names=names)
    return data, [g for g in data_names.values() if _is_torchscript(g)], constants


def _metadata(root: Call, members: list[str], prefix: str, budget: ReadBudget) -> dict[str, object]:
    """The model's class, and the names of the extra files saved with it (``_extra_files``)."""
    extras = [m[len(prefix) + len("extra/") :] for m in members if m.startswith(f"{prefix}extra/")]
    metadata: dict[str, object] = {"class": visible(_demangled(root.function))[:200]}
    if extras:
        metadata["extra_files"] = [name_of(e, budget, "an extra file") for e in extras[:64]]
    return metadata


def read_torchscript(path: Path, archive: zipfile.ZipFile, budget: ReadBudget) -> Report:
    """Parameters and buffers as ``torch.jit.load(path).named_parameters()`` and
    ``named_buffers()`` list them (tied tensors once), in the module tree; the code's tensor
    constants apart; the verdict over the archive's pickles. Nothing is executed."""
    members = archive.namelist()
    member_set = set(members)
    prefix = _prefix(member_set)
    version = _format_version(archive, prefix, member_set, budget)
    names = Names()
    data, records, constants_value = _read_pickles(archive, prefix, members, budget, names)
    with _reading("code/", names):
        classes = _class_table(archive, prefix, member_set, records, budget)
    modules = _ModuleWalk(classes, budget)
    if not modules.is_module(data):
        raise InputError("TorchScript archive's data.pkl does not hold a TorchScript module")
    with _reading("data.pkl", names):
        try:
            root = modules.node(data, "", path.name)
        except RecursionError:  # a depth limit raised past what Python's stack allows
            raise BudgetExceeded("depth", budget.limits.depth, "the TorchScript module tree") from None
        attributes = modules.attribute_tensors()
        _check_storages(list(modules.listed.values()), _storages(archive, prefix, "data", budget), "data")
    with _reading("constants.pkl", names):
        constants, refs = _constants(constants_value, budget)
        _check_storages(refs, _storages(archive, prefix, "constants", budget), "constants")
    return Report(
        source=Source(kind=Kind.TORCHSCRIPT, framework_version=f"format {version}", path=str(path)),
        root=root,
        constants=constants,
        warnings=_warnings(modules, attributes, names, constants),
        pickle=_verdict(names),
        metadata=_metadata(data, members, prefix, budget),
    )


__all__ = ["read_torchscript"]
