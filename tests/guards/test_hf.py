"""paramscope.hf.FreezeGuardCallback in a real Hugging Face Trainer run: a tiny BERT built from a
config (nothing downloaded) with a PEFT LoRA adapter."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from paramscope.errors import FreezeViolation
from paramscope.hf import FreezeGuardCallback

WORD_EMBEDDINGS = "base_model.model.bert.embeddings.word_embeddings.weight"


def _lora_model():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    lora = LoraConfig(task_type="SEQ_CLS", r=2, lora_alpha=4, target_modules=["query", "value"])
    return get_peft_model(BertForSequenceClassification(config), lora)


def _train(model, tmp_path, callback: FreezeGuardCallback) -> None:
    generator = torch.Generator().manual_seed(0)
    data = [
        {"input_ids": torch.randint(0, 50, (8,), generator=generator), "labels": torch.tensor(i % 2)}
        for i in range(4)
    ]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=0.01,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    Trainer(model=model, args=args, train_dataset=data, callbacks=[callback]).train()


def test_lora_base_stays_identical_and_adapters_move(tmp_path) -> None:
    model = _lora_model()
    callback = FreezeGuardCallback()
    _train(model, tmp_path, callback)
    guard = callback.guard
    assert guard.findings == [] and guard.steps == 2
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or "modules_to_save" in name for name in trainable)
    base = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert len(guard.probe.watch.must_stay_frozen) == len(base)


def test_a_base_unfrozen_by_mistake_fails(tmp_path) -> None:
    model = _lora_model()
    model.get_parameter(WORD_EMBEDDINGS).requires_grad_(True)
    with pytest.raises(FreezeViolation) as raised:
        _train(model, tmp_path, FreezeGuardCallback())
    (finding,) = raised.value.findings
    assert finding.rule == "frozen-changed"
    assert finding.tensors == (WORD_EMBEDDINGS.replace(".", "/"),)
    assert "only the adapters may train" in str(raised.value) and "modules_to_save" in str(raised.value)
