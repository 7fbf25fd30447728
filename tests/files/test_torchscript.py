"""TorchScript archives written by torch.jit itself, and one nobody here wrote (silero-vad's):
the parameters and buffers ``torch.jit.load(f).named_parameters()`` / ``named_buffers()`` list,
read without running the archive's code."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import paramscope
from paramscope.core.report import Role, Verdict
from paramscope.errors import InputError
from tests.files.corpus import global_call

MARKER = Path("/tmp/paramscope-torchscript-marker")
SILERO = ("silero-vad==6.2.3", "silero_vad/data/silero_vad.jit")


class Block(nn.Module):
    """A custom module with a submodule, a frozen parameter and a non-persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 4)
        self.gain = nn.Parameter(torch.ones(4), requires_grad=False)
        self.register_buffer("scale", torch.full((4,), 2.0))
        self.register_buffer("cache", torch.zeros(3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) * self.gain * self.scale + self.cache.sum()


class Tied(nn.Module):
    """An embedding tied to the output head, around a Block and a Sequential with BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 6)
        self.block = Block()
        self.mix = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
        self.head = nn.Linear(6, 12, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.block(self.embed(ids))))


def sequential() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))


MODELS = {"sequential": (sequential, lambda: torch.randn(4, 8)), "tied": (Tied, lambda: torch.arange(5))}


def save(folder: Path, model: str, how: str) -> Path:
    torch.manual_seed(0)
    build, example = MODELS[model]
    module = build()
    scripted = torch.jit.script(module) if how == "script" else torch.jit.trace(module, example())
    path = folder / f"{model}-{how}.pt"
    scripted.save(str(path))
    return path


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("torchscript")
    return {(m, h): save(folder, m, h) for m in MODELS for h in ("script", "trace")}


@pytest.fixture(autouse=True)
def no_marker():
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "something ran the archive's code"


def torch_view(path: Path) -> tuple[dict, dict]:
    """(parameters, buffers) as torch.jit.load shows them: name -> (shape, dtype[, requires_grad])."""
    module = torch.jit.load(str(path))
    parameters = {
        name: (tuple(p.shape), str(p.dtype).removeprefix("torch."), p.requires_grad)
        for name, p in module.named_parameters()
    }
    buffers = {
        name: (tuple(b.shape), str(b.dtype).removeprefix("torch.")) for name, b in module.named_buffers()
    }
    return parameters, buffers


def paramscope_view(report) -> tuple[dict, dict]:
    counted = [t for t in report.tensors() if t.shared_with is None]
    parameters = {
        t.path.replace("/", "."): (t.shape, t.dtype, t.role is Role.TRAINABLE)
        for t in counted
        if t.role in (Role.TRAINABLE, Role.FROZEN)
    }
    buffers = {t.path.replace("/", "."): (t.shape, t.dtype) for t in counted if t.role is Role.STATE}
    return parameters, buffers


def rows(report) -> list[tuple]:
    return [(t.path, t.shape, t.dtype, t.role, t.shared_with, t.persistent) for t in report.tensors()]


@pytest.mark.parametrize("how", ["script", "trace"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_parameters_and_buffers_as_jit_load_lists_them(archives, model: str, how: str) -> None:
    path = archives[model, how]
    parameters, buffers = torch_view(path)
    report = paramscope.inspect(path)
    assert paramscope_view(report) == (parameters, buffers)
    trainable = sum(p.numel() for p in torch.jit.load(str(path)).parameters() if p.requires_grad)
    assert report.totals["trainable"].params == trainable
    assert report.totals["state"].tensors == len(buffers)
    assert report.source.kind == "torchscript"


@pytest.mark.parametrize("how", ["script", "trace"])
def test_module_tree_types_and_modes(archives, how: str) -> None:
    path = archives["tied", how]
    loaded = torch.jit.load(str(path))
    report = paramscope.inspect(path)
    types = {node.path.replace("/", "."): node.type for node in report.nodes()}
    assert types == {name: module.original_name for name, module in loaded.named_modules()}
    modes = {node.path.replace("/", "."): node.mode for node in report.nodes()}
    assert modes == {name: "train" if m.training else "eval" for name, m in loaded.named_modules()}


@pytest.mark.parametrize("how", ["script", "trace"])
def test_tied_frozen_and_non_persistent(archives, how: str) -> None:
    path = archives["tied", how]
    loaded = torch.jit.load(str(path))
    tensors = {t.path: t for t in paramscope.inspect(path).tensors()}
    assert tensors["head/weight"].shared_with == "embed/weight"
    assert (
        len(list(loaded.named_parameters(remove_duplicate=False))) == len(list(loaded.named_parameters())) + 1
    )
    assert tensors["block/gain"].role is Role.FROZEN and not loaded.block.gain.requires_grad
    saved = set(loaded.state_dict())
    assert {p for p, t in tensors.items() if t.role is Role.STATE and t.persistent} == {
        name.replace(".", "/") for name, _ in loaded.named_buffers() if name in saved
    }
    assert "block.cache" in saved  # TorchScript keeps a non-persistent buffer in state_dict()


def test_verdict_needs_the_archives_code(archives) -> None:
    path = archives["tied", "script"]
    with pytest.raises(RuntimeError, match="weights_only"):
        torch.load(path, weights_only=True)  # torch refuses every TorchScript archive there
    verdict = paramscope.inspect(path).pickle
    assert verdict.verdict is Verdict.NEEDS_CODE and not verdict.malicious
    assert f"__torch__.{__name__}.Tied" in verdict.needs_code
    assert "__torch__.torch.nn.modules.linear.Linear" in verdict.needs_code
    assert not any("mangle" in name or "jit._pickle" in name for name in verdict.needs_code)


def test_format_version(archives) -> None:
    path = archives["sequential", "script"]
    with zipfile.ZipFile(path) as archive:
        version = next(archive.read(n) for n in archive.namelist() if n.endswith("/version"))
    assert paramscope.inspect(path).source.framework_version == f"format {int(version)}"


def test_frozen_weights_are_constants(tmp_path: Path) -> None:
    torch.manual_seed(0)
    frozen = torch.jit.freeze(torch.jit.script(Tied().eval()))
    path = tmp_path / "frozen.pt"
    frozen.save(str(path))
    loaded = torch.jit.load(str(path))
    constants = {
        node.output().toIValue().data_ptr(): node.output().toIValue()
        for node in loaded.graph.findAllNodes("prim::Constant")
        if node.output().type().kind() == "TensorType"
    }
    report = paramscope.inspect(path)
    assert list(loaded.named_parameters()) == [] and list(loaded.named_buffers()) == []
    assert report.totals["all"].tensors == 0
    assert report.constants.totals.tensors == len(constants)
    assert report.constants.totals.params == sum(t.numel() for t in constants.values())
    assert any("constants" in warning for warning in report.warnings)


def test_quantized_packed_weights_are_not_parameters(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    path = tmp_path / "quantized.pt"
    torch.jit.script(quantized).save(str(path))
    report = paramscope.inspect(path)
    assert paramscope_view(report) == torch_view(path) == ({}, {})
    assert any("_rebuild_qtensor" in warning for warning in report.warnings)
    assert "__torch__.torch.classes.quantized.LinearPackedParamsBase" in report.pickle.needs_code


def rewritten(path: Path, target: Path, change) -> Path:
    """A copy of the archive with each member's bytes passed through ``change(name, data)``
    (None drops the member); ``change(None, None)`` may return members to add."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = change(info.filename, source.read(info))
            if data is not None:
                out.writestr(info.filename, data)
        for name, data in (change(None, None) or {}).items():
            out.writestr(name, data)
    return target


def test_hostile_code_does_not_matter(archives, tmp_path: Path) -> None:
    """Code that would run if imported, executed or unpickled, around the lists torch reads."""
    path = archives["tied", "script"]
    with zipfile.ZipFile(path) as archive:
        prefix = archive.namelist()[0].split("/")[0]
    attack = f'import os\nos.system("touch {MARKER}")\n'.encode()

    def change(name, data):
        if name is None:
            return {f"{prefix}/code/__torch__/os.py": attack, f"{prefix}/code/evil.py": attack}
        if name.endswith(".py"):
            decoy = b'\nclass Evil(Module):\n  __parameters__ = ["embed", ]\n' + b"\x1b[2J" + b"x" * 100_000
            return data + b"\n" + attack + decoy + b"\n    __buffers__ = []\n"
        if name.endswith(".debug_pkl"):
            return global_call("os", "system", f"touch {MARKER}")
        return data

    hostile = paramscope.inspect(rewritten(path, tmp_path / "hostile.pt", change))
    clean = paramscope.inspect(path)
    assert rows(hostile) == rows(clean) and hostile.pickle == clean.pickle
    assert hostile.warnings == clean.warnings


def test_malicious_global_is_named(archives, tmp_path: Path) -> None:
    path = archives["sequential", "script"]

    def change(name, data):
        return (
            global_call("os", "system", f"touch {MARKER}")
            if name and name.endswith("/constants.pkl")
            else data
        )

    report = paramscope.inspect(rewritten(path, tmp_path / "evil.pt", change))
    assert report.pickle.verdict is Verdict.MALICIOUS
    assert [name for name, _ in report.pickle.malicious] == ["os.system"]
    assert paramscope_view(report) == torch_view(path)


BROKEN = {
    "no-data-pkl": (lambda n, d: None if n and n.endswith("/data.pkl") else d, "data.pkl"),
    "no-storage": (lambda n, d: None if n and n.endswith("/data/0") else d, "missing"),
    "short-storage": (lambda n, d: d[:2] if n and n.endswith("/data/1") else d, "declares"),
    "no-code": (lambda n, d: None if n and n.endswith("container.py") else d, "missing"),
    "no-version": (lambda n, d: None if n and n.endswith("/version") else d, "version"),
    "truncated-data-pkl": (lambda n, d: d[:-9] if n and n.endswith("/data.pkl") else d, "truncated"),
    "truncated-constants": (
        lambda n, d: d[:-1] if n and n.endswith("/constants.pkl") else d,
        "constants.pkl",
    ),
    "other-lists": (
        lambda n, d: d.replace(b"__parameters__ = [", b"__parameters__ = (") if n else d,
        "lists",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_missing_or_damaged_members(archives, tmp_path: Path, name: str) -> None:
    change, phrase = BROKEN[name]
    path = rewritten(archives["sequential", "script"], tmp_path / "broken.pt", change)
    with pytest.raises(InputError, match=phrase) as caught:
        paramscope.inspect(path)
    assert "\n" not in str(caught.value)


def test_truncated_archive(archives, tmp_path: Path) -> None:
    data = archives["tied", "trace"].read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError):
        paramscope.inspect(path)


MODULE_SOURCE = b"""class Leaf(Module):
  __parameters__ = []
  __buffers__ = []
class Pair(Module):
  __parameters__ = []
  __buffers__ = []
"""


def synthetic(path: Path, data_pkl: bytes) -> Path:
    """An archive as torch.jit.save lays it out, around a hand-written data.pkl."""
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("m/data.pkl", data_pkl)
        out.writestr("m/constants.pkl", b"\x80\x02).")
        out.writestr("m/code/__torch__.py", MODULE_SOURCE)
        out.writestr("m/version", b"3\n")
    return path


def module_record(name: str, attributes: bytes) -> bytes:
    """GLOBAL __torch__ name, NEWOBJ, then BUILD with a dict of ``attributes`` (pickled items)."""
    return b"c__torch__\n" + name.encode() + b"\n)\x81}(" + attributes + b"ub"


def attribute(name: str) -> bytes:
    return b"X" + len(name).to_bytes(4, "little") + name.encode()


def test_shared_modules_cannot_explode(tmp_path: Path) -> None:
    """Each Pair holds the one below twice, through the memo: 2**40 paths in 800 bytes."""
    data = b"\x80\x02" + module_record("Leaf", b"") + b"r\x00\x00\x00\x000"
    for level in range(40):
        get = b"j" + level.to_bytes(4, "little")
        data += module_record("Pair", attribute("a") + get + attribute("b") + get)
        data += b"r" + (level + 1).to_bytes(4, "little") + b"0"
    data += b"j" + (40).to_bytes(4, "little") + b"."
    with pytest.raises(InputError, match="references"):
        paramscope.inspect(synthetic(tmp_path / "dag.pt", data))


def test_module_that_contains_itself(tmp_path: Path) -> None:
    data = b"\x80\x02c__torch__\nPair\n)\x81r\x00\x00\x00\x00}(" + attribute("a") + b"j\x00\x00\x00\x00ub."
    with pytest.raises(InputError, match="contains itself"):
        paramscope.inspect(synthetic(tmp_path / "cycle.pt", data))


def test_synthetic_archive_reads(tmp_path: Path) -> None:
    """The hand-written layout above is one paramscope reads, so the refusals are the tests'."""
    data = b"\x80\x02" + module_record("Pair", attribute("a") + module_record("Leaf", b"")) + b"."
    report = paramscope.inspect(synthetic(tmp_path / "pair.pt", data))
    assert [(n.path, n.type) for n in report.nodes()] == [("", "Pair"), ("a", "Leaf")]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzzed_archives_fail_cleanly(archives, tmp_path_factory, data) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    original = bytearray(archives["sequential", "script"].read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    path = folder / "fuzzed.pt"
    path.write_bytes(bytes(original[: data.draw(st.integers(1, len(original)))]))
    with contextlib.suppress(InputError):  # the only acceptable failure
        paramscope.inspect(path)


@pytest.fixture(scope="session")
def silero(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("silero")
    package, member = SILERO
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), package],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot download {package} from the package registry: {result.stderr.strip()[-200:]}")
    wheel = next(folder.glob("silero_vad-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(member, folder)
    return folder / member


def test_silero_vad_as_jit_load_reads_it(silero: Path) -> None:
    report = paramscope.inspect(silero)
    parameters, buffers = torch_view(silero)
    assert paramscope_view(report) == (parameters, buffers)
    assert len(parameters) == 28 and len(buffers) == 2
    loaded = torch.jit.load(str(silero))
    assert report.root.type == loaded.original_name == "VADRNNJITMerge"
    assert report.totals["frozen"].params == sum(
        p.numel() for p in loaded.parameters() if not p.requires_grad
    )
    tensor_attributes = [n for n in ("_state", "_context") if isinstance(getattr(loaded, n), torch.Tensor)]
    assert tensor_attributes == ["_state", "_context"]
    assert any(all(n in w for n in tensor_attributes) and "neither" in w for w in report.warnings)
    assert report.pickle.verdict is Verdict.NEEDS_CODE
