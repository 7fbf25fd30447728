"""Errors paramscope reports to its user.

Every problem with the user's input (a missing module, a factory that raised, a file we
cannot read) is an :class:`InputError`: the CLI prints its message on one line and exits 2.
Anything else escaping the library is a paramscope bug.
"""


class ParamscopeError(Exception):
    """Base class of the errors paramscope raises on purpose."""


class InputError(ParamscopeError):
    """The model, file or option the user gave cannot be used; the message says why."""
