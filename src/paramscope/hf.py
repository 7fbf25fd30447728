"""``paramscope.hf``: the audit's checks inside a Hugging Face ``Trainer``.

``FreezeGuardCallback`` is a ``transformers.TrainerCallback``; importing this module imports
transformers::

    from paramscope.hf import FreezeGuardCallback
    Trainer(model=peft_model, args=args, train_dataset=data, callbacks=[FreezeGuardCallback()])

When training starts it records roles and fingerprints and hooks the optimizer's ``step()``;
after the first optimizer step, and then each epoch or every ``n`` steps, it checks that
frozen tensors stayed bit-identical and trainable ones moved. On a PEFT model the base must
stay frozen whatever its flags say, and the adapters must move: a base parameter set trainable
by mistake fails the first check, naming it.
"""

from __future__ import annotations

from transformers import TrainerCallback

from paramscope.guards.guard import Guard
from paramscope.guards.loop import torch_guard


class FreezeGuardCallback(TrainerCallback):
    def __init__(self, check: str = "first_batch", n: int | None = None, strict: bool = True) -> None:
        Guard.validate(check, n)
        self.options = {"check": check, "n": n, "strict": strict}
        self.guard: Guard | None = None

    @property
    def findings(self) -> list:
        """Every finding of the last training run (``paramscope.pitfalls.context.Finding``)."""
        return self.guard.findings if self.guard is not None else []

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs) -> None:
        self.guard = torch_guard(model, [optimizer], **self.options)

    def on_epoch_begin(self, args, state, control, **kwargs) -> None:
        self.guard.epoch = int(state.epoch or 0)

    def on_epoch_end(self, args, state, control, **kwargs) -> None:
        self.guard.after_epoch()

    def on_train_end(self, args, state, control, **kwargs) -> None:
        self.guard.probe.close()
