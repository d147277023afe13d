"""``serving(app)``: the app's lifespan around an httpx client that calls it over ASGI.

``httpx.ASGITransport`` does not run the lifespan, so it is entered here by hand,
the way a server would: startup before the first request, shutdown after the last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield client
