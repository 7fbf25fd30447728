"""PEFT adapter folders, saved by peft's own ``save_pretrained``: every tensor trainable, the
count equal to the live PEFT model's trainable parameters, the config's facts as metadata."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import paramscope
from paramscope.cli import cli
from paramscope.core.report import Role
from paramscope.errors import InputError
from tests.json_contract import validated

peft = pytest.importorskip("peft")  # in the dev extra
transformers = pytest.importorskip("transformers")


def peft_model(base: Path, **lora: object):
    """A LoRA model on a tiny GPT-2 saved in ``base``, loaded from there as from_pretrained
    would be: the adapter names it (a local folder, so saving looks nothing up online)."""
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)
    transformers.GPT2LMHeadModel(config).save_pretrained(base)
    model = transformers.GPT2LMHeadModel.from_pretrained(base)
    return peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, **lora))


def trainable(model) -> int:
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count == model.get_nb_trainable_parameters()[0]  # print_trainable_parameters()'s number
    return count


@pytest.fixture(scope="module")
def lora(tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("lora")
    model = peft_model(folder / "base", target_modules=["c_attn"])
    model.save_pretrained(folder / "adapter")
    return folder / "adapter", model


def test_lora_adapter(lora) -> None:
    folder, model = lora
    report = paramscope.inspect(folder)
    assert report.source.kind == "peft_adapter"
    assert report.totals["trainable"].params == trainable(model) == report.totals["all"].params
    assert all(t.role is Role.TRAINABLE for t in report.tensors())
    saved = peft.get_peft_model_state_dict(model)
    assert {t.path: t.shape for t in report.tensors()} == {
        key.replace(".", "/"): tuple(value.shape) for key, value in saved.items()
    }
    attention = "base_model/model/transformer/h/0/attn/c_attn"
    shapes = {t.path: t.shape for t in report.tensors()}
    assert shapes[f"{attention}/lora_A/weight"] == (4, 32)  # r × in
    assert shapes[f"{attention}/lora_B/weight"] == (96, 4)  # out × r
    assert report.metadata["r"] == 4 and report.metadata["lora_alpha"] == 8
    assert report.metadata["peft_type"] == "LORA" and report.metadata["target_modules"] == ["c_attn"]
    base = str(folder.parent / "base")
    assert report.metadata["base_model_name_or_path"] == base
    assert report.warnings[0].startswith(f"a LORA adapter on 2 module(s) for {base}")
    assert not any("stores no trainability" in w for w in report.warnings)


def test_dora_with_modules_to_save_as_bin(tmp_path: Path) -> None:
    """DoRA's magnitude vectors and a module saved whole, in a pickle (``adapter_model.bin``)."""
    model = peft_model(
        tmp_path / "base", target_modules=["c_attn", "c_fc"], use_dora=True, modules_to_save=["ln_f"]
    )
    model.save_pretrained(tmp_path / "adapter", safe_serialization=False)
    assert (tmp_path / "adapter" / "adapter_model.bin").is_file()
    report = paramscope.inspect(tmp_path / "adapter")
    assert report.totals["trainable"].params == trainable(model) == report.totals["all"].params
    paths = {t.path for t in report.tensors()}
    assert "base_model/model/transformer/h/1/mlp/c_fc/lora_magnitude_vector" in paths
    assert "base_model/model/transformer/ln_f/weight" in paths
    assert report.pickle is not None and report.pickle.verdict.value == "data-only"
    assert report.metadata["use_dora"] is True and report.metadata["modules_to_save"] == ["ln_f"]


def test_summary_command(lora) -> None:
    folder, model = lora
    result = CliRunner().invoke(cli, ["summary", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = validated(result.output)
    assert data["source"]["kind"] == "peft_adapter"
    assert data["totals"]["trainable"]["params"] == trainable(model)


def test_weights_detected_by_content(lora, tmp_path: Path) -> None:
    """A ``.bin`` that holds safetensors bytes is read as safetensors; the config decides
    that the folder is an adapter, and a rank the config does not say is pointed out."""
    folder, model = lora
    shutil.copy(folder / "adapter_model.safetensors", tmp_path / "adapter_model.bin")
    config = json.loads((folder / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))
    report = paramscope.inspect(tmp_path)
    assert report.totals["trainable"].params == trainable(model)
    assert any("says r=8, but lora_A tensors have rank 4" in w for w in report.warnings)


def hostile_folder(lora, tmp_path: Path, config: object) -> Path:
    folder, _ = lora
    shutil.copy(folder / "adapter_model.safetensors", tmp_path)
    text = config if isinstance(config, str) else json.dumps(config)
    (tmp_path / "adapter_config.json").write_text(text)
    return tmp_path


BASE = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["c_attn"]}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**BASE, "r": -4}, "r must be a positive integer"),
        ({**BASE, "r": 0}, "r must be a positive integer"),
        ({**BASE, "r": "4"}, "r should be an integer, not text"),
        ({**BASE, "r": True}, "r should be an integer"),
        ({**BASE, "r": 2**80}, "r must be a positive integer"),
        ({**BASE, "lora_alpha": [8]}, "lora_alpha should be"),
        ({**BASE, "target_modules": 5}, "target_modules should be a list"),
        ({**BASE, "target_modules": ["c_attn", 5]}, "target_modules should be text"),
        ({**BASE, "peft_type": None}, "no peft_type"),
        ({**BASE, "use_dora": "yes"}, "use_dora should be true/false"),
        ([BASE], "adapter_config.json should be an object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_hostile_config(lora, tmp_path: Path, config: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        paramscope.inspect(hostile_folder(lora, tmp_path, config))


def test_huge_config_refused_before_parsing(lora, tmp_path: Path) -> None:
    folder = hostile_folder(lora, tmp_path, {**BASE, "padding": "x" * 20_000})
    with paramscope.limits(header_bytes=10_000), pytest.raises(InputError, match="exceeds 10,000 bytes"):
        paramscope.inspect(folder)


def test_folder_without_weights(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps(BASE))
    with pytest.raises(InputError, match=r"without adapter_model\.safetensors or adapter_model\.bin"):
        paramscope.inspect(tmp_path)
