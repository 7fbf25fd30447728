"""``paramscope.lightning``: the audit's checks inside a Lightning ``Trainer.fit()``.

``FreezeGuard`` is a ``lightning.pytorch.Callback`` (``pytorch_lightning.Callback`` where only
that package is installed); importing this module imports Lightning::

    from paramscope.lightning import FreezeGuard
    trainer = Trainer(callbacks=[FreezeGuard()])
    trainer = Trainer(callbacks=[BackboneFinetuning(unfreeze_backbone_at_epoch=5),
                                 FreezeGuard(check="epoch", unfreeze_schedule={5: "backbone"})])

When training starts it records the roles and fingerprints of every learnable tensor and of
the state inside frozen parts, and hooks the optimizers' ``step()``; after the first step, and
then each epoch or every ``n`` steps, it checks frozen tensors stayed bit-identical, trainable
ones moved, BatchNorm statistics of frozen modules did not drift (Lightning calls
``model.train()`` at each epoch start: frozen BatchNorm must go back to ``eval()`` in
``on_train_epoch_start``) and frozen parameters were not stepped by the optimizer (weight decay,
old moments). A layer that becomes trainable during training (another callback, a
scheduler) is an error unless ``unfreeze_schedule`` (epoch -> layer selectors) declares it.
"""

from __future__ import annotations

from paramscope.guards.guard import Guard, UnfreezeSchedule
from paramscope.guards.loop import torch_guard

try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package
    from pytorch_lightning import Callback


class FreezeGuard(Callback):
    def __init__(
        self,
        check: str = "first_batch",
        n: int | None = None,
        strict: bool = True,
        unfreeze_schedule: UnfreezeSchedule | None = None,
    ) -> None:
        Guard.validate(check, n)
        self.options = {"check": check, "n": n, "strict": strict, "unfreeze_schedule": unfreeze_schedule}
        self.guard: Guard | None = None

    @property
    def findings(self) -> list:
        """Every finding of the last training run (``paramscope.pitfalls.context.Finding``)."""
        return self.guard.findings if self.guard is not None else []

    def on_train_start(self, trainer, pl_module) -> None:
        self.guard = torch_guard(pl_module, list(trainer.optimizers), **self.options)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.guard.epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.guard.after_epoch()

    def on_train_end(self, trainer, pl_module) -> None:
        self.guard.probe.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.guard is not None:
            self.guard.probe.close()
