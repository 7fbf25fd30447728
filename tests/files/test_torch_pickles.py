"""What real pickles hold, read inertly: whole pickled ``nn.Module``s and checkpoints holding
one, NumPy arrays, Python 2-era containers, Lightning checkpoints with OmegaConf
hyper-parameters. Every file is written by torch (or Lightning) and every count is checked
against torch's own reading of it (``torch.load(..., weights_only=False)``: these tests wrote
the files) and, for modules, against paramscope's reading of the live module. Hostile variants
of each new interpretation, written byte by byte, end in a clean InputError or a bounded read.
"""

from __future__ import annotations

import argparse
import collections
import copyreg
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import paramscope
from paramscope.core.report import Report, Role, Verdict
from paramscope.errors import InputError
from tests.files import pickles


class Tower(nn.Module):
    """A user's own class (never imported by paramscope): a tied head, a frozen bias, a
    tensor-less ReLU and Dropout, a non-persistent buffer, a submodule registered twice and a
    submodule in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.body = nn.Sequential(
            nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 4)
        )
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight
        self.again = self.body[1]
        self.register_buffer("scale", torch.ones(3), persistent=False)
        self.body[4].bias.requires_grad_(False)
        self.body[1].eval()


def rows(report: Report) -> list[tuple]:
    return [(t.path, t.role, t.shape, t.dtype, t.persistent, t.shared_with) for t in report.tensors()]


def nodes(report: Report) -> list[tuple]:
    """Every node's path, type and mode (the root's name is the file's, or the class's)."""
    return [(n.path, n.type, n.mode) for n in report.nodes()]


def torch_counts(module: nn.Module) -> dict[str, tuple[int, int]]:
    """(tensors, params) per role, as torch lists them: tied and shared ones once."""
    parameters = list(module.parameters())
    buffers = list(module.buffers())
    trainable = [p for p in parameters if p.requires_grad]
    frozen = [p for p in parameters if not p.requires_grad]
    return {
        role: (len(tensors), sum(t.numel() for t in tensors))
        for role, tensors in (("trainable", trainable), ("frozen", frozen), ("state", buffers))
    }


def our_counts(report: Report) -> dict[str, tuple[int, int]]:
    return {
        role: (report.totals[role].tensors, report.totals[role].params)
        for role in ("trainable", "frozen", "state")
    }


def counted_names(report: Report) -> set[str]:
    return {t.path.replace("/", ".") for t in report.tensors() if t.counted}


def assert_reads_like(path: Path, live: nn.Module) -> Report:
    """The file's report is the live module's and the loaded module's, row for row."""
    report = paramscope.inspect(path)
    loaded = torch.load(path, weights_only=False)
    loaded = loaded["model"] if isinstance(loaded, dict) else loaded
    for module in (live, loaded):
        expected = paramscope.inspect(module)
        assert rows(report) == rows(expected)
        assert nodes(report)[1:] == nodes(expected)[1:]
        assert (report.root.type, report.root.mode) == (type(module).__name__, expected.root.mode)
        assert our_counts(report) == torch_counts(module)
        names = {n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()}
        assert counted_names(report) == names
    assert report.totals["unknown"].tensors == 0
    return report


# ----------------------------------------------------------------------- pickled modules


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_pickled_module_reads_like_the_live_module(tmp_path: Path, legacy: bool) -> None:
    model = Tower()
    path = tmp_path / "tower.pt"
    torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    report = assert_reads_like(path, model)
    assert ("again/weight", "body/1/weight") in [(t.path, t.shared_with) for t in report.tensors()]
    assert report.pickle.verdict is Verdict.NEEDS_CODE
    assert f"{__name__}.Tower" in report.pickle.needs_code


@pytest.mark.parametrize("protocol", [1, 2, 4, 5])
def test_pickled_sequential_keeps_its_first_child(tmp_path: Path, protocol: int) -> None:
    """A Sequential whose tensors all sit under ``0``: no container prefix is dropped from a
    module (protocol 1 pickles it through ``copyreg._reconstructor``)."""
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    path = tmp_path / "seq.pt"
    torch.save(model, path, pickle_protocol=protocol)
    report = assert_reads_like(path, model)
    assert [t.path for t in report.tensors()] == ["0/weight", "0/bias"]


def test_checkpoint_holding_a_module(tmp_path: Path) -> None:
    model = Tower()
    optimizer = torch.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model, "optimizer": optimizer.state_dict(), "epoch": 3, "arch": "tower"}, path)
    report = assert_reads_like(path, model)
    moments = [t for state in optimizer.state_dict()["state"].values() for t in state.values()]
    assert report.optimizer.totals.tensors == len(moments)
    assert report.optimizer.totals.params == sum(t.numel() for t in moments)
    assert report.metadata == {"epoch": 3, "arch": "tower"}


def test_state_dict_names_unchanged(tmp_path: Path) -> None:
    """A plain state dict keeps its keys, and roles stay those a state dict can tell."""
    model = Tower()
    path = tmp_path / "state.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    report = paramscope.inspect(path)
    state = torch.load(path, weights_only=True)["state_dict"]
    assert [t.path.replace("/", ".") for t in report.tensors()] == list(state)
    views = {
        (t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride()): t for t in state.values()
    }
    assert report.totals["all"].params == sum(t.numel() for t in views.values())  # tied ones once
    assert len(views) < len(state)


# --------------------------------------------------------------------------- numpy arrays

ARRAYS = {
    "weights": np.ones((4, 5), np.float32),
    "index": np.arange(6),
    "flags": np.zeros(3, bool),
    "big_endian": np.ones((2, 2), ">f8"),
    "large": np.zeros(300_000),  # 2.4 MB: kept as an opaque marker by the walker, measured
    "names": np.array(["a", "bc"]),  # not numbers: not a tensor
    "objects": np.array([1, None], dtype=object),
}


def _expected(value: torch.Tensor | np.ndarray) -> tuple | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape), str(value.dtype).removeprefix("torch."), value.nbytes
    if value.dtype.kind not in "biufc":
        return None
    return value.shape, value.dtype.name, value.nbytes


@pytest.mark.parametrize(("protocol", "legacy"), [(2, False), (4, False), (5, False), (2, True)])
def test_numpy_arrays_are_tensors(tmp_path: Path, protocol: int, legacy: bool) -> None:
    path = tmp_path / "arrays.pt"
    torch.save(
        {"tensor": torch.zeros(2, 3), **ARRAYS},
        path,
        pickle_protocol=protocol,
        _use_new_zipfile_serialization=not legacy,
    )
    loaded = torch.load(path, weights_only=False)
    expected = {key: _expected(value) for key, value in loaded.items() if _expected(value) is not None}
    report = paramscope.inspect(path)
    assert {t.path: (t.shape, t.dtype, t.bytes) for t in report.tensors()} == expected
    roles = {t.path: t.role for t in report.tensors()}
    assert roles["index"] is Role.STATE and roles["flags"] is Role.STATE  # integers, as state dicts
    assert roles["weights"] is Role.UNKNOWN


def test_numpy_array_with_too_little_data_is_refused(tmp_path: Path) -> None:
    array = pickles.numpy_array((2, 3), "f4", b"\0" * 20)
    data = pickles.state_dict([("w", pickles.tensor("0", 4)), ("a", array)])
    path = tmp_path / "short.pt"
    path.write_bytes(pickles.torch_zip(data, {"0": 16}))
    with pytest.raises(InputError, match=r"needs 24 bytes; its record holds 20"):
        paramscope.inspect(path)


def test_numpy_array_hand_written_reads(tmp_path: Path) -> None:
    """The hand-written record is the real layout: with the right length it is a tensor."""
    array = pickles.numpy_array((2, 3), "f4", b"\0" * 24, order=">")
    data = pickles.state_dict([("w", pickles.tensor("0", 4)), ("a", array)])
    path = tmp_path / "ok.pt"
    path.write_bytes(pickles.torch_zip(data, {"0": 16}))
    report = paramscope.inspect(path)
    assert {t.path: (t.shape, t.dtype) for t in report.tensors()} == {
        "w": ((4,), "float32"),
        "a": ((2, 3), "float32"),
    }


def test_numpy_dtype_with_bad_byte_order_is_refused(tmp_path: Path) -> None:
    array = pickles.numpy_array((2,), "f4", b"\0" * 8, order="!")
    path = tmp_path / "order.pt"
    path.write_bytes(pickles.torch_zip(pickles.state_dict([("a", array)]), {}))
    with pytest.raises(InputError, match="byte order"):
        paramscope.inspect(path)


# ---------------------------------------------------------------- Python 2-era containers


class Python2OrderedDict(dict):
    """Pickled as Python 2 pickled an OrderedDict: ``OrderedDict([[key, value], …])``."""

    def __reduce__(self):
        return collections.OrderedDict, ([[key, value] for key, value in self.items()],)


class FilledDefaultDict(dict):
    """Pickled as ``defaultdict(list, {…})``: the contents as the second argument."""

    def __reduce__(self):
        return collections.defaultdict, (list, dict(self))


class Python2Module(nn.Module):
    """Pickled with its registries as Python 2 pickled them (``OrderedDict([[name, value], …])``)
    and without ``_non_persistent_buffers_set``, which torch before 1.6 did not have."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def __reduce_ex__(self, protocol):
        state = dict(self.__dict__)
        for key in ("_parameters", "_buffers", "_modules"):
            state[key] = Python2OrderedDict(state[key])
        del state["_non_persistent_buffers_set"]
        return copyreg.__newobj__, (type(self),), state


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_python2_era_pickled_module(tmp_path: Path, legacy: bool) -> None:
    model = Python2Module()
    path = tmp_path / "old_model.pth"
    torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    assert_reads_like(path, model)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_python2_era_containers_keep_their_tensors(tmp_path: Path, legacy: bool) -> None:
    state = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).state_dict()
    checkpoint = {
        "state_dict": Python2OrderedDict(state),
        "extra": FilledDefaultDict({"a": torch.zeros(5)}),
        "counts": collections.defaultdict(list, {"b": torch.zeros(7)}),  # items by SETITEMS
    }
    path = tmp_path / "old.pth"
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    loaded = torch.load(path, weights_only=False)
    assert isinstance(loaded["state_dict"], collections.OrderedDict)
    expected = {
        ".".join((key, name)): tuple(tensor.shape)
        for key, part in loaded.items()
        for name, tensor in part.items()
    }
    report = paramscope.inspect(path)
    assert {t.path.replace("/", "."): t.shape for t in report.tensors()} == expected


def test_ordered_dict_by_inst_in_protocol_1(tmp_path: Path) -> None:
    """Protocols 0 and 1 build instances with INST: the class in two text lines after the
    arguments; here ``OrderedDict([['w', tensor]])`` as old pickles wrote it."""
    pair = b"](" + pickles.text("w") + pickles.tensor("0", 4, (2, 2)) + b"e"
    data = b"(](" + pair + b"e" + b"icollections\nOrderedDict\n" + pickles.STOP
    path = tmp_path / "inst.pt"
    path.write_bytes(pickles.torch_zip(data, {"0": 16}))
    report = paramscope.inspect(path)
    assert [(t.path, t.shape) for t in report.tensors()] == [("w", (2, 2))]


# ------------------------------------------------------------------ checkpoint metadata


class Schedule:
    """A user's own object among the hyper-parameters: named, never imported."""

    def __init__(self) -> None:
        self.steps = 3


def test_checkpoint_metadata_is_plain_data(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    args = argparse.Namespace(lr=0.1, layers=[1, 2], note="x" * 5000)
    hparams = {"schedule": Schedule(), "loss": float("nan"), "weights": torch.ones(3), 4: None}
    torch.save({"state_dict": {"w": torch.zeros(2)}, "args": args, "hparams": hparams, "epoch": 7}, path)
    report = paramscope.inspect(path)
    assert report.metadata == {
        "args": {"lr": 0.1, "layers": [1, 2], "note": "x" * 1000 + "…"},
        "hparams": {
            "schedule": f"<{__name__}.Schedule>",
            "loss": "nan",
            "weights": "<tensor float32 [3]>",
            "4": None,
        },
        "epoch": 7,
    }
    json.dumps(report.metadata, allow_nan=False)
    assert [t.path for t in report.tensors()] == ["w"]  # the tensor in hparams is no model tensor
    assert "1 tensor(s) under the checkpoint's hparams are training state or settings" in report.warnings[-1]


# ------------------------------------------------------------------ Lightning checkpoints


def test_lightning_checkpoint(tmp_path: Path) -> None:
    L = pytest.importorskip("lightning")
    omegaconf = pytest.importorskip("omegaconf")

    class Keep(L.Callback):
        """A callback with a tensor in its state, as ModelCheckpoint keeps its best score."""

        def state_dict(self):
            return {"best": torch.tensor(0.5)}

    class Lit(L.LightningModule):
        def __init__(self, cfg, layers, lr: float = 0.1, name: str = "net") -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))

        def training_step(self, batch, index):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1)}

    cfg = omegaconf.OmegaConf.create(
        {"hidden": 8, "opt": {"name": "adam", "betas": [0.9, 0.99]}, "tag": "${opt.name}"}
    )
    layers = omegaconf.OmegaConf.create([1, 2, 3])
    model = Lit(cfg, layers)
    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
    trainer = L.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Keep()],
    )
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=4))
    path = tmp_path / "lit.ckpt"
    trainer.save_checkpoint(path)

    report = paramscope.inspect(path)
    checkpoint = torch.load(path, weights_only=False)
    state = model.state_dict()
    assert [t.path.replace("/", ".") for t in report.tensors()] == list(state)
    assert report.totals["all"].params == sum(t.numel() for t in state.values())
    assert report.totals["state"].params == sum(b.numel() for b in model.buffers())
    moments = [t for opt in checkpoint["optimizer_states"] for s in opt["state"].values() for t in s.values()]
    assert report.optimizer.totals.tensors == len(moments)
    assert report.optimizer.totals.params == sum(t.numel() for t in moments)
    assert any("callbacks" in w and "not counted" in w for w in report.warnings)
    assert report.pickle.verdict is Verdict.NEEDS_CODE
    assert "omegaconf.dictconfig.DictConfig" in report.pickle.needs_code
    assert report.metadata["epoch"] == checkpoint["epoch"]
    assert report.metadata["global_step"] == checkpoint["global_step"] == 1
    assert report.metadata["pytorch-lightning_version"] == L.__version__
    assert report.metadata["hyper_parameters"] == {
        "cfg": omegaconf.OmegaConf.to_container(cfg, resolve=False),
        "layers": [1, 2, 3],
        "lr": 0.1,
        "name": "net",
    }
    json.dumps(report.metadata, allow_nan=False)


# --------------------------------------------------------------------- hostile records


def _inspect(
    tmp_path: Path, items: list[tuple[str, bytes]], storages: dict[str, int] | None = None
) -> Report:
    path = tmp_path / "hostile.pt"
    path.write_bytes(pickles.torch_zip(pickles.state_dict(items), storages or {"0": 16}))
    return paramscope.inspect(path)


def test_dictconfig_inside_itself_is_a_cycle(tmp_path: Path) -> None:
    config = (
        pickles.global_("omegaconf.dictconfig", "DictConfig")
        + b")\x81"
        + pickles.put(7)
        + pickles.dict_of(
            [
                (
                    "_content",
                    pickles.dict_of([("me", pickles.get(7)), ("lr", b"G?\xb9\x99\x99\x99\x99\x99\x9a")]),
                )
            ]
        )
        + b"b"
    )
    report = _inspect(tmp_path, [("w", pickles.tensor("0", 4)), ("hyper_parameters", config)])
    assert report.metadata["hyper_parameters"] == {"me": "<cycle>", "lr": 0.1}


def test_dictconfig_dag_is_bounded(tmp_path: Path) -> None:
    """60 levels of ``{"a": x, "b": x}``: 2**60 values if expanded; the metadata stops at its cap."""
    body = pickles.text("leaf") + pickles.put(0) + b"0"
    for _ in range(60):
        body += pickles.dict_of([("a", pickles.get(0)), ("b", pickles.get(0))]) + pickles.put(0) + b"0"
    config = pickles.record(
        "omegaconf.dictconfig", "DictConfig", pickles.dict_of([("_content", pickles.get(0))])
    )
    data = pickles.PROTO + b"}(" + pickles.text("w") + pickles.tensor("0", 4) + body
    data += pickles.text("hyper_parameters") + config + b"u" + pickles.STOP
    path = tmp_path / "dag.pt"
    path.write_bytes(pickles.torch_zip(data, {"0": 16}))
    report = paramscope.inspect(path)
    shown = json.dumps(report.metadata, ensure_ascii=False)
    assert "…" in shown and len(shown) < 1_000_000


def test_module_with_parameters_as_a_list_is_refused(tmp_path: Path) -> None:
    module = pickles.module("Linear", b"](" + pickles.tensor("0", 4) + b"e")
    with pytest.raises(InputError, match="_parameters is a list"):
        _inspect(tmp_path, [("model", module)])


def test_module_inside_itself_is_walked_once(tmp_path: Path) -> None:
    parameters = pickles.dict_of([("weight", pickles.tensor("0", 4))])
    module = (
        pickles.global_("torch.nn.modules.linear", "Linear")
        + b")\x81"
        + pickles.put(9)
        + pickles.dict_of(
            [("_parameters", parameters), ("_modules", pickles.dict_of([("loop", pickles.get(9))]))]
        )
        + b"b"
    )
    report = _inspect(tmp_path, [("model", module)])
    assert [(t.path, t.role) for t in report.tensors()] == [("weight", Role.FROZEN)]
    assert [n.path for n in report.nodes()] == [""]


def test_records_built_by_calls(tmp_path: Path) -> None:
    """``Linear()()``, ``set()()``: a class or set that is a record, not a name (unhashable,
    never looked up): a module of unknown type, a malformed buffer set."""
    parameters = ("_parameters", pickles.dict_of([("weight", pickles.tensor("0", 4))]))
    built = pickles.global_("torch.nn.modules.linear", "Linear") + b")R)\x81"
    module = built + pickles.dict_of([parameters, ("_modules", b"}")]) + b"b"
    report = _inspect(tmp_path, [("model", module)])
    assert report.root.type == "?"
    assert [t.path for t in report.tensors()] == ["weight"]
    odd_set = ("_non_persistent_buffers_set", pickles.global_("builtins", "set") + b")R)R")
    module = built + pickles.dict_of([parameters, ("_modules", b"}"), odd_set]) + b"b"
    with pytest.raises(InputError, match="_non_persistent_buffers_set is a Call"):
        _inspect(tmp_path, [("model", module)])


def test_module_dag_is_refused_by_the_budget(tmp_path: Path) -> None:
    """40 levels of a module holding the one below twice: 2**40 paths; refused, not walked."""
    parameters = pickles.dict_of([("weight", pickles.tensor("0", 4))])
    body = pickles.module("Linear", parameters) + pickles.put(0) + b"0"
    for _ in range(40):
        children = pickles.dict_of([("a", pickles.get(0)), ("b", pickles.get(0))])
        body += pickles.module("Sequential", b"}", children) + pickles.put(0) + b"0"
    data = pickles.PROTO + b"}(" + body + pickles.text("model") + pickles.get(0) + b"u" + pickles.STOP
    path = tmp_path / "dag.pt"
    path.write_bytes(pickles.torch_zip(data, {"0": 16}))
    with pytest.raises(InputError, match="references"):
        paramscope.inspect(path)
