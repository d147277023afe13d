"""Another instance, in a process of its own: a ``MultiLevelCache`` driven over pipes.

    with CacheProcess(url, namespace="ns", api="async") as other:
        other.call("put", "k", 1)             # or ("put", "k", 1, ["tag"])
        other.call("get", "k")          # {"found": True, "value": 1}
        other.call("l1", "k")           # what its L1 holds, without going to Redis
        other.call("coherence")         # its invalidation counters

The child runs ``python -m tests.support.cache_process URL NAMESPACE API TIMEOUT``: one JSON
request per line on stdin, one JSON reply per line on stdout. With ``api="async"``
every call runs on the child's event loop (the listener is a task there); with
``"sync"`` on its main thread (the listener is a thread). One request loop serves both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.support.config import PATIENT_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
MISSING: Any = object()


class CacheProcess:
    """A child process holding one cache; :meth:`call` runs an operation there."""

    def __init__(self, url: str, *, namespace: str, api: str, redis_timeout: float = PATIENT_TIMEOUT) -> None:
        """``redis_timeout`` is the child's Redis command and connect timeout."""
        self.api = api
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.cache_process", url, namespace, api, str(redis_timeout)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def call(self, op: str, *args: Any) -> Any:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(json.dumps([op, *args]) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the cache process exited ({self._proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        if self._proc.poll() is not None:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
        else:
            try:
                self.call("close")
            finally:
                assert self._proc.stdin is not None
                assert self._proc.stdout is not None
                self._proc.stdin.close()
                self._proc.wait(30)
                self._proc.stdout.close()

    def __enter__(self) -> CacheProcess:
        return self

    def __exit__(self, *exc_info: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


# -- the child ----------------------------------------------------------------------


def _run(cache: Any, api: str, op: str, args: list[Any]) -> Any:
    async_api = api == "async"
    if op == "put":
        tags = args[2] if len(args) > 2 else ()
        return (
            cache.aput(args[0], args[1], tags=tags) if async_api else cache.put(args[0], args[1], tags=tags)
        )
    if op == "invalidate_tags":
        return cache.ainvalidate_tags(args[0]) if async_api else cache.invalidate_tags(args[0])
    if op == "get":
        return cache.aget(args[0], MISSING) if async_api else cache.get(args[0], MISSING)
    if op == "delete":
        return cache.adelete(args[0]) if async_api else cache.delete(args[0])
    if op == "l1":
        return cache.l1.get(args[0], MISSING)
    if op == "l2":
        return dataclasses.asdict(cache.tiers.stats())
    if op == "coherence":
        return dataclasses.asdict(cache.tiers.coherence.stats())
    if op == "close":
        return cache.aclose() if async_api else cache.close()
    raise ValueError(f"unknown op {op!r}")


def _reply(out: IO[str], op: str, result: Any) -> None:
    if op in ("get", "l1"):  # a value, or a miss
        result = {"found": False} if result is MISSING else {"found": True, "value": result}
    out.write(json.dumps({"result": result}) + "\n")
    out.flush()


def main() -> None:
    from otel_cache import CacheConfig, MultiLevelCache

    url, namespace, api, timeout = sys.argv[1:5]
    cache: Any = MultiLevelCache(
        CacheConfig(
            redis_url=url,
            namespace=namespace,
            redis_timeout=float(timeout),
            redis_connect_timeout=float(timeout),
        ),
        async_mode=api == "async",
    )
    loop = asyncio.new_event_loop()  # the async API's calls (and its listener task) run here
    threading.Thread(target=loop.run_forever, daemon=True).start()
    for line in sys.stdin:
        op, *args = json.loads(line)
        try:
            result = _run(cache, api, op, args)
            if asyncio.iscoroutine(result):
                result = asyncio.run_coroutine_threadsafe(result, loop).result()
        except Exception as exc:
            sys.stdout.write(json.dumps({"error": repr(exc)}) + "\n")
            sys.stdout.flush()
            continue
        _reply(sys.stdout, op, result)
        if op == "close":
            break
    loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
