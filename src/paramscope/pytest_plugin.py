"""The pytest plugin installed with paramscope: an ``assert_frozen`` fixture."""

from __future__ import annotations

import pytest


@pytest.fixture
def assert_frozen():
    """:func:`paramscope.testing.assert_frozen`, as a fixture."""
    from paramscope.testing import assert_frozen as check

    return check
