"""Put the audit in your own test suite.

    from paramscope.testing import assert_frozen

    def test_backbone_stays_frozen():
        model, optimizer = build_for_finetuning()
        assert_frozen(model, "backbone/*", optimizer=optimizer)

or with the pytest fixture that installing paramscope registers: ``def test_x(assert_frozen):``.
"""

from __future__ import annotations

import fnmatch

from paramscope.core.report import Role


def assert_frozen(model, *layers: str, **audit_options):
    """Audit ``model`` (see :func:`paramscope.audit`; ``optimizer``, ``inputs``, ``loss``,
    ``steps``… pass through) and fail unless every role held: frozen tensors bit-identical,
    trainable ones moved, no state drifting inside a frozen part, the model restored.

    ``layers`` are path globs (``"base"``, ``"base/block_1*"``) whose every tensor must also be
    frozen (or state) — so a freeze that silently did not happen fails too. Returns the Audit.
    """
    from paramscope.api import audit

    result = audit(model, **audit_options)
    problems = [f"[{f.rule}] {f.message}" for f in result.findings if f.severity == "error"]
    for pattern in layers:
        matched = [
            v
            for v in result.verdicts
            if fnmatch.fnmatchcase(v.path.rsplit("/", 1)[0] if "/" in v.path else "", pattern)
            or fnmatch.fnmatchcase(v.path, f"{pattern}/*")
        ]
        if not matched:
            problems.append(f"{pattern!r} matches no tensor of the model")
        trainable = [v.path for v in matched if v.role is Role.TRAINABLE]
        if trainable:
            problems.append(f"{pattern!r} should be frozen but trains: {', '.join(trainable[:5])}")
    if not result.restored:
        problems.append("the model was not restored bit-exactly after the audit")
    if problems:
        raise AssertionError("paramscope audit failed:\n  " + "\n  ".join(problems))
    return result
