"""paramscope.lightning.FreezeGuard in real Lightning fits: a frozen BatchNorm backbone that
Lightning's model.train() puts back in training mode, and a declared unfreeze schedule."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BackboneFinetuning

from paramscope.errors import FreezeViolation
from paramscope.lightning import FreezeGuard


class Finetune(LightningModule):
    def __init__(self, eval_frozen_batchnorm: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 2)
        self.eval_frozen_batchnorm = eval_frozen_batchnorm

    def training_step(self, batch, batch_index):
        return self.head(self.backbone(batch[0])).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)

    def on_train_epoch_start(self) -> None:
        if self.eval_frozen_batchnorm:  # the catalogue's fix: Lightning called model.train() just before
            self.backbone.eval()

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(8, 4, generator=torch.Generator().manual_seed(1)))
        return torch.utils.data.DataLoader(data, batch_size=4)


def _fit(module: LightningModule, *callbacks, epochs: int = 1) -> None:
    trainer = Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        callbacks=list(callbacks),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module)


def _frozen(module: Finetune) -> Finetune:
    module.backbone.requires_grad_(False)
    return module


def test_frozen_batchnorm_in_train_mode_fails_then_passes_once_fixed() -> None:
    module = _frozen(Finetune())
    with pytest.raises(FreezeViolation) as raised:
        _fit(module, FreezeGuard())
    (finding,) = raised.value.findings
    assert finding.rule == "frozen-bn-train-mode"
    batchnorm_buffers = {f"backbone/1/{name}" for name, _ in module.backbone[1].named_buffers()}
    assert set(finding.tensors) == batchnorm_buffers
    assert "fix: after every model.train(), put the frozen BatchNorm modules in eval()" in str(raised.value)

    guard = FreezeGuard(check="epoch")
    fixed = _frozen(Finetune(eval_frozen_batchnorm=True))
    _fit(fixed, guard, epochs=2)
    assert guard.guard.findings == []
    assert guard.guard.steps == 4  # 2 epochs of 2 batches: every optimizer step counted


class Unfreezing(BackboneFinetuning):
    """Lightning's own schedule, on a backbone without BatchNorm statistics to protect."""

    def freeze_before_training(self, pl_module) -> None:
        self.freeze(pl_module.backbone, train_bn=True)


@pytest.mark.parametrize("declared", [True, False])
def test_an_unfreeze_schedule_is_an_intended_role_change(declared: bool) -> None:
    schedule = {1: "backbone"} if declared else None
    guard = FreezeGuard(check="epoch", unfreeze_schedule=schedule)
    module = Finetune()
    if declared:
        _fit(module, Unfreezing(unfreeze_backbone_at_epoch=1), guard, epochs=2)
        assert guard.guard.findings == []
        assert any("backbone/0/weight" in note for note in guard.guard.notes)
        return
    with pytest.raises(FreezeViolation, match=r"\[frozen-changed\].*backbone/0/weight"):
        _fit(module, Unfreezing(unfreeze_backbone_at_epoch=1), guard, epochs=2)
