"""Layer specs: for a layer class, its config and input shape -> the variables it creates and
the formula that counts them. One registry serves explain, the file readers and lint.

(DESIGN.md calls this package ``explain/``; that name would shadow ``paramscope.explain()``.)
"""
