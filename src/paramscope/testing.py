"""Put the audit in your own test suite.

    from paramscope.testing import assert_frozen

    def test_backbone_stays_frozen():
        model, optimizer = build_for_finetuning()
        assert_frozen(model, "backbone/*", optimizer=optimizer)

or with the pytest fixture that installing paramscope registers: ``def test_x(assert_frozen):``.
"""

from __future__ import annotations

from paramscope.core.report import Role
from paramscope.core.select import select
from paramscope.errors import InputError


def assert_frozen(model, *layers: str, **audit_options):
    """Audit ``model`` (see :func:`paramscope.audit`; ``optimizer``, ``inputs``, ``loss``,
    ``steps``… pass through) and fail unless every role held: frozen tensors bit-identical,
    trainable ones moved, no state drifting inside a frozen part, the model restored.

    ``layers`` are selectors, as for ``paramscope freeze`` (``"base"``, ``"base/block_1*"``,
    ``"type:BatchNormalization"``), whose every tensor must also be frozen (or state) — so a
    freeze that silently did not happen fails too. Returns the Audit.
    """
    from paramscope.api import audit

    result = audit(model, **audit_options)
    problems = [f"[{f.rule}] {f.message}" for f in result.findings if f.severity == "error"]
    for selector in layers:
        try:
            nodes = select(result.report, selector)
        except InputError as exc:
            problems.append(f"{selector!r} matches no tensor of the model ({exc})")
            continue
        tensors = [tensor for node in nodes for tensor in node.all_tensors()]
        if not tensors:
            problems.append(f"{selector!r} matches no tensor of the model")
        trainable = [tensor.path for tensor in tensors if tensor.role is Role.TRAINABLE]
        if trainable:
            problems.append(f"{selector!r} should be frozen but trains: {', '.join(trainable[:5])}")
    if not result.restored:
        problems.append("the model was not restored bit-exactly after the audit")
    if problems:
        raise AssertionError("paramscope audit failed:\n  " + "\n  ".join(problems))
    return result
