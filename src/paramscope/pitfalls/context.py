"""What a lint rule looks at, and what it reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from paramscope.core.kinds import Kind
from paramscope.core.live_facts import LiveFacts
from paramscope.core.report import Node, Report, Role
from paramscope.pitfalls.catalogue import Pitfall, pitfall


@dataclass(frozen=True)
class Finding:
    """One pitfall found in one model: the case at hand; the why, fix and references are the
    catalogue's (a rule may state the fix more precisely for the case)."""

    rule: str  # a catalogue id
    severity: str  # "error" (exit 1) | "warning" | "info"
    message: str
    tensors: tuple[str, ...] = ()
    specific_fix: str | None = None

    def __post_init__(self) -> None:
        pitfall(self.rule)  # an id the catalogue does not know is a paramscope bug: fail where it is made

    @property
    def pitfall(self) -> Pitfall:
        return pitfall(self.rule)

    @property
    def fix(self) -> str:
        return self.specific_fix or self.pitfall.fix

    @property
    def reference(self) -> str:
        """The public threads behind it, then where the docs explain it."""
        return "; ".join([*self.pitfall.references, self.pitfall.anchor])

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "reference": self.reference,
            "references": list(self.pitfall.references),
            "docs": self.pitfall.anchor,
            "tensors": list(self.tensors),
        }


@dataclass
class LintContext:
    report: Report
    roles: dict[str, Role]  # tensor path -> role to judge (now, or after a plan)
    facts: LiveFacts = field(default_factory=LiveFacts)  # read off the live model by sources/
    plan: object | None = None  # a FreezePlan when linting one
    frozen_nodes: set[str] = field(default_factory=set)  # nodes a plan freezes

    @property
    def kind(self) -> Kind:
        return self.report.source.kind

    def role(self, tensor) -> Role:
        return self.roles.get(tensor.path, tensor.role)

    def learnable(self, node: Node) -> list:
        return [t for t in node.all_tensors() if self.role(t) in (Role.TRAINABLE, Role.FROZEN)]

    def all_frozen(self, node: Node) -> bool:
        tensors = self.learnable(node)
        return bool(tensors) and all(self.role(t) is Role.FROZEN for t in tensors)


def names(items, limit: int = 4) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
