"""What a lint rule looks at, and what it reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from paramscope.core.report import Node, Report, Role


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error" (exit 1) | "warning" | "info"
    message: str
    fix: str
    reference: str
    tensors: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "reference": self.reference,
            "tensors": list(self.tensors),
        }


@dataclass
class LintContext:
    report: Report
    roles: dict[str, Role]  # tensor path -> role to judge (now, or after a plan)
    optimizer: object | None = None
    plan: object | None = None  # a FreezePlan when linting one
    frozen_nodes: set[str] = field(default_factory=set)  # nodes a plan freezes

    @property
    def kind(self) -> str:
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
