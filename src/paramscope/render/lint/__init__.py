"""`lint`: the freezing pitfalls a model falls into; its result is ``(report, findings)``."""
