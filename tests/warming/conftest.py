"""The ``shell`` fixture: the behaviour suite runs once on each warmer."""

from __future__ import annotations

import pytest

from tests.warming.helpers import Shell


@pytest.fixture(params=["thread", "async"])
def shell(request: pytest.FixtureRequest) -> Shell:
    return Shell(request.param)
