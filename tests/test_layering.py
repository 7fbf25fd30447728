"""The architecture as a checked contract: who may import whom, and who may ask what a source is.

The import rules are read from the table in ARCHITECTURE.md, so the document and the check
are one: changing a rule means changing the document. Every import counts — top-level,
inside a function, under ``if TYPE_CHECKING`` — with one documented exception: a display hook
on a core type or an operation's result (``Report.__rich__``, ``Audit._repr_html_``) may
import render lazily.

A source's kind is asked, never spelled: ``kind.family``, ``kind.freezing``, ``kind.live``,
not ``kind == "tf_keras"`` or a tuple of kind strings; only core/kinds.py knows the strings.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from paramscope.core.kinds import Kind

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "paramscope"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
DISPLAY_HOOKS = frozenset({"__rich__", "__rich_console__", "_repr_html_", "_repr_markdown_"})
KIND_VALUES = frozenset(kind.value for kind in Kind)
KINDS_MODULE = PACKAGE / "core" / "kinds.py"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported paramscope module, dotted
    line: int
    in_display_hook: bool


def layer_of(module: str) -> str:
    """`paramscope.ops.audit` -> `ops`; `paramscope.api` -> `api`; `paramscope` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rules() -> dict[str, frozenset[str]]:
    """The table between the layering markers of ARCHITECTURE.md: layer -> what it may import."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = re.search(r"<!-- layering -->(.*?)<!-- /layering -->", text, re.S)
    assert table, "ARCHITECTURE.md has lost its layering table"
    allowed = {}
    for row in table.group(1).strip().splitlines()[2:]:  # after the header and its rule
        layers, may_import = (cell.strip() for cell in row.strip().strip("|").split("|"))
        targets = frozenset(re.findall(r"`([\w.*]+)`", may_import))
        for layer in re.findall(r"`([\w.]+)`", layers):
            allowed[layer] = targets
    return allowed


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def _resolved(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str, path: Path) -> list[Import]:
    """Every import of a paramscope module in ``path``, wherever it is in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hooks = {
        id(inner)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name in DISPLAY_HOOKS
        for inner in ast.walk(function)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolved(module, path, node)
            names = sorted({f"{base}.{alias.name}" if base == "paramscope" else base for alias in node.names})
        else:
            continue
        for name in names:
            if name == "paramscope" or name.startswith("paramscope."):
                found.append(Import(module, name, node.lineno, id(node) in hooks))
    return found


def backward(found: Import, allowed: dict[str, frozenset[str]]) -> bool:
    layer, target = layer_of(found.module), layer_of(found.target)
    if target == layer or "*" in allowed[layer]:
        return False
    if found.in_display_hook and layer in ("core", "ops") and target == "render":
        return False  # the documented exception: core types and results render themselves lazily
    return target not in allowed[layer]


def test_every_module_belongs_to_a_layer_of_the_table() -> None:
    allowed = rules()
    unknown = sorted({layer_of(module) for module, _ in modules()} - set(allowed))
    assert not unknown, f"add {unknown} to the layering table of ARCHITECTURE.md"
    named = {target for targets in allowed.values() for target in targets} - {"*"}
    assert named <= set(allowed), f"the table allows imports of unknown layers {sorted(named - set(allowed))}"


def test_no_backward_import() -> None:
    allowed = rules()
    found = [i for module, path in modules() for i in imports(module, path) if backward(i, allowed)]
    assert not found, "backward imports (see ARCHITECTURE.md):\n" + "\n".join(
        f"  {i.module}:{i.line} imports {i.target}" for i in found
    )


def test_the_contract_catches_what_it_forbids(tmp_path: Path) -> None:
    """The checker sees function-level, TYPE_CHECKING and relative imports, and allows the
    display hook only in core and ops (types and results) and only towards render."""
    source = tmp_path / "module.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import kinds\n"
        "if TYPE_CHECKING:\n"
        "    from paramscope.ops.scan import ScanLine\n"
        "def helper():\n"
        "    import paramscope.sources.detect\n"
        "class Shown:\n"
        "    def __rich__(self):\n"
        "        from paramscope.render import renderable\n"
        "    def _repr_html_(self):\n"
        "        from paramscope.sources import live\n",
        encoding="utf-8",
    )
    found = imports("paramscope.core.module", source)
    assert [(i.target, i.line) for i in found] == [
        ("paramscope.core", 2),
        ("paramscope.ops.scan", 4),
        ("paramscope.sources.detect", 6),
        ("paramscope.render", 9),
        ("paramscope.sources", 11),
    ]
    verdicts = [backward(i, rules()) for i in found]
    assert verdicts == [False, True, True, False, True]
    as_ops = [
        backward(Import("paramscope.ops.x", i.target, i.line, i.in_display_hook), rules()) for i in found
    ]
    assert as_ops == [False, False, True, False, True]  # a result's display hook may render
    as_sources = [
        backward(Import("paramscope.sources.x", i.target, i.line, i.in_display_hook), rules()) for i in found
    ]
    assert as_sources == [False, True, False, True, False]  # sources may not render, hook or not


# ------------------------------------------------------------------------ source kinds


def _names_a_kind(node: ast.expr) -> bool:
    """`kind`, `report.source.kind`, `live_kind(obj)`: an expression that is a source's kind."""
    if isinstance(node, ast.Call):
        node = node.func
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "kind" in name.lower()


def _kind_strings(node: ast.expr | None) -> set[str]:
    """The kind values a literal spells: a string, or strings in a tuple, list, set or call
    such as ``frozenset({...})``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & KIND_VALUES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_kind_strings(e) for e in node.elts)) if node.elts else set()
    if isinstance(node, ast.Call) and node.args:
        return _kind_strings(node.args[0])
    if isinstance(node, ast.Dict):
        return set().union(*(_kind_strings(k) for k in node.keys if k is not None)) if node.keys else set()
    return set()


def _constants_of_kinds(tree: ast.Module) -> set[str]:
    """Module-level names bound to literals that spell kinds (``KERAS = ("keras", "h5")``)."""
    names = set()
    for statement in tree.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and _kind_strings(statement.value):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def kind_comparisons(source: str) -> list[str]:
    """Each line of ``source`` that compares a kind with kind strings, or looks one up in a table
    keyed by them, as ``line: code``."""
    tree = ast.parse(source)
    constants = _constants_of_kinds(tree)

    def spells_kinds(node: ast.expr) -> bool:
        return bool(_kind_strings(node)) or (isinstance(node, ast.Name) and node.id in constants)

    def spelled(node: ast.AST) -> bool:
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            return any(_names_a_kind(s) for s in sides) and any(spells_kinds(s) for s in sides)
        if isinstance(node, ast.Subscript):  # TABLE[kind]
            return spells_kinds(node.value) and _names_a_kind(node.slice)
        return (  # TABLE.get(kind)
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and spells_kinds(node.func.value)
            and bool(node.args)
            and _names_a_kind(node.args[0])
        )

    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree) if spelled(node)]


def test_no_kind_is_compared_as_a_string() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{hit}"
        for _, path in modules()
        if path != KINDS_MODULE
        for hit in kind_comparisons(path.read_text(encoding="utf-8"))
    ]
    assert not found, "ask the Kind (family, freezing, live, keras_like) instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        'kind == "tf_keras"',
        'report.source.kind in ("keras", "keras_file")',
        'ctx.kind != "torch"',
        'live_kind(obj) == "keras"',
        "kind in KERAS_KINDS",
        "SEMANTICS.get(report.source.kind)",
        "REGISTRY[kind]",
    ],
)
def test_the_kind_check_catches_what_it_forbids(line: str) -> None:
    source = (
        'KERAS_KINDS = frozenset({"keras", "keras_file"})\n'
        'SEMANTICS = {"keras": "per variable", "torch": "per parameter"}\n'
        'REGISTRY = {"keras": 1}\n'
        f"x = {line}\n"
    )
    assert [hit.split(":")[0] for hit in kind_comparisons(source)] == ["4"]


def test_the_kind_check_lets_other_strings_be() -> None:
    """Dtype kinds, protobuf message types, module names and JSON keys are no source kinds;
    asking the Kind is what the check asks for."""
    source = (
        'ok = dtype.kind in "fiub" or message == "onnx" or module == "torch"\n'
        "ok = kind is Kind.TORCH or kind.family is Family.KERAS\n"
        'conventions = {"keras": 1, "torch": 2}\n'
        'total = conventions["keras"]\n'
    )
    assert kind_comparisons(source) == []
