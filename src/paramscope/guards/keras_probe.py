"""The guard's view of a live Keras 3 (any backend) or tf.keras model.

Roles are read from ``model.trainable_weights`` at each look, so they follow each generation's
own rule (Keras 3 per variable, tf.keras per parent). Fingerprints are computed with the
variable's own framework: torch tensors on Keras's torch backend, ``keras.ops`` on jax and
tensorflow, TensorFlow for tf.keras. ``stale_compile`` is what ``paramscope lint`` reads: the
layers whose ``trainable`` flag changed since ``compile()``; the guard warns at train start
and names that rule when the first step then moves a frozen tensor (tf.keras trains the old
set) or leaves a trainable one alone. tf.keras's ``fit()`` puts the compiled flags back on
the layers while it runs; the probe reads roles under the flags the user set, which that
``fit()`` keeps aside (``_flags_fit_set_aside``).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

from paramscope.core.kinds import Family, Kind
from paramscope.core.report import Report, Role
from paramscope.guards.checks import LEARNABLE, Look, Watch, watched_origins
from paramscope.guards.fingerprint import fingerprints
from paramscope.ops.audit_driver import StepFacts
from paramscope.sources.live import inspect_live, live_kind


class KerasProbe:
    def __init__(self, model) -> None:
        kind = live_kind(model)
        if kind is None or kind.family is Family.TORCH:
            raise TypeError(f"a Keras guard needs a Keras model, got {type(model).__name__}")
        self.model, self.tf_keras = model, kind is Kind.TF_KERAS
        self.user_flags = _flags_fit_set_aside(model) if self.tf_keras else None
        with self._as_the_user_set_it():
            self.report: Report = inspect_live(model, kind)
        self.stale_compile = self.report.changed_since_compile or None
        self.watched = watched_origins(self.report)
        self.learnable = {t.path for t in self.report.tensors() if t.counted and t.role in LEARNABLE}
        self.watch = Watch(
            kind=kind,
            dtypes={t.path: t.dtype for t in self.report.tensors() if t.path in self.watched},
            frozen_part=frozenset(p for p in self.watched if p not in self.learnable),
        )

    def look(self, steps: int) -> Look:
        paths = list(self.watched)
        prints = fingerprints([self.watched[p] for p in paths], tf_keras=self.tf_keras)
        with self._as_the_user_set_it():
            trainable = {id(v) for v in self.model.trainable_weights}
        roles = {
            p: (Role.TRAINABLE if id(v) in trainable else Role.FROZEN) if p in self.learnable else Role.STATE
            for p, v in self.watched.items()
        }
        return Look(roles, dict(zip(paths, prints, strict=True)), steps)

    def facts(self) -> StepFacts:
        """Keras keeps no per-variable optimizer facts the rules could use: a stale compile
        (set by the guard) is the cause Keras has."""
        return StepFacts()

    def without_signal(self) -> set[str]:
        """Keras hides the gradients from callbacks: every trainable tensor is judged."""
        return set()

    def close(self) -> None:
        """Nothing to remove: Keras calls the guard through its callback."""

    @contextmanager
    def _as_the_user_set_it(self):
        """tf.keras's ``fit()`` sets every layer's flag back to its compile() value while it runs;
        roles are judged by the flags the user set, so put those back while reading them."""
        if not self.user_flags:
            yield
            return
        during_fit = self.model._get_trainable_state()
        self.model._set_trainable_state(self.user_flags)
        try:
            yield
        finally:
            self.model._set_trainable_state(during_fit)


def _flags_fit_set_aside(model) -> dict | None:
    """The layer flags the user set before ``fit()``, where tf.keras's fit() replaced them with
    the compiled ones for its duration: its ``RespectCompiledTrainableState`` keeps them, and
    nothing else does. Found once per fit among the objects referring to the model."""
    from tf_keras.src.engine.training_utils import RespectCompiledTrainableState

    for holder in gc.get_referrers(model):
        if isinstance(holder, RespectCompiledTrainableState) and holder._should_set_trainable:
            return holder._current_trainable_state
    return None
