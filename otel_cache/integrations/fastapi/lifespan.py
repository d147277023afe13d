"""``otel_cache_lifespan()``: open and close what otel_cache runs beside a FastAPI app.

::

    app = FastAPI(lifespan=otel_cache_lifespan(
        config=CacheConfig.from_env(defaults={"name": "products"}),   # optional
        warmers=[lambda: CacheWarmer(get_async_cache_manager().cache, load, keys,
                                     interval=60, async_mode=True)],
        wrap=my_lifespan,                      # optional: the app's own lifespan, inside ours
    ))

Startup, in order (shutdown is the reverse, and runs for whatever had started
when a startup step fails)::

    configure_cache_managers(config)     if config is given (else the managers' own:
                                         ``OTEL_CACHE_*``, named ``query-results``
                                         unless ``OTEL_CACHE_NAME`` names it)
    get_async_cache_manager()            (``get_cache_manager()`` with ``mode="sync"``)
                                         created now, so a bad OTEL_CACHE_* variable fails
                                         the startup, not the first request; the other
                                         manager, on first use, shares its cache
    EventLoopMonitor(**monitor_options).start()
                                         if loop_monitor and otel_cache.telemetry.loop_monitor
                                         is there; or the monitor you pass
    warmer.start()                       each warmer (a factory is called first, after the
                                         managers exist); ThreadWarmer starts its thread,
                                         AsyncWarmer its task on this loop
    wrap(app)                            the app's own lifespan; its state is yielded on
    ...                                  serving
    stop the warmers                     ThreadWarmer.stop() in a worker thread (it joins),
                                         await AsyncWarmer.stop()
    await monitor.stop()
    await areset_cache_managers()        closes the managers' cache and its Redis clients
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, overload, runtime_checkable

from otel_cache.config import CacheConfig
from otel_cache.managers import (
    areset_cache_managers,
    configure_cache_managers,
    get_async_cache_manager,
    get_cache_manager,
)

__all__ = ["AsyncService", "SyncService", "WarmerSpec", "otel_cache_lifespan"]

log = logging.getLogger("otel_cache.integrations.fastapi")

_AppT = TypeVar("_AppT")


@runtime_checkable
class SyncService(Protocol):
    """Something run beside the app in a thread of its own: ``ThreadWarmer``."""

    def start(self) -> None: ...

    def stop(self) -> object: ...


@runtime_checkable
class AsyncService(Protocol):
    """Something run beside the app on its loop: ``AsyncWarmer``, ``EventLoopMonitor``."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


WarmerSpec: TypeAlias = SyncService | AsyncService | Callable[[], SyncService | AsyncService]
"""A warmer, or a factory called at startup that returns one."""

StatelessLifespan: TypeAlias = Callable[[_AppT], AbstractAsyncContextManager[None]]
StatefulLifespan: TypeAlias = Callable[[_AppT], AbstractAsyncContextManager[Mapping[str, object]]]


@overload
def otel_cache_lifespan(
    *,
    config: CacheConfig | None = None,
    warmers: Iterable[WarmerSpec] = (),
    loop_monitor: bool | AsyncService = True,
    monitor_options: Mapping[str, object] | None = None,
    mode: Literal["sync", "async"] = "async",
    wrap: None = None,
) -> StatelessLifespan[object]: ...


@overload
def otel_cache_lifespan(
    *,
    config: CacheConfig | None = None,
    warmers: Iterable[WarmerSpec] = (),
    loop_monitor: bool | AsyncService = True,
    monitor_options: Mapping[str, object] | None = None,
    mode: Literal["sync", "async"] = "async",
    wrap: StatelessLifespan[_AppT],
) -> StatelessLifespan[_AppT]: ...


@overload
def otel_cache_lifespan(
    *,
    config: CacheConfig | None = None,
    warmers: Iterable[WarmerSpec] = (),
    loop_monitor: bool | AsyncService = True,
    monitor_options: Mapping[str, object] | None = None,
    mode: Literal["sync", "async"] = "async",
    wrap: StatefulLifespan[_AppT],
) -> StatefulLifespan[_AppT]: ...


def otel_cache_lifespan(
    *,
    config: CacheConfig | None = None,
    warmers: Iterable[WarmerSpec] = (),
    loop_monitor: bool | AsyncService = True,
    monitor_options: Mapping[str, object] | None = None,
    mode: Literal["sync", "async"] = "async",
    wrap: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """A lifespan for ``FastAPI(lifespan=...)`` (or Starlette) that runs otel_cache beside the app.

    Args:
        config: the managers' config (default: theirs, ``CacheConfig.from_env()`` named
            ``query-results`` unless ``OTEL_CACHE_NAME`` is set). Managers created before
            startup keep theirs.
        warmers: warmers to start and stop, or factories returning them (called at startup).
        loop_monitor: ``True``: an ``EventLoopMonitor(**monitor_options)`` when
            :mod:`otel_cache.telemetry.loop_monitor` is installed; ``False``: none; or a
            monitor of your own.
        monitor_options: keyword arguments of ``EventLoopMonitor``.
        mode: the ``mode`` of the managers' shared cache (a telemetry attribute): ``"async"``
            for an app of ``async def`` endpoints, ``"sync"`` for one of legacy ``def`` ones.
        wrap: the app's own lifespan, entered last and left first; what it yields is yielded.

    The same lifespan may run again (tests, reloads): each startup starts afresh. Give it
    to one app per process: the managers are process-wide, and its shutdown resets them.
    """
    specs = tuple(warmers)
    options = dict(monitor_options or {})
    if options and loop_monitor is not True:
        raise ValueError("monitor_options apply only with loop_monitor=True")

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with AsyncExitStack() as stack:
            if config is not None:
                configure_cache_managers(config)
            stack.push_async_callback(areset_cache_managers)
            _open_managers(config, mode)
            monitor = _loop_monitor(loop_monitor, options)
            if monitor is not None:
                monitor.start()
                stack.push_async_callback(monitor.stop)
            for spec in specs:
                warmer = _warmer(spec)
                warmer.start()
                stack.push_async_callback(_stop, warmer)
            if wrap is None:
                yield None
            else:
                yield await stack.enter_async_context(wrap(app))

    return lifespan


def _open_managers(config: CacheConfig | None, mode: str) -> None:
    # The managers share one cache, whose mode is that of the one asked for first; the
    # other manager is a thin wrapper, made when first asked for.
    cache = get_cache_manager().cache if mode == "sync" else get_async_cache_manager().cache
    if config is not None and cache.config != config:
        log.warning("otel_cache_lifespan: the managers' cache existed before startup and keeps its config")


def _loop_monitor(setting: bool | AsyncService, options: Mapping[str, object]) -> AsyncService | None:
    if setting is False:
        return None
    if setting is not True:
        return setting
    try:
        # Imported here: it needs OpenTelemetry, which an app without telemetry may lack.
        from otel_cache.telemetry.loop_monitor import EventLoopMonitor
    except ImportError as exc:
        log.debug("otel_cache_lifespan: no event-loop monitor (%s)", exc)
        return None
    monitor: AsyncService = EventLoopMonitor(**options)  # type: ignore[arg-type]
    return monitor


def _warmer(spec: WarmerSpec) -> SyncService | AsyncService:
    # A warmer is not callable; a factory is.
    warmer = spec() if callable(spec) else spec
    if not isinstance(warmer, SyncService | AsyncService):
        raise TypeError(f"a warmer needs start() and stop(), got {type(warmer).__name__}")
    return warmer


async def _stop(service: SyncService | AsyncService) -> None:
    if inspect.iscoroutinefunction(service.stop):
        await service.stop()
    else:
        # ThreadWarmer.stop() joins its thread, which may be in the middle of a loader call.
        await asyncio.to_thread(service.stop)
