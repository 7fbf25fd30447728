"""Errors paramscope reports to its user.

Every problem with the user's input (a missing module, a factory that raised, a file we
cannot read) is an :class:`InputError`: the CLI prints its message on one line and exits 2.
Anything else escaping the library is a paramscope bug.
"""


class ParamscopeError(Exception):
    """Base class of the errors paramscope raises on purpose."""


class InputError(ParamscopeError):
    """The model, file or option the user gave cannot be used; the message says why."""


class FreezeViolation(ParamscopeError):
    """A guard saw training contradict the roles: a frozen tensor moved, a trainable one did
    not, state drifted inside a frozen part. The message names the tensors, the rule and the
    fix; ``findings`` holds them as ``paramscope.pitfalls.context.Finding`` objects."""

    def __init__(self, message: str, findings: tuple | list = ()) -> None:
        super().__init__(message)
        self.findings = tuple(findings)


class FreezeWarning(UserWarning):
    """What a guard reports without stopping training (``strict=False``, or a warning finding)."""
