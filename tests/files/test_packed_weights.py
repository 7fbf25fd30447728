"""Packed quantized weights in files: each one logical weight, its scales and zero points state.

bitsandbytes quantizes on CPU, so its files are real: a model of ``Linear4bit`` (nf4 and fp4,
with and without double quantization) and ``Linear8bitLt`` moved with ``.to("cpu")``, its
state dict written by ``safetensors.torch.save_file`` and ``torch.save``. transformers'
``FP8Linear`` writes its own FP8 layers. GPTQ and AWQ quantizers need a GPU; their files are
built with torch and safetensors exactly as the quantizer sizes its buffers (cited at each
builder). Every logical count is checked against the float model's own ``numel()``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import paramscope
from paramscope.core.report import Report, Role

bnb = pytest.importorskip("bitsandbytes")  # in the dev extra

IN, HIDDEN, OUT = 128, 64, 40


def float_model(bias: bool = True) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(IN, HIDDEN, bias=bias), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, OUT, bias=bias)
    )


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def by_path(report: Report) -> dict:
    return {t.path: t for t in report.tensors()}


def weights_and_state(report: Report) -> tuple[int, dict[str, str]]:
    """(parameters outside state, companion path -> what it is) of a file report."""
    companions = {t.path: t.quantized for t in report.tensors() if t.role is Role.STATE}
    return report.totals["all"].params - report.totals["state"].params, companions


# ---------------------------------------------------------------- bitsandbytes, real files


def bnb_model(quant_type: str, double: bool) -> tuple[torch.nn.Module, int]:
    """(the quantized model, its parameters before quantization)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        bnb.nn.Linear4bit(IN, HIDDEN, quant_type=quant_type, compress_statistics=double),
        torch.nn.ReLU(),
        bnb.nn.Linear8bitLt(HIDDEN, OUT, has_fp16_weights=False),
    )
    before = numel(model)
    assert before == numel(float_model())
    return model.to("cpu"), before  # .to() quantizes both layers


@pytest.mark.parametrize(
    ("quant_type", "double"), [("nf4", True), ("nf4", False), ("fp4", True), ("fp4", False)]
)
def test_bitsandbytes_safetensors(tmp_path: Path, quant_type: str, double: bool) -> None:
    model, before = bnb_model(quant_type, double)
    live = paramscope.inspect(model)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    report = paramscope.inspect(path)
    tensors = by_path(report)
    weight = tensors["0/weight"]
    assert (weight.shape, weight.params, weight.bytes) == ((HIDDEN, IN), HIDDEN * IN, HIDDEN * IN // 2)
    assert (weight.dtype, weight.quantized, weight.role) == ("uint8", quant_type, Role.UNKNOWN)
    assert live.totals["all"].params == before  # the live model's count, 4-bit weight in full
    params, companions = weights_and_state(report)
    assert params == before
    nested = {"0/weight.nested_absmax": "absmax", "0/weight.nested_quant_map": "quant-map"}
    assert companions == {
        "0/weight.absmax": "absmax",
        "0/weight.quant_map": "quant-map",
        **(nested if double else {}),
        f"0/weight.quant_state.bitsandbytes__{quant_type}": "quant-state",
        "2/SCB": "scale",
        "2/weight_format": "format",
    }
    int8 = tensors["2/weight"]
    assert (int8.shape, int8.params, int8.bytes, int8.quantized) == (
        (OUT, HIDDEN),
        OUT * HIDDEN,
        OUT * HIDDEN,
        "int8",
    )
    assert f"1 bitsandbytes {quant_type.upper()} layer: {HIDDEN * IN:,} logical parameters" in " ".join(
        report.warnings
    )


def test_bitsandbytes_torch_save(tmp_path: Path) -> None:
    """torch files give no tensor data to read: the 4-bit count comes from the packed size."""
    model, before = bnb_model("nf4", True)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    report = paramscope.inspect(path)
    params, companions = weights_and_state(report)
    assert params == before == paramscope.inspect(model).totals["all"].params
    weight = by_path(report)["0/weight"]
    assert (weight.params, weight.bytes, weight.quantized) == (HIDDEN * IN, HIDDEN * IN // 2, "nf4")
    assert len(companions) == 7
    assert report.totals["state"].tensors == 7 and report.totals["unknown"].tensors == 4


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (b'{"quant_type": "nf4", "blocksize": 64, "shape": [64, 64]', "not valid JSON"),
        (b'["nf4"]', "not a JSON object"),
        (b'{"quant_type": "fp4", "blocksize": 64, "shape": [64, 128]}', "says 'fp4'"),
        (b'{"quant_type": "nf4", "blocksize": 0, "shape": [64, 128]}', "blocksize 0"),
        (
            b'{"quant_type": "nf4", "blocksize": 64, "shape": [64, 256]}',
            "shape [64, 256] is not what is stored",
        ),
        (b'{"quant_type": "nf4", "blocksize": 64, "shape": [-1]}', "bad dimension"),
    ],
)
def test_bitsandbytes_quant_state_that_does_not_fit(tmp_path: Path, state: bytes, why: str) -> None:
    """A quant state that does not describe its weight leaves the layer as stored, and says why."""
    model, _ = bnb_model("nf4", False)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["0.weight.quant_state.bitsandbytes__nf4"] = torch.tensor(list(state), dtype=torch.uint8)
    save_file(tensors, tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    weight = by_path(report)["0/weight"]
    assert (weight.role, weight.quantized, weight.params) == (Role.STATE, None, HIDDEN * IN // 2)
    assert any("e.g. '0.weight'" in w and why in w for w in report.warnings), report.warnings
    assert by_path(report)["2/weight"].quantized == "int8"  # the other layer still recognised


# ---------------------------------------------------------------- GPTQ and AWQ, built as written


def gptq_state(
    model: torch.nn.Sequential, bits: int, group: int, g_idx: bool = True, pack=torch.int32
) -> dict:
    """The buffers of AutoGPTQ's ``auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py``
    ``QuantLinear.__init__`` (gptqmodel's ``PackableQuantLinear`` adds other pack dtypes):
    qweight (in // 32 * bits, out) int32, qzeros (ceil(in / group), out // 32 * bits) int32,
    scales (ceil(in / group), out) float16, g_idx [i // group for i in range(in)] int32,
    bias (out,) float16. Values are random: only the layout matters to a count."""
    width = torch.iinfo(pack).bits
    state = {}
    for index, linear in ((0, model[0]), (2, model[2])):
        features, out = linear.in_features, linear.out_features
        groups = math.ceil(features / group)
        state[f"{index}.qweight"] = torch.randint(-100, 100, (features // width * bits, out), dtype=pack)
        state[f"{index}.qzeros"] = torch.randint(-100, 100, (groups, out // width * bits), dtype=pack)
        state[f"{index}.scales"] = torch.rand(groups, out).half()
        if g_idx:
            state[f"{index}.g_idx"] = torch.tensor([i // group for i in range(features)], dtype=torch.int32)
        if linear.bias is not None:
            state[f"{index}.bias"] = linear.bias.detach().half()
    return state


def awq_state(model: torch.nn.Sequential, group: int) -> dict:
    """The buffers of AutoAWQ's ``awq/modules/linear/gemm.py`` ``WQLinear_GEMM.__init__``
    (w_bit 4): qweight (in, out // 8) int32, qzeros (in // group, out // 8) int32, scales
    (in // group, out) float16, bias (out,) float16."""
    state = {}
    for index, linear in ((0, model[0]), (2, model[2])):
        features, out = linear.in_features, linear.out_features
        state[f"{index}.qweight"] = torch.randint(-100, 100, (features, out // 8), dtype=torch.int32)
        state[f"{index}.qzeros"] = torch.randint(-100, 100, (features // group, out // 8), dtype=torch.int32)
        state[f"{index}.scales"] = torch.rand(features // group, out).half()
        state[f"{index}.bias"] = linear.bias.detach().half()
    return state


def layer_sizes(model: torch.nn.Sequential) -> dict[str, tuple[int, int]]:
    return {
        "0": (model[0].in_features, model[0].out_features),
        "2": (model[2].in_features, model[2].out_features),
    }


@pytest.mark.parametrize(("bits", "group"), [(4, 32), (8, 64), (2, 128), (3, 32)])
def test_gptq(tmp_path: Path, bits: int, group: int) -> None:
    model = float_model()
    save_file(gptq_state(model, bits, group), tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    tensors = by_path(report)
    for layer, (features, out) in layer_sizes(model).items():
        weight = tensors[f"{layer}/qweight"]
        assert (weight.shape, weight.params) == ((features, out), features * out)
        assert (weight.dtype, weight.bytes, weight.role) == (
            "int32",
            features * out * bits // 8,
            Role.UNKNOWN,
        )
        assert weight.quantized == f"gptq-{bits}bit"
        assert {tensors[f"{layer}/{n}"].quantized for n in ("qzeros", "scales", "g_idx")} == {
            "zero-point",
            "scale",
            "group-index",
        }
        assert tensors[f"{layer}/bias"].role is Role.UNKNOWN and tensors[f"{layer}/bias"].quantized is None
    params, companions = weights_and_state(report)
    assert params == numel(model)
    assert len(companions) == 6
    sentence = f"2 GPTQ {bits}-bit layers: {IN * HIDDEN + HIDDEN * OUT:,} logical parameters stored in"
    assert any(w.startswith(sentence) for w in report.warnings), report.warnings


def test_gptq_pack_dtypes_and_torch_save(tmp_path: Path) -> None:
    """gptqmodel packs into int16 too; torch.save of the state dict reads the same."""
    model = float_model()
    torch.save(gptq_state(model, 4, 32, pack=torch.int16), tmp_path / "model.pt")
    report = paramscope.inspect(tmp_path / "model.pt")
    assert weights_and_state(report)[0] == numel(model)
    assert by_path(report)["0/qweight"].quantized == "gptq-4bit"


def test_gptq_without_g_idx_and_its_config(tmp_path: Path) -> None:
    """No g_idx: the input size comes from qweight unpacked. The config beside the file is
    read; where it disagrees with the shapes, the shapes win and the report says so."""
    model = float_model(bias=False)
    save_file(gptq_state(model, 4, 32, g_idx=False), tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    assert weights_and_state(report)[0] == numel(model)
    assert not any("says" in w for w in report.warnings)
    (tmp_path / "quantize_config.json").write_text(json.dumps({"bits": 8, "group_size": 32}))
    report = paramscope.inspect(tmp_path / "model.safetensors")
    assert weights_and_state(report)[0] == numel(model)
    assert "quantize_config.json says 8-bit; the tensors' shapes say 4-bit" in " ".join(report.warnings)
    (tmp_path / "quantize_config.json").write_text("{not json")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    assert weights_and_state(report)[0] == numel(model)
    assert any("quantize_config.json beside the file is not usable" in w for w in report.warnings)


def test_config_decides_where_shapes_cannot(tmp_path: Path) -> None:
    """Eight outputs and no g_idx leave 4 and 8 bits both possible; config.json's
    quantization_config (as transformers writes it) says which."""
    state = {
        "q.qweight": torch.zeros(8, 8, dtype=torch.int32),  # in = 64 at 4 bits, 32 at 8
        "q.qzeros": torch.zeros(1, 0, dtype=torch.int32),  # out // 32 * bits = 0 for out = 8
        "q.scales": torch.zeros(1, 8, dtype=torch.float16),
    }
    save_file(state, tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    assert by_path(report)["q/qweight"].role is Role.STATE  # left as stored
    assert any(
        "not fitting the quantized layout" in w and "fit 2 or 4 or 8 bits" in w for w in report.warnings
    )
    config = {"quantization_config": {"quant_method": "gptq", "bits": 8}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    weight = by_path(paramscope.inspect(tmp_path / "model.safetensors"))["q/qweight"]
    assert (weight.params, weight.quantized) == (32 * 8, "gptq-8bit")


def test_awq(tmp_path: Path) -> None:
    model = float_model()
    save_file(awq_state(model, 32), tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    tensors = by_path(report)
    for layer, (features, out) in layer_sizes(model).items():
        weight = tensors[f"{layer}/qweight"]
        assert (weight.shape, weight.params, weight.bytes) == (
            (features, out),
            features * out,
            features * out // 2,
        )
        assert weight.quantized == "awq-4bit"
    assert weights_and_state(report)[0] == numel(model)
    assert any(w.startswith("2 AWQ 4-bit layers") for w in report.warnings)


def test_names_alone_are_not_a_layout(tmp_path: Path) -> None:
    """Tensors named like GPTQ's but sized otherwise, or alone, stay integer state."""
    state = {
        "a.qweight": torch.zeros(16, 40, dtype=torch.int32),
        "a.qzeros": torch.zeros(4, 5, dtype=torch.int32),
        "a.scales": torch.zeros(3, 40, dtype=torch.float16),  # 3 groups, qzeros says 4
        "b.qweight": torch.zeros(16, 40, dtype=torch.int32),  # no qzeros, no scales
        "c.weight": torch.zeros(4, 4, dtype=torch.int8),  # int8, no SCB
    }
    save_file(state, tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    assert all(t.role is Role.STATE and t.quantized is None for t in report.tensors() if t.dtype != "float16")
    assert report.totals["all"].params == sum(t.numel() for t in state.values())
    assert any(
        "not fitting the quantized layout their names suggest: 1 layer, e.g. 'a.qweight'" in w
        for w in report.warnings
    )


# ---------------------------------------------------------------- FP8, written by transformers


@pytest.mark.parametrize("block", [(16, 16), (128, 128), None])
def test_fp8_linear(tmp_path: Path, block) -> None:
    """transformers' ``FP8Linear`` (integrations/finegrained_fp8.py): a float8_e4m3fn weight
    and ``weight_scale_inv`` per block (ceil(out / b0), ceil(in / b1)) or per tensor."""
    fp8 = pytest.importorskip("transformers.integrations.finegrained_fp8")
    model = torch.nn.Sequential(
        fp8.FP8Linear(IN, HIDDEN, block_size=block),
        torch.nn.ReLU(),
        fp8.FP8Linear(HIDDEN, OUT, block_size=block),
    )
    for param in model.parameters():
        param.data = torch.rand(param.shape).to(param.dtype)  # torch.empty may hold NaN bit patterns
    state = model.state_dict()
    save_file(state, tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    tensors = by_path(report)
    assert tensors["0/weight"].quantized == "fp8-e4m3" and tensors["0/weight"].bytes == IN * HIDDEN
    assert (
        tensors["0/weight_scale_inv"].role is Role.STATE
        and tensors["0/weight_scale_inv"].quantized == "scale"
    )
    assert weights_and_state(report)[0] == numel(float_model(bias=False))
    assert report.totals["state"].params == sum(v.numel() for k, v in state.items() if "scale" in k)


def test_fp8_compressed_tensors_layout(tmp_path: Path) -> None:
    """compressed-tensors' float-quantized format: ``weight_scale`` per output row (out, 1)
    and a per-tensor ``input_scale``, as its ``initialize_module_for_quantization`` registers."""
    model = float_model(bias=False)
    state = {}
    for index in (0, 2):
        weight = model[index].weight.detach()
        state[f"{index}.weight"] = weight.to(torch.float8_e4m3fn)
        state[f"{index}.weight_scale"] = weight.abs().amax(dim=1, keepdim=True) / 448
        state[f"{index}.input_scale"] = torch.ones(1)
    save_file(state, tmp_path / "model.safetensors")
    report = paramscope.inspect(tmp_path / "model.safetensors")
    assert weights_and_state(report)[0] == numel(model)
    assert {t.quantized for t in report.tensors() if t.role is Role.STATE} == {"scale"}
    assert report.totals["state"].tensors == 4
