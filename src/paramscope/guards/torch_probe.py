"""The guard's view of a live torch module (plain loops, Lightning, the Hugging Face Trainer).

Roles are read from ``requires_grad`` at each look; buffers are state. The fingerprints cover
every learnable tensor and the state inside frozen parts (BatchNorm statistics that must not
drift), counted once when tied. The optimizer's step hooks count the steps and see which
trainable parameters reached ``step()`` without a gradient (a ``no_grad`` path), and its param
groups say why a frozen parameter moved (weight decay, a zero-not-None gradient, old moments):
the evidence ``paramscope audit`` gathers for the same rules.

A PEFT model (``peft`` imported and a tuner layer in the module) also declares its base: every
tensor outside the adapters and ``modules_to_save`` must stay frozen, whatever its flag says.
"""

from __future__ import annotations

import sys

from paramscope.core.kinds import Kind
from paramscope.core.report import Report, Role
from paramscope.guards.checks import Look, Watch, watched_origins
from paramscope.guards.fingerprint import fingerprints
from paramscope.ops.audit_driver import StepFacts, note_torch_gradient
from paramscope.sources.live import inspect_live


class TorchProbe:
    def __init__(self, model, optimizers=(), on_step=None, look_due=lambda: True) -> None:
        """``optimizers``: the torch optimizers (or wrappers holding one as ``.optimizer``);
        ``on_step`` is called after each of their steps (the guard's step counter);
        ``look_due()`` says whether the guard looks after the coming step: only then are the
        gradients examined, so the steps in between cost nothing."""
        self.report: Report = inspect_live(model, Kind.TORCH)
        self.stale_compile = None
        self.watched = watched_origins(self.report)
        self.learnable = {p for p, t in self.watched.items() if _is_parameter(t)}
        self.watch = Watch(
            kind=Kind.TORCH,
            dtypes={t.path: t.dtype for t in self.report.tensors() if t.path in self.watched},
            frozen_part=frozenset(p for p in self.watched if p not in self.learnable),
            must_stay_frozen=frozenset(peft_base(model, self.report) & self.learnable),
        )
        self.optimizers = [_unwrap(o) for o in optimizers]
        self.look_due = look_due
        self.no_gradient: set[str] = set()
        self.zero_gradient: set[str] = set()
        self.hooks = [o.register_step_pre_hook(self._before_step) for o in self.optimizers]
        if on_step is not None:
            self.hooks += [o.register_step_post_hook(lambda *_: on_step()) for o in self.optimizers]

    def look(self, steps: int) -> Look:
        paths = list(self.watched)
        prints = fingerprints([self.watched[p] for p in paths])
        roles = {
            p: (Role.TRAINABLE if t.requires_grad else Role.FROZEN) if p in self.learnable else Role.STATE
            for p, t in self.watched.items()
        }
        return Look(roles, dict(zip(paths, prints, strict=True)), steps)

    def facts(self) -> StepFacts:
        """Where each parameter sits in the optimizers now, and the missing gradients seen."""
        facts = StepFacts(no_gradient=self.no_gradient)
        self.no_gradient = set()
        groups = {id(p): (o, g) for o in self.optimizers for g in o.param_groups for p in g["params"]}
        for path in self.learnable:
            param = self.watched[path]
            owner = groups.get(id(param))
            if owner is None:
                if param.requires_grad and self.optimizers:
                    facts.not_in_optimizer.add(path)
                continue
            optimizer, group = owner
            if param.requires_grad:
                if group.get("lr") == 0:
                    facts.zero_learning_rate.add(path)
                continue
            if group.get("weight_decay", 0):
                facts.weight_decay.add(path)
            if param.grad is not None:
                facts.stale_gradient.add(path)
            if optimizer.state.get(param):
                facts.optimizer_state.add(path)
        facts.no_gradient -= facts.not_in_optimizer
        return facts

    def close(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks = []

    def without_signal(self) -> set[str]:
        """Trainable tensors whose gradient was exactly zero in the step before the look: they may
        rightly stay unchanged (LoRA's A matrices while B is still zero, a dead unit)."""
        zero, self.zero_gradient = self.zero_gradient, set()
        return zero

    def _before_step(self, optimizer, args, kwargs) -> None:
        """Before a step the guard will judge: which trainable parameters got no gradient (None:
        cut off the loss) or an all-zero one."""
        if not self.look_due():
            return
        in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
        for path in self.learnable:
            param = self.watched[path]
            if id(param) in in_optimizer and param.requires_grad:
                note_torch_gradient(path, param.grad, self.no_gradient, self.zero_gradient)


def _is_parameter(tensor) -> bool:
    import torch

    return isinstance(tensor, torch.nn.Parameter)


def _unwrap(optimizer):
    """Lightning's LightningOptimizer and accelerate's AcceleratedOptimizer (an Optimizer subclass
    whose own step hooks never run) hold the torch optimizer that steps."""
    while getattr(optimizer, "optimizer", None) is not None:
        optimizer = optimizer.optimizer
    return optimizer


def peft_base(model, report: Report) -> set[str]:
    """Tensor paths of a PEFT model's base: everything but the adapters' tensors and the copies
    in ``modules_to_save``. Empty for any other module (and when peft was never imported)."""
    tuners = sys.modules.get("peft.tuners.tuners_utils")
    if tuners is None or not any(isinstance(m, tuners.BaseTunerLayer) for m in model.modules()):
        return set()
    adapter_ids = set()
    for module in model.modules():
        names = (
            getattr(module, "adapter_layer_names", ()) if isinstance(module, tuners.BaseTunerLayer) else ()
        )
        for name in names:
            adapter_ids |= {id(p) for p in getattr(module, name).parameters()}
        if hasattr(module, "modules_to_save") and type(module).__name__.endswith("ModulesToSaveWrapper"):
            adapter_ids |= {id(p) for p in module.modules_to_save.parameters()}
    return {path for path, t in report.origins.items() if _is_parameter(t) and id(t) not in adapter_ids}
