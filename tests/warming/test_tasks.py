"""What only the asyncio warmer does: tasks, bounded concurrency, async loaders, cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from otel_cache.l1 import AsyncLRUCache
from otel_cache.warming import AsyncWarmer
from otel_cache.warming.conftest import PLACEHOLDER  # noqa: F401  (replaced below)
