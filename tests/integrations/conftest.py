"""Fixtures of the integration tests (the ASGI client helper is in ``asgi_client.py``).

Every test starts and ends with no process-wide managers (``areset_cache_managers``)
and with the example traversal's call counter at zero.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from examples.migration import traversal
from otel_cache import areset_cache_managers


@pytest.fixture(autouse=True)
async def _fresh_managers() -> AsyncIterator[None]:
    await areset_cache_managers()
    traversal.calls.clear()
    yield
    await areset_cache_managers()
    traversal.calls.clear()
