"""``paramscope.keras``: the audit's checks inside ``model.fit()``, as a Keras callback.

``FreezeGuard`` is a ``keras.callbacks.Callback`` for Keras 3 (torch, jax and tensorflow
backends); ``TFKerasFreezeGuard`` is the same callback for tf.keras (the ``tf-keras``
package), whose ``fit()`` takes only its own callbacks. Each class is built from its
framework's base class on first use, so importing this module imports neither::

    from paramscope.keras import FreezeGuard
    model.fit(x, y, callbacks=[FreezeGuard()])             # checks after the first batch
    model.fit(x, y, callbacks=[FreezeGuard(check="every_n", n=100, strict=False)])

At train start the guard records the roles and a fingerprint of every learnable tensor and of
the state inside frozen parts (BatchNorm statistics); after the first batch, and then each
epoch or every ``n`` batches, it checks that frozen tensors stayed bit-identical, trainable
ones moved and the compiled trainable set matches the flags, and raises
:class:`~paramscope.errors.FreezeViolation` naming the tensors, the rule and the fix
(``strict=False``: a :class:`~paramscope.errors.FreezeWarning`).
"""

from __future__ import annotations

from paramscope.guards.guard import Guard


class _FreezeGuardCallback:
    """What both callbacks do; the Keras base class comes second in the bases."""

    def __init__(self, check: str = "first_batch", n: int | None = None, strict: bool = True) -> None:
        super().__init__()
        self.options = {"check": check, "n": n, "strict": strict}
        Guard.validate(check, n)
        self.guard: Guard | None = None

    @property
    def findings(self) -> list:
        """Every finding of the last training run (``paramscope.pitfalls.context.Finding``)."""
        return self.guard.findings if self.guard is not None else []

    def on_train_begin(self, logs=None) -> None:
        from paramscope.guards.keras_probe import KerasProbe

        self.guard = Guard(KerasProbe(self.model), **self.options)

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.model  # noqa: B018 - on jax, reading the property syncs the variables with the step's state
        self.guard.after_step()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.model  # noqa: B018 - see on_train_batch_end
        self.guard.after_epoch()


_BUILT: dict[str, type] = {}


def _build(name: str) -> type:
    if name == "FreezeGuard":
        import keras

        base = keras.callbacks.Callback
    else:
        import tf_keras

        base = tf_keras.callbacks.Callback
    built = type(name, (_FreezeGuardCallback, base), {"__module__": __name__, "__doc__": __doc__})
    return _BUILT.setdefault(name, built)


def __getattr__(name: str) -> type:
    if name in ("FreezeGuard", "TFKerasFreezeGuard"):
        return _BUILT.get(name) or _build(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
