"""`summary`: every layer's tensors and parameters by role, reconciled with the framework's totals."""
