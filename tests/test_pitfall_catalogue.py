"""The pitfall catalogue: written once, cited by every finding, published as docs/PITFALLS.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

import paramscope
from paramscope.pitfalls import RULES, Finding
from paramscope.pitfalls.catalogue import CATALOGUE, markdown

DOCS = Path(__file__).resolve().parent.parent / "docs" / "PITFALLS.md"
REFERENCE = re.compile(r"^([\w.-]+/[\w.-]+#\d+|https://\S+)$")


def test_docs_are_generated_from_the_catalogue() -> None:
    if os.environ.get("PARAMSCOPE_REGENERATE"):
        DOCS.write_text(markdown())
    assert DOCS.read_text() == markdown(), (
        "run PARAMSCOPE_REGENERATE=1 pytest tests/test_pitfall_catalogue.py"
    )


def test_references_are_full_repository_references() -> None:
    for pitfall in CATALOGUE.values():
        for reference in pitfall.references:
            assert REFERENCE.match(reference), (pitfall.id, reference)


def test_unknown_rule_id_fails_at_definition() -> None:
    from paramscope.pitfalls.rules import rule

    with pytest.raises(KeyError):
        rule("no-such-pitfall")
    with pytest.raises(KeyError):
        Finding("no-such-pitfall", "error", "a finding the catalogue does not know")
    assert len(RULES) >= 10


def test_lint_and_audit_cite_the_same_words() -> None:
    """The static error and the audit's dynamic error for one frozen-in-optimizer case share
    the catalogue's fix and references (they had drifted: moco#14 vs facebookresearch/moco#14)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    for p in model[0].parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.5)
    for p in model[0].parameters():
        p.grad = torch.zeros_like(p)  # zero, not None: SGD steps them
    _, static = paramscope.lint({"model": model, "optimizer": optimizer})
    audit = paramscope.audit(model, optimizer=optimizer, inputs=torch.randn(8, 4))
    (lint_finding,) = [f for f in static if f.rule == "frozen-in-optimizer"]
    (audit_finding,) = [f for f in audit.findings if f.rule == "frozen-in-optimizer"]
    assert lint_finding.fix == audit_finding.fix == CATALOGUE["frozen-in-optimizer"].fix
    assert lint_finding.reference == audit_finding.reference
    assert "facebookresearch/moco#14" in audit_finding.reference
    assert lint_finding.as_dict()["docs"] == "docs/PITFALLS.md#frozen-in-optimizer"
