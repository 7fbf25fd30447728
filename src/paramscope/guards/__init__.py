"""Guards: the audit's checks inside the user's own training, cheaply.

``paramscope audit`` proves a freeze with synthetic steps; a guard watches the real ones. It
fingerprints every watched tensor where it lives (fingerprint.py), judges two looks with the
audit's rules (checks.py), and decides when to look and how to report (guard.py). A probe per
framework reads the model (torch_probe.py, keras_probe.py); the integrations
(``paramscope.keras``, ``paramscope.lightning``, ``paramscope.hf``, ``paramscope.guard``)
tell the guard when steps and epochs end. Nothing here imports a framework until a guard is
built on a model of it.
"""

from paramscope.guards.guard import Guard
from paramscope.guards.loop import LoopGuard, guard

__all__ = ["Guard", "LoopGuard", "guard"]
