"""diff with torch: live modules and the files torch, safetensors and NumPy write, compared with
the values torch itself computes.

A model trained a few real steps with its base frozen must come out as "only the head
changed, the base bit-identical", whichever sources hold the two states; every statistic
equals the one torch computes from the two tensors in float64. The same weights in different
formats are equal; a hostile or cut file is a clean InputError.
"""

from __future__ import annotations

import copy
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import paramscope
from paramscope.core.report import Role
from paramscope.errors import InputError
from paramscope.sources.values import CHUNK_ELEMENTS, STRIDED_ELEMENTS, FileRange, FileView, values_of
from paramscope.sources.values_live import LiveTensor


def transfer_model() -> torch.nn.Sequential:
    """A conv base with BatchNorm, frozen (flags off, BatchNorm in eval), and a linear head."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU()),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 5),
    )
    model[0].requires_grad_(False)
    return model


def train(model: torch.nn.Module, steps: int = 3) -> None:
    """Real training steps: Adam over the trainable parameters, the frozen base in eval mode."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        model.train()
        if not any(p.requires_grad for p in model[0].parameters()):
            model[0].eval()
        loss = model(torch.randn(4, 3, 8, 8, generator=generator)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def keys(paths) -> set[str]:
    return {path.replace("/", ".") for path in paths}


def save(state: dict, path: Path) -> Path:
    """``state`` written in the format the file name says."""
    if path.suffix == ".safetensors":
        save_file({k: v.clone(memory_format=torch.contiguous_format) for k, v in state.items()}, path)
    elif path.suffix == ".npz":
        np.savez(path, **{k.replace(".", "/"): v.numpy() for k, v in state.items()})
    else:
        torch.save(state, path, _use_new_zipfile_serialization=not path.name.startswith("legacy"))
    return path


def assert_statistics(change, before: torch.Tensor, after: torch.Tensor) -> None:
    """A changed tensor's statistics, as torch computes them in float64."""
    a, b = before.double(), after.double()
    delta = b - a
    assert change.max_abs_delta == delta.abs().max().item()
    assert change.relative_change == pytest.approx((delta.norm() / a.norm()).item(), rel=1e-12)
    assert change.changed_fraction == (a != b).double().mean().item()


@pytest.fixture
def trained(tmp_path: Path):
    """(the model's state before, the model after three steps, the folder to write in)."""
    model = transfer_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model)
    return before, model, tmp_path


def assert_only_head_changed(diff, model: torch.nn.Module) -> None:
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"2.weight", "2.bias"}
    assert keys(c.path for c in diff.changed) == trainable
    assert keys(u.path for u in diff.unchanged) == set(model.state_dict()) - trainable
    assert all(u.identical for u in diff.unchanged)
    assert not (diff.added or diff.removed or diff.reshaped or diff.dtype_changed or diff.not_compared)
    statuses = {node.path: node.status for node in diff.nodes}
    assert statuses["0"] == statuses["0/0"] == statuses["0/1"] == "bit-identical"
    assert statuses["2"] == "changed" and statuses[""] == "partly changed"
    assert diff.summary == f"2 of {len(model.state_dict())} tensors changed: '2'; '0' bit-identical"


def test_frozen_base_live_model_against_its_checkpoint(trained) -> None:
    before, model, folder = trained
    diff = paramscope.diff(save(before, folder / "before.pt"), model)
    assert_only_head_changed(diff, model)
    after = model.state_dict()
    for change in diff.changed:
        key = change.path.replace("/", ".")
        assert_statistics(change, before[key], after[key])
    assert diff.changed[0].changed_fraction == 1.0  # Adam moves every element of the head


@pytest.mark.parametrize("before_name", ["before.pt", "legacy_before.pt", "before.safetensors", "before.npz"])
@pytest.mark.parametrize("after_name", ["after.pt", "legacy_after.pt", "after.safetensors"])
def test_frozen_base_files_saved_before_and_after(trained, before_name: str, after_name: str) -> None:
    before, model, folder = trained
    diff = paramscope.diff(save(before, folder / before_name), save(model.state_dict(), folder / after_name))
    assert_only_head_changed(diff, model)


def test_same_weights_in_safetensors_and_pt_are_equal(tmp_path: Path) -> None:
    """Large, strided, bfloat16 and integer tensors: chunked, viewed, compared bit for bit."""
    torch.manual_seed(0)
    big = torch.randn(1200, 1100)  # 1.32M elements: more than one chunk
    state = {
        "big": big,
        "transposed": big.t(),  # torch saves the view: a strided read of the storage
        "tail": big.view(-1)[1000:5000],  # a view at an offset into a shared storage
        "half": torch.randn(7, 3).bfloat16(),
        "steps": torch.tensor(12345678901),
        "mask": torch.rand(9) > 0.5,
    }
    diff = paramscope.diff(save(state, tmp_path / "w.safetensors"), save(state, tmp_path / "w.pt"))
    assert sorted(u.path for u in diff.unchanged) == sorted(state)
    assert all(u.identical for u in diff.unchanged)
    assert not diff.changed and not diff.not_compared
    assert diff.summary == "all 6 tensors bit-identical"


def test_expanded_views_are_not_read(tmp_path: Path) -> None:
    """An expanded tensor repeats one stored value: a file could make it 2**62 elements long."""
    state = {"ones": torch.ones(1).expand(1000), "w": torch.randn(3)}
    path = save(state, tmp_path / "expanded.pt")
    diff = paramscope.diff(path, path)
    assert [(n.path, "stride 0" in n.reason) for n in diff.not_compared] == [("ones", True)]
    assert [u.path for u in diff.unchanged] == ["w"]


def test_chunks_are_bounded(tmp_path: Path) -> None:
    """No chunk holds more than its bound, file or live, and together they hold every element."""
    big = torch.arange(5 * (CHUNK_ELEMENTS // 2 + 7), dtype=torch.float32).reshape(-1, 5)
    path = save({"big": big, "transposed": big.t()}, tmp_path / "w.pt")
    values = values_of(paramscope.inspect(path))
    live = values_of(paramscope.inspect(torch.nn.Linear(4, CHUNK_ELEMENTS)))
    cases = [
        (values.located["big"], FileRange, CHUNK_ELEMENTS, big),
        (values.located["transposed"], FileView, STRIDED_ELEMENTS, big.t()),
        (live.located["weight"], LiveTensor, CHUNK_ELEMENTS, None),
    ]
    for found, kind, bound, truth in cases:
        assert isinstance(found, kind)
        sizes, pieces = [], []
        for chunk in found.chunks():
            sizes.append(len(chunk))
            if truth is not None:
                pieces.append(chunk.copy())
        assert max(sizes) <= bound and sum(sizes) == found.count and len(sizes) > 1
        if truth is not None:
            assert np.array_equal(np.concatenate(pieces), truth.reshape(-1).numpy())


def test_tolerance(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {"w": torch.randn(50, 20), "b": torch.randn(20)}
    moved = {"w": state["w"] + 1e-6, "b": state["b"]}
    a, b = save(state, tmp_path / "a.pt"), save(moved, tmp_path / "b.safetensors")
    exact = paramscope.diff(a, b)
    assert [c.path for c in exact.changed] == ["w"]
    assert_statistics(exact.changed[0], state["w"], moved["w"])
    within = paramscope.diff(a, b, tolerance=1e-5)
    assert not within.changed
    close = next(u for u in within.unchanged if u.path == "w")
    assert not close.identical and close.changed_fraction == 0.0
    assert close.max_abs_delta == (moved["w"].double() - state["w"].double()).abs().max().item()
    assert within.summary == "all 2 tensors unchanged within 1e-05 (1 bit-identical)"
    with pytest.raises(InputError, match="tolerance"):
        paramscope.diff(a, b, tolerance=-1.0)


def test_expect_frozen(trained) -> None:
    before, frozen, folder = trained
    path = save(before, folder / "before.pt")
    assert not paramscope.diff(path, frozen, expect_frozen=["0"]).failed
    unfrozen = transfer_model().requires_grad_(True)
    train(unfrozen)
    diff = paramscope.diff(path, unfrozen, expect_frozen=["0"])
    moved = {name for name, v in unfrozen.state_dict().items() if not torch.equal(v, before[name])}
    assert diff.failed and keys(diff.frozen_broken) == moved - {"2.weight", "2.bias"}
    assert keys(diff.frozen_broken) >= {"0.0.weight", "0.1.running_mean"}  # BatchNorm in train mode
    assert diff.summary.startswith("all 9 tensors changed; expected frozen, yet changed: 0/0/weight")
    with pytest.raises(InputError, match="matches no layer"):
        paramscope.diff(path, unfrozen, expect_frozen=["no_such_layer"])


def test_renamed_reshaped_and_dtype_changed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {"a": torch.randn(4, 6), "b": torch.randn(4, 6), "c": torch.randn(30), "d": torch.randn(3)}
    other = {"a2": state["a"], "b": state["b"].reshape(6, 4), "c": state["c"].half(), "d": state["d"]}
    diff = paramscope.diff(save(state, tmp_path / "a.pt"), save(other, tmp_path / "b.pt"))
    assert [t.path for t in diff.removed] == ["a"] and [t.path for t in diff.added] == ["a2"]
    assert [(p.a.shape, p.b.shape) for p in diff.reshaped] == [((4, 6), (6, 4))]
    assert [(p.a.path, p.a.dtype, p.b.dtype) for p in diff.dtype_changed] == [("c", "float32", "float16")]
    assert [c.path for c in diff.changed] == ["c"]  # rounding to float16 moved it
    assert_statistics(diff.changed[0], state["c"], other["c"])
    assert [u.path for u in diff.unchanged] == ["d"]
    assert (
        diff.summary == "2 of 4 tensors changed: b, c; d bit-identical; 1 dtype changed; 1 added; 1 removed"
    )


def test_names_that_differ_are_said_and_matched_by_order(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {
        "features.weight": torch.randn(8, 4),
        "features.bias": torch.randn(8),
        "fc.weight": torch.randn(2, 8),
    }
    renamed = dict(zip(["layer0.w", "layer0.b", "head.w"], state.values(), strict=True))
    a, b = save(state, tmp_path / "a.pt"), save(renamed, tmp_path / "b.pt")  # in model order
    by_name = paramscope.diff(a, b)
    assert len(by_name.added) == len(by_name.removed) == 3
    assert "match='order'" in by_name.notes[0] and "which pairs 3" in by_name.notes[0]
    by_order = paramscope.diff(a, b, match="order")
    assert [(u.path, u.path_b) for u in by_order.unchanged] == [
        ("features/weight", "layer0/w"),
        ("features/bias", "layer0/b"),
        ("fc/weight", "head/w"),
    ]
    assert all(u.identical for u in by_order.unchanged) and not by_order.notes
    with pytest.raises(InputError, match="match must be"):
        paramscope.diff(a, b, match="shape")


def test_two_live_models_and_role_changes() -> None:
    model = transfer_model()
    snapshot = copy.deepcopy(model)
    model[0].requires_grad_(True)
    train(model)
    diff = paramscope.diff(snapshot, model)
    parameters = dict(model.named_parameters())
    assert keys(p.a.path for p in diff.role_changed) == {n for n in parameters if n.startswith("0.")}
    assert {(p.a.role, p.b.role) for p in diff.role_changed} == {(Role.FROZEN, Role.TRAINABLE)}
    changed = keys(c.path for c in diff.changed)
    assert changed == {
        n for n, v in model.state_dict().items() if not torch.equal(v, snapshot.state_dict()[n])
    }


def test_float8_is_compared_as_bytes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    weight = torch.randn(16, 16).to(torch.float8_e4m3fn)
    nudged = weight.view(torch.uint8).clone()
    nudged[0, 0] ^= 1
    a = save({"w": weight, "s": torch.ones(16)}, tmp_path / "a.safetensors")
    same = paramscope.diff(a, save({"w": weight.clone(), "s": torch.ones(16)}, tmp_path / "b.pt"))
    assert sorted((u.path, u.identical, u.max_abs_delta) for u in same.unchanged) == [
        ("s", True, 0.0),
        ("w", True, None),  # no statistics: float8 is compared as stored bytes
    ]
    moved = paramscope.diff(
        a, save({"w": nudged.view(torch.float8_e4m3fn), "s": torch.ones(16)}, tmp_path / "c.pt")
    )
    assert [(c.path, c.identical, c.max_abs_delta, c.changed_fraction) for c in moved.changed] == [
        ("w", False, None, None)
    ]


def test_packed_4bit_weights_compare_as_stored_bytes(tmp_path: Path) -> None:
    """bitsandbytes quantizes on CPU: a live 4-bit and 8-bit model against its own file."""
    bnb = pytest.importorskip("bitsandbytes")  # in the dev extra
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        bnb.nn.Linear4bit(128, 64, quant_type="nf4"), bnb.nn.Linear8bitLt(64, 40, has_fp16_weights=False)
    )
    model = model.to("cpu")  # quantizes both layers
    state = model.state_dict()
    path = save(state, tmp_path / "q.safetensors")
    diff = paramscope.diff(model, path)
    assert [(u.path, u.identical, u.max_abs_delta) for u in diff.unchanged] == [
        ("0/weight", True, None),  # packed: equal bytes, no statistics
        ("0/bias", True, 0.0),
        ("1/weight", True, None),
        ("1/bias", True, 0.0),
    ]
    assert keys(t.path for t in diff.added) == set(state) - set(dict(model.named_parameters()))  # quant state
    packed = state["0.weight"].clone()
    packed[0] ^= 1
    moved = paramscope.diff(path, save({**state, "0.weight": packed}, tmp_path / "moved.safetensors"))
    assert [(c.path, c.identical, c.max_abs_delta) for c in moved.changed] == [("0/weight", False, None)]


def test_numpy_layouts_hold_the_same_values(tmp_path: Path) -> None:
    """Fortran order, big-endian, compressed: the same arrays, read as the same values."""
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((30, 40)).astype(np.float32), "n": np.arange(12, dtype=np.int64)}
    np.savez(tmp_path / "plain.npz", **arrays)
    np.savez_compressed(tmp_path / "packed.npz", w=arrays["w"].astype(">f4"), n=arrays["n"])
    np.save(tmp_path / "w.npy", np.asfortranarray(arrays["w"]))
    plain = paramscope.diff(tmp_path / "plain.npz", tmp_path / "packed.npz")
    assert sorted(u.path for u in plain.unchanged if u.identical) == ["n", "w"]
    single = paramscope.diff(tmp_path / "w.npy", tmp_path / "plain.npz")
    assert [(u.path, u.identical) for u in single.unchanged] == [("w", True)]


def test_compressed_hdf5_datasets_are_not_read(tmp_path: Path) -> None:
    """Keras writes its datasets plain; a gzip-compressed one is said to be not compared."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "w.weights.h5"
    with h5py.File(path, "w") as handle:  # Keras 3's layout: layers/<layer>/vars/<i>
        handle.create_group("vars")
        variables = handle.create_group("layers/dense/vars")
        variables.attrs["name"] = "dense"
        variables.create_dataset("0", data=np.ones((4, 3), np.float32), compression="gzip")
        variables.create_dataset("1", data=np.arange(3, dtype=np.float32))
    diff = paramscope.diff(path, path)
    assert [(n.path, n.reason.split(":")[0]) for n in diff.not_compared] == [("dense/var0", "A")]
    assert "compressed" in diff.not_compared[0].reason
    assert [(u.path, u.identical) for u in diff.unchanged] == [("dense/var1", True)]
    assert diff.summary == "1 of 2 tensors bit-identical; 1 not compared"


# ---------------------------------------------------------------- hostile and changed files


def rewritten(source: Path, target: Path, member_end: str, data: bytes) -> Path:
    """A copy of a zip archive whose member ending in ``member_end`` holds ``data``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            new.writestr(info, data if info.filename.endswith(member_end) else old.read(info))
    return target


def test_storage_offset_past_its_storage_is_refused(tmp_path: Path) -> None:
    tail = torch.arange(10, dtype=torch.float32)[6:]  # offset 6 into a storage of 10 elements
    path = save({"tail": tail}, tmp_path / "view.pt")
    short = rewritten(path, tmp_path / "short.pt", "/data/0", bytes(16))  # room for 4 elements only
    with pytest.raises(InputError, match=re.escape("short.pt")):
        paramscope.diff(path, short)


@pytest.mark.parametrize("name", ["w.safetensors", "w.pt", "legacy_w.pt", "w.npz"])
def test_file_cut_while_compared_is_refused(tmp_path: Path, name: str) -> None:
    """A file cut after its header was read: the read notices, nothing past the end is read."""
    torch.manual_seed(0)
    state = {"w": torch.randn(64, 64), "b": torch.randn(64)}
    path = save(state, tmp_path / name)
    report = paramscope.inspect(path)
    values = values_of(report)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size - 100)
    tensor = next(t for t in report.tensors() if t.path == "w")
    with pytest.raises(InputError, match="changed while it was read"):
        list(values.of(tensor).chunks())
    with pytest.raises(InputError, match=name):
        paramscope.diff(path, path)


def test_truncated_safetensors_is_refused(tmp_path: Path) -> None:
    path = save({"w": torch.randn(32, 32)}, tmp_path / "w.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-7])
    with pytest.raises(InputError, match=re.escape("cut.safetensors")):
        paramscope.diff(path, tmp_path / "cut.safetensors")


def test_a_cast_is_said_in_the_one_line_summary(tmp_path) -> None:
    """float32 → float16: where the values survive the cast they are "equal in value, stored
    differently" (not "unchanged within 0", no tolerance having been given); where they do not,
    changed; either way the summary counts the dtype changes."""
    exact = {"w": torch.tensor([0.5, -2.0, 3.0])}
    lossy = {"w": torch.tensor([0.1, 1e-8, 3.3])}
    for name, state in (("exact", exact), ("lossy", lossy)):
        torch.save(state, tmp_path / f"{name}.pt")
        torch.save({k: v.half() for k, v in state.items()}, tmp_path / f"{name}16.pt")
    same = paramscope.diff(tmp_path / "exact.pt", tmp_path / "exact16.pt")
    assert (
        same.summary == "all 1 tensor equal in value, stored differently (0 bit-identical); 1 dtype changed"
    )
    moved = paramscope.diff(tmp_path / "lossy.pt", tmp_path / "lossy16.pt")
    assert moved.summary == "all 1 tensor changed; 1 dtype changed"
    assert (
        moved.changed[0].max_abs_delta
        == (lossy["w"].half().double() - lossy["w"].double()).abs().max().item()
    )


def test_an_element_that_became_nan_has_a_nan_largest_change(tmp_path) -> None:
    """fmax would skip the NaN and report max |Δ| 0 for a tensor that broke."""
    before = {"w": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    after = {"w": torch.tensor([1.0, 2.5, float("nan"), 4.0])}
    torch.save(before, tmp_path / "a.pt")
    torch.save(after, tmp_path / "b.pt")
    (change,) = paramscope.diff(tmp_path / "a.pt", tmp_path / "b.pt").changed
    assert np.isnan(change.max_abs_delta) and change.changed_fraction == 0.5
