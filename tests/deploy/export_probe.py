"""Run the demo app of each mode in this process, and print what its /metrics serves.

    python tests/deploy/export_probe.py REDIS_URL
    # prints {"sync": {"names": [...], "text": "..."}, "async": {...}} as JSON: the metric
    # names and the whole scrape

Run in a subprocess by ``test_dashboard.py``: the HTTP semantic-convention choice
(``OTEL_SEMCONV_STABILITY_OPT_IN``) is read once per process, and the demo app owns
otel_cache's process-wide state while it serves, so a fresh process sees what the
container does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

# What docker-compose.yml sets; before any OpenTelemetry import reads it.
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"

import httpx

from otel_cache_demo.service import DemoSettings, create_app
from otel_cache_demo.telemetry import DemoTelemetry

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", re.MULTILINE)


async def _exported(mode: str, redis_url: str) -> dict[str, object]:
    telemetry = DemoTelemetry.from_env(mode, environ={})
    settings = DemoSettings(mode, redis_url=redis_url, warm_keys=5, warm_interval=0.1)  # type: ignore[arg-type]
    app = create_app(mode, settings=settings, telemetry=telemetry)  # type: ignore[arg-type]
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client,
        ):
            for depth in (1, 2, 1, 2, 3):
                response = await client.get("/traverse", params={"start": "service-0001", "depth": depth})
                response.raise_for_status()
            await asyncio.sleep(0.6)  # a few warmer runs and loop-lag samples
            text = (await client.get("/metrics")).text
    finally:
        telemetry.shutdown()
    return {"names": sorted(set(_SAMPLE.findall(text))), "text": text}


def main() -> None:
    redis_url = sys.argv[1]
    print(json.dumps({mode: asyncio.run(_exported(mode, redis_url)) for mode in ("sync", "async")}))


if __name__ == "__main__":
    main()
