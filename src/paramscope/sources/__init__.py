"""Sources, the edges: each turns one kind of model (live object or file) into a Report.

Whatever else touches a framework's internals or a file's bytes lives here too — trainable
flags set and restored, the facts lint reads off live objects, freeze plans written as files —
except audit's training steps, which its drivers run (ops/audit_*.py).
"""
