"""Models the report tests draw, each built once per test file that asks for it."""

from __future__ import annotations

import importlib.util

import pytest

from tests.report.pages import ROOT

EXAMPLE = ROOT / "examples" / "report_keras.py"


def example(name: str):
    """A factory of examples/report_keras.py, the file the README's examples use."""
    spec = importlib.util.spec_from_file_location("report_keras", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.fixture(scope="module")
def seed():
    """The seed's model: MobileNetV2 (weights=None) frozen under a Dense(23) head."""
    return example("transfer")()
