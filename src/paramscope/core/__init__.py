"""Framework-free data model: tensors, nodes, roles, totals and conventions."""

from paramscope.core.report import Node, Report, Role, RoleTotals, Source, Tensor, TensorGroup

__all__ = ["Node", "Report", "Role", "RoleTotals", "Source", "Tensor", "TensorGroup"]
