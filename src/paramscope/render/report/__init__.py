"""`report`: one offline HTML page that shows what a model will learn, and where it sits.

An :class:`Overview` gathers what the other commands found for one model — explain's answer
and formulas, and when asked the freeze plan, the audit and the memory breakdown — so that
the page renders them together. It holds results, never counts anything of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from paramscope.ops.audit import Audit
from paramscope.ops.explain import Explanation
from paramscope.ops.freeze import FreezePlan
from paramscope.ops.memory import MemoryEstimate


@dataclass(frozen=True)
class Overview:
    """Everything one report page shows about one model."""

    explanation: Explanation
    memory: MemoryEstimate
    plan: FreezePlan | None = None
    audit: Audit | None = None

    def _repr_html_(self) -> str:  # Jupyter, VS Code, Colab
        """A display hook: the page's content without its script."""
        from paramscope.render import notebook_html

        return notebook_html("report", self)
