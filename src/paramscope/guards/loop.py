"""``paramscope.guard``: the audit's checks inside a plain PyTorch training loop.

No assumption about the loop: the guard hooks the optimizer's ``step()`` (torch's step
hooks), so it counts steps itself, looks after the first one and every ``every`` steps, and
raises from inside the ``optimizer.step()`` that broke the freeze. ``check()`` looks on demand;
as a context manager it also looks once more when the block ends and removes its hooks.
"""

from __future__ import annotations

from paramscope.guards.guard import Guard
from paramscope.guards.torch_probe import TorchProbe
from paramscope.pitfalls.context import Finding


class LoopGuard:
    """A guard on one torch module and its optimizer(s); see :func:`guard`."""

    def __init__(self, model, optimizer, every: int | None, strict: bool, unfreeze_schedule=None) -> None:
        optimizers = (
            [] if optimizer is None else list(optimizer) if isinstance(optimizer, list) else [optimizer]
        )
        self.guard = torch_guard(
            model,
            optimizers,
            check="every_n" if every else "first_batch",
            n=every,
            strict=strict,
            unfreeze_schedule=unfreeze_schedule,
            schedule_unit="step",
        )
        self.probe = self.guard.probe

    @property
    def findings(self) -> list[Finding]:
        return self.guard.findings

    @property
    def steps(self) -> int:
        return self.guard.steps

    def check(self) -> list[Finding]:
        """Judge everything since the last look. Without an optimizer to hook, each call counts
        as one step having run."""
        if not self.probe.optimizers:
            self.guard.steps += 1
        return self.guard.check()

    def close(self) -> None:
        self.probe.close()

    def __enter__(self) -> LoopGuard:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close()
        if exc_type is None and self.guard.steps > self.guard.baseline.steps:
            self.guard.check()


def torch_guard(model, optimizers: list, **options) -> Guard:
    """A guard on a torch module whose optimizers' steps it counts through their step hooks;
    ``options`` are :class:`Guard`'s. Close it with ``guard.probe.close()``."""
    built: list[Guard] = []
    probe = TorchProbe(
        model,
        optimizers,
        on_step=lambda: built[0].after_step(),
        look_due=lambda: built[0].due(built[0].steps + 1),
    )
    built.append(Guard(probe, **options))
    return built[0]


def guard(
    model, optimizer=None, *, every: int | None = None, strict: bool = True, unfreeze_schedule=None
) -> LoopGuard:
    """Watch a torch module while your own loop trains it.

    ``optimizer`` (one, or a list) is hooked: after its first ``step()`` and every ``every``
    steps the guard checks that frozen tensors stayed bit-identical, trainable ones moved and
    BatchNorm statistics inside frozen parts did not drift, and raises
    :class:`~paramscope.errors.FreezeViolation` (``strict=False``: a
    :class:`~paramscope.errors.FreezeWarning`) naming the tensors, the rule and the fix::

        with paramscope.guard(model, optimizer, every=100):
            for batch in loader:
                ...
                optimizer.step()

    ``unfreeze_schedule`` declares intended unfreezing in optimizer steps, ``{step: "layer
    path"}`` (or a list of selectors): from that step on, those tensors may become trainable.
    """
    return LoopGuard(model, optimizer, every, strict, unfreeze_schedule)
