"""A user's own FastAPI app, written as docs/fastapi.md shows: what
``test_plain_app_dashboard.py`` runs under ``opentelemetry-instrument`` (no telemetry code).

Endpoints: ``/items/{n}`` (``@cached``), ``/squares/{n}`` (the manager as a dependency),
``/slow/{n}`` (a loader of 0.3 s: concurrent callers wait on its flight), ``/block`` (a
blocking call on the event loop, the bug the loop monitor exists to find).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI

from otel_cache import get_async_cache_manager
from otel_cache.integrations.fastapi import AsyncCacheManagerDep, cached, otel_cache_lifespan
from otel_cache.warming import AsyncWarmer, CacheWarmer

POPULAR = [f"popular:{n}" for n in range(5)]


def _load_popular(key: str) -> dict[str, Any]:
    return {"key": key, "at": time.time()}


def _popular_warmer() -> AsyncWarmer[str, dict[str, Any]]:
    cache = get_async_cache_manager().cache
    return CacheWarmer(cache, _load_popular, POPULAR, interval=1, ttl=30, async_mode=True, name="popular")


app = FastAPI(title="shop", lifespan=otel_cache_lifespan(warmers=[_popular_warmer]))


@app.get("/items/{n}")
@cached(ttl=30, tags=["items"])
async def item(n: int) -> dict[str, int]:
    await asyncio.sleep(0.002)
    return {"n": n, "double": 2 * n}


@app.get("/squares/{n}")
async def square(n: int, cache: AsyncCacheManagerDep) -> dict[str, int]:
    result: dict[str, int] = await cache.aget_or_compute(
        {"square": n}, lambda: {"n": n, "square": n * n}, ttl=30
    )
    return result


@app.get("/slow/{n}")
async def slow(n: int, cache: AsyncCacheManagerDep) -> dict[str, int]:
    async def compute() -> dict[str, int]:
        await asyncio.sleep(0.3)
        return {"n": n}

    result: dict[str, int] = await cache.aget_or_compute({"slow": n}, compute, ttl=30)
    return result


@app.get("/block")
async def block() -> dict[str, str]:
    time.sleep(0.3)  # noqa: ASYNC251 - on purpose: a blocked loop for the monitor to report
    return {"blocked": "0.3 s"}
