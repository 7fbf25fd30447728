"""paramscope: know exactly what your model will learn.

``paramscope.inspect(model)`` returns a :class:`~paramscope.core.Report` of a live Keras 3,
tf.keras or PyTorch model: every tensor, its role (trainable, frozen, state), its parameters,
counted once even when tied, with the framework's own totals reconciled. Importing this
package imports no deep-learning framework.
"""

from paramscope.api import audit, diff, explain, freeze, inspect, lint, memory, report, scan, show
from paramscope.core import Node, Report, Role, Tensor
from paramscope.errors import FreezeViolation, FreezeWarning, InputError, ParamscopeError
from paramscope.guards import guard
from paramscope.sources.budget import Limits, limits

__version__ = "0.1.0"

__all__ = [
    "FreezeViolation",
    "FreezeWarning",
    "InputError",
    "Limits",
    "Node",
    "ParamscopeError",
    "Report",
    "Role",
    "Tensor",
    "audit",
    "diff",
    "explain",
    "freeze",
    "guard",
    "inspect",
    "limits",
    "lint",
    "memory",
    "report",
    "scan",
    "show",
]
