"""``CacheWarmer``: one name for both warmers, chosen by ``async_mode``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, overload

from otel_cache.core.lru import Clock
from otel_cache.errors import CacheConfigError
from otel_cache.warming.core import AsyncPutCache, DualPutCache, KeySource, PutCache
from otel_cache.warming.lease import DEFAULT_LEASE_TTL
from otel_cache.warming.tasks import AsyncWarmer
from otel_cache.warming.thread import ThreadWarmer

__all__ = ["CacheWarmer"]

K = TypeVar("K")
V = TypeVar("V")


@overload
def CacheWarmer(
    cache: PutCache[K, V],
    loader: Callable[[K], V],
    keys: KeySource[K],
    *,
    interval: float,
    async_mode: Literal[False] = False,
    ttl: float | None = None,
    name: str = "warmer",
    run_immediately: bool = True,
    clock: Clock = time.perf_counter,
    leader_election: bool | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> ThreadWarmer[K, V]: ...


@overload
def CacheWarmer(
    cache: AsyncPutCache[K, V],
    loader: Callable[[K], Awaitable[V] | V],
    keys: KeySource[K],
    *,
    interval: float,
    async_mode: Literal[True],
    ttl: float | None = None,
    name: str = "warmer",
    run_immediately: bool = True,
    concurrency: int = 8,
    clock: Clock = time.perf_counter,
    leader_election: bool | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> AsyncWarmer[K, V]: ...


@overload
def CacheWarmer(
    cache: DualPutCache[K, V],
    loader: Callable[[K], V],
    keys: KeySource[K],
    *,
    interval: float,
    async_mode: bool,
    ttl: float | None = None,
    name: str = "warmer",
    run_immediately: bool = True,
    clock: Clock = time.perf_counter,
    leader_election: bool | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> ThreadWarmer[K, V] | AsyncWarmer[K, V]: ...


def CacheWarmer(
    cache: Any,
    loader: Any,
    keys: Any,
    *,
    interval: float,
    async_mode: bool = False,
    ttl: float | None = None,
    name: str = "warmer",
    run_immediately: bool = True,
    concurrency: int | None = None,
    clock: Clock = time.perf_counter,
    leader_election: bool | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> ThreadWarmer[Any, Any] | AsyncWarmer[Any, Any]:
    """A :class:`ThreadWarmer` (``async_mode=False``) or an :class:`AsyncWarmer` (``async_mode=True``).

    The arguments are those of the chosen class; ``concurrency`` is for async mode only.
    ``leader_election`` (default ``None``: on when the cache has Redis configured) makes
    the warmer run in one process of those sharing the cache's Redis and namespace,
    holding a lease of ``lease_ttl`` seconds (see :mod:`otel_cache.warming.lease`).
    With ``async_mode`` known only at run time, the loader must be a plain function
    (the thread cannot await) and the cache must have both ``put`` and ``aput``.

    Raises:
        CacheConfigError: an invalid argument, or ``concurrency`` in sync mode.
    """
    if not async_mode:
        if concurrency is not None:
            raise CacheConfigError(
                "concurrency applies to async_mode=True only (the thread warms keys in turn)"
            )
        return ThreadWarmer(
            cache,
            loader,
            keys,
            interval=interval,
            ttl=ttl,
            name=name,
            run_immediately=run_immediately,
            clock=clock,
            leader_election=leader_election,
            lease_ttl=lease_ttl,
        )
    return AsyncWarmer(
        cache,
        loader,
        keys,
        interval=interval,
        ttl=ttl,
        name=name,
        run_immediately=run_immediately,
        concurrency=8 if concurrency is None else concurrency,
        clock=clock,
        leader_election=leader_election,
        lease_ttl=lease_ttl,
    )
