"""Operations on a Report: explain, freeze, audit, memory, diff, scan.

An operation takes Reports and plain values and returns a plain result for render/. It never
imports sources/: what it needs from the edges (a re-inspected model, a file reader, facts
read off live objects) the API passes in. Audit's drivers (audit_torch.py, audit_keras.py)
are the one place here that runs a framework, behind the AuditDriver protocol.
"""
