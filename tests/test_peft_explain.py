"""explain on live peft models: every LoRA/DoRA layer's formula (the wrapped layer's own plus
each adapter's) equals the real module's count, adapters are set against the frozen base, and
the model's numbers are the ones ``print_trainable_parameters()`` prints."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from torch import nn

import paramscope
from paramscope.cli import cli
from paramscope.ops.explain import explain_report
from tests.json_contract import validated

peft = pytest.importorskip("peft")  # in the dev extra
transformers = pytest.importorskip("transformers")

PRINTED = re.compile(r"trainable params: ([\d,]+) \|\| all params: ([\d,]+) \|\| trainable%: ([\d.]+)")


def gpt2_lora(**lora: object) -> nn.Module:
    """A tiny GPT-2 (built from its config: nothing downloaded) with LoRA on attention, the MLP
    (at rank 2 by ``rank_pattern``) and the token Embedding."""
    config = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0
    )
    targets = ["c_attn", "c_fc", "wte"]
    settings = peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, rank_pattern={"c_fc": 2}, **lora)
    return peft.get_peft_model(transformers.GPT2LMHeadModel(config), settings)


def gpt2_dora() -> nn.Module:
    return gpt2_lora(use_dora=True)


class ConvNet(nn.Module):
    """A grouped convolution, BatchNorm buffers and a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, groups=2)
        self.norm = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 6)


def conv_lora_two_adapters() -> nn.Module:
    """LoRA with a lora_B bias on a grouped Conv2d and a Linear, plus a second adapter, inactive."""
    model = peft.get_peft_model(
        ConvNet(), peft.LoraConfig(r=4, target_modules=["conv", "head"], lora_bias=True)
    )
    model.add_adapter("second", peft.LoraConfig(r=2, target_modules=["head"]))
    return model


def attention_lora() -> nn.Module:
    """LoRA on a MultiheadAttention, which peft wraps whole and its out_proj inside again."""
    model = nn.Sequential(nn.MultiheadAttention(8, 2), nn.Linear(8, 6))
    return peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["0", "1"]))


def printed(model: nn.Module, capsys: pytest.CaptureFixture) -> tuple[str, int, int]:
    """What ``print_trainable_parameters()`` prints, and its trainable and all params."""
    capsys.readouterr()
    model.print_trainable_parameters()
    line = capsys.readouterr().out.strip()
    match = PRINTED.fullmatch(line)
    assert match, line
    return line, int(match[1].replace(",", "")), int(match[2].replace(",", ""))


def lora_modules(model: nn.Module) -> dict[str, nn.Module]:
    """peft's LoRA layers by their node path."""
    found = model.named_modules()
    return {name.replace(".", "/"): m for name, m in found if isinstance(m, peft.tuners.lora.LoraLayer)}


@pytest.mark.parametrize("factory", [gpt2_lora, gpt2_dora, conv_lora_two_adapters])
def test_every_lora_formula_is_the_modules_count(factory, capsys: pytest.CaptureFixture) -> None:
    model = factory()
    explanation = explain_report(paramscope.inspect(model))
    assert not explanation.problems, [layer.problem for layer in explanation.problems]
    adapted = {layer.path: layer for layer in explanation.layers if layer.adapter is not None}
    modules = lora_modules(model)
    assert sorted(adapted) == sorted(modules)
    for path, layer in adapted.items():
        module = modules[path]
        assert not layer.formula.generic
        assert layer.formula.value == sum(p.numel() for p in module.parameters()), path
        base = sum(p.numel() for p in module.base_layer.parameters())
        assert layer.adapter.base["all"].params == base
        assert layer.adapter.adapters["all"].params == layer.formula.value - base
        assert layer.adapter.ranks == dict(module.r)
        assert layer.adapter.dora == any(module.use_dora.values())
    line, trainable, everything = printed(model, capsys)
    assert explanation.answer[1].endswith(line)
    report = explanation.report
    assert report.totals["trainable"].params == trainable
    assert report.totals["trainable"].params + report.totals["frozen"].params == everything


def test_ranks_and_modules_in_the_models_line() -> None:
    """rank_pattern's ranks, the Embedding target among the modules, DoRA named."""
    lora, dora = (explain_report(paramscope.inspect(factory())) for factory in (gpt2_lora, gpt2_dora))
    frozen = lora.report.totals["frozen"].params
    adapters = lora.report.totals["trainable"].params
    assert (
        lora.answer[0]
        == f"LoRA r=2–4 on 5 modules: {adapters:,} adapter params train; {frozen:,} base params frozen."
    )
    assert dora.answer[0].startswith("DoRA r=2–4 on 5 modules: ")
    embedding = next(layer for layer in lora.layers if layer.path.endswith("transformer/wte"))
    assert (
        embedding.formula.symbolic == "num_embeddings · embedding_dim + r · (num_embeddings + embedding_dim)"
    )
    assert embedding.formula.expression == "100 × 32 + 4 × (100 + 32)"


def test_an_inactive_adapter_is_counted_frozen() -> None:
    explanation = explain_report(paramscope.inspect(conv_lora_two_adapters()))
    head = next(layer for layer in explanation.layers if layer.path.endswith("model/head"))
    assert head.formula.symbolic == (
        "(in_features + 1) · out_features + r[default] · (in_features + out_features) + out_features"
        " + r[second] · (in_features + out_features)"
    )
    second = 2 * (8 + 6)  # lora_A 2 × 8, lora_B 6 × 2, no bias
    assert f" {second:,} adapter params are frozen (adapters not being trained)." in explanation.answer[0]


def test_explain_command_exits_0_and_groups_adapters() -> None:
    result = CliRunner().invoke(
        cli, ["explain", "tests.test_peft_explain:gpt2_lora", "--layer", "*/h/0/attn/c_attn"]
    )
    assert result.exit_code == 0, result.output
    assert "bug" not in result.output
    # c_attn: Conv1D 32 → 96 with bias (3,168 frozen); r=4: 4 × 32 + 96 × 4 = 512 trainable
    assert "LoRA default r=4: adapters 512 trainable · base 3,168 frozen" in result.output
    assert "LoRA r=2–4 on 5 modules" in result.output


def test_explain_json_and_summary_carry_the_adapter_split() -> None:
    reference = "tests.test_peft_explain:gpt2_lora"
    explained = CliRunner().invoke(
        cli, ["explain", reference, "--layer", "*/h/0/attn/c_attn", "--format", "json"]
    )
    (layer,) = validated(explained.output)["layers"]
    adapter = layer["adapter"]
    assert (adapter["ranks"], adapter["dora"]) == ({"default": 4}, False)
    assert adapter["adapters"]["trainable"]["params"] == 4 * 32 + 96 * 4
    assert adapter["base"]["frozen"]["params"] == 32 * 96 + 96
    summary = CliRunner().invoke(cli, ["summary", reference])
    assert summary.exit_code == 0, summary.output
    assert "LoRA r=2–4 on 5 modules" in summary.output


def test_summary_numbers_are_print_trainable_parameters(capsys: pytest.CaptureFixture) -> None:
    """Buffers (BatchNorm's running statistics) are in neither of peft's numbers."""
    model = conv_lora_two_adapters()
    _, trainable, everything = printed(model, capsys)
    result = CliRunner().invoke(
        cli, ["summary", "tests.test_peft_explain:conv_lora_two_adapters", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    torch_totals = json.loads(result.output)["conventions"]["torch"]
    assert (torch_totals["trainable_params"], torch_totals["total_params"]) == (trainable, everything)
    assert json.loads(result.output)["totals"]["state"]["params"] == 2 * 8 + 1  # BatchNorm buffers


def test_saved_adapter_counts_embedding_targets_and_knows_its_rank_pattern(tmp_path) -> None:
    """The folder ``save_pretrained`` writes: 5 adapted modules (the Embedding among them), and
    no rank warning where rank_pattern gives the ranks the tensors have."""
    model = gpt2_lora()
    model.save_pretrained(tmp_path)
    report = paramscope.inspect(tmp_path)
    assert report.warnings[0].startswith(f"a LORA adapter on {len(lora_modules(model))} module(s)")
    assert len(lora_modules(model)) == 5
    assert not any("rank" in warning for warning in report.warnings), report.warnings
    assert report.metadata["rank_pattern"] == {"c_fc": 2}
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "rank_pattern": {"c_fc": 3}}))
    warned = paramscope.inspect(tmp_path).warnings
    assert (
        "adapter_config.json says r=4, but lora_A tensors have rank 2, nor does its rank_pattern"
        in warned[-1]
    )


def test_adapters_nested_in_a_wrapped_layer(capsys: pytest.CaptureFixture) -> None:
    """peft's LoRA MultiheadAttention has no formula of ours: its parts are explained, the
    out_proj it wraps again among them, and no formula of the whole claims the adapters."""
    model = attention_lora()
    explanation = explain_report(paramscope.inspect(model))
    assert not explanation.problems, [layer.problem for layer in explanation.problems]
    adapted = {layer.path for layer in explanation.layers if layer.adapter is not None}
    assert adapted == {"base_model/model/0/base_layer/out_proj", "base_model/model/1"}
    assert explanation.answer[0].startswith(f"LoRA r=4 on {len(lora_modules(model))} modules: ")
    line, _, _ = printed(model, capsys)
    assert explanation.answer[1].endswith(line)
