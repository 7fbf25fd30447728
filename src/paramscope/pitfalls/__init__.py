"""The freezing pitfalls of ../shared/PITFALLS.md, checked statically.

Each rule is one small function of a :class:`~paramscope.pitfalls.context.LintContext` — the
report, the roles to judge (as they are, or as a freeze plan would leave them), the live
model's optimizer where the factory gave one, and the plan — returning findings with an id,
a severity, a message naming the layers and tensors, the fix, and a reference.
(DESIGN.md calls this package ``lint/``; that name would shadow ``paramscope.lint()``.)
"""

from paramscope.pitfalls.context import Finding, LintContext
from paramscope.pitfalls.rules import RULES, run_rules

__all__ = ["RULES", "Finding", "LintContext", "run_rules"]
