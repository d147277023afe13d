"""``@cached``: cache what any function returns, sync or async, methods included.

::

    @cached(ttl=300, key="user:{user_id}", tags=["users", "user:{user_id}"])
    async def load_user(user_id: int) -> User: ...

    user = await load_user(42)           # the cache's value, or the function's (stored)
    await load_user.invalidate(42)       # that call's entry, from every level
    fresh = await load_user.uncached(42) # the function itself: no read, no write

A call is :meth:`~otel_cache.MultiLevelCache.get_or_set` (``aget_or_set`` for an
``async def``) under the call's key (:mod:`otel_cache.core.call_keys`), so N
concurrent callers of the same cold call, threads and coroutines alike, run the
function once, and an L1 hit costs the key's building and an L1 read. What the
function raises reaches the caller and nothing is stored.

The decorated object keeps the function's signature for mypy (``ParamSpec``), and
works on methods (``self`` is not part of the default key).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, cast, overload

from otel_cache.core.call_keys import CallKeys, KeySpec, TagSpec
from otel_cache.core.fail_safe import FailSafe
from otel_cache.core.load_options import LoadOptions
from otel_cache.core.ttl import validate_ttl
from otel_cache.managers import get_async_cache_manager, get_cache_manager
from otel_cache.multilevel import MultiLevelCache

__all__ = ["AsyncCachedFunction", "CachedFunction", "cached"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

_UNBOUND: Any = object()


class _Options:
    """What every call of one decorated function shares (no I/O here)."""

    __slots__ = ("cache", "keys", "load", "ttl")

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        ttl: float | None,
        key: KeySpec,
        tags: TagSpec,
        prefix: str,
        condition: Callable[[Any], bool] | None,
        unless: Callable[[Any], bool] | None,
        cache: MultiLevelCache[Any, Any] | None,
        refresh_ahead: float | None,
        fail_safe: FailSafe | None,
        soft_timeout: float | None,
        hard_timeout: float | None,
    ) -> None:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(f"@cached cannot cache the generator function {func.__qualname__}")
        if cache is not None and not isinstance(cache, MultiLevelCache):
            raise TypeError(f"cache must be a MultiLevelCache, not {type(cache).__name__}")
        self.ttl = validate_ttl(ttl)
        self.keys = CallKeys(func, key=key, tags=tags, prefix=prefix)
        self.cache = cache
        # Validated now, not at the first call; handed to get_or_set as keywords.
        options = LoadOptions.of(
            condition=_store_if(condition, unless),
            refresh_ahead=refresh_ahead,
            fail_safe=fail_safe,
            soft_timeout=soft_timeout,
            hard_timeout=hard_timeout,
        )
        timeouts = options.timeouts
        self.load: dict[str, Any] = {
            "condition": options.condition,
            "refresh_ahead": options.refresh_ahead,
            "fail_safe": options.fail_safe,
            "soft_timeout": None if timeouts is None else timeouts.soft,
            "hard_timeout": None if timeouts is None else timeouts.hard,
        }


class _Cached(Generic[P, R]):
    """The shared shape of both shells: the function, its options, and the bound instance."""

    def __init__(self, func: Callable[P, Any], options: _Options, instance: Any = _UNBOUND) -> None:
        self._func = func
        self._options = options
        self._instance = instance
        functools.update_wrapper(cast(Any, self), func)

    def key(self, *args: P.args, **kwargs: P.kwargs) -> Hashable:
        """The cache key of this call."""
        return self._options.keys.key(self._args(args), kwargs)

    def _args(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args if self._instance is _UNBOUND else (self._instance, *args)

    def _plan(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], Hashable, tuple[str, ...]]:
        full = self._args(args)
        keys = self._options.keys
        return full, keys.key(full, kwargs), keys.tags(full, kwargs)

    def __repr__(self) -> str:
        return f"<cached {self._options.keys.name}>"


class CachedFunction(_Cached[P, R]):
    """A sync function whose results are cached; call it as the function itself."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        options = self._options
        full, key, tags = self._plan(args, kwargs)
        func = self._func
        result: R = _sync_cache(options).get_or_set(
            key,
            lambda: func(*full, **kwargs),
            options.ttl,
            tags=tags,
            **options.load,
        )
        return result

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove this call's entry from every level (and every process's L1); True if one was found."""
        return _sync_cache(self._options).delete(self.key(*args, **kwargs))

    def uncached(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function itself: the cache is neither read nor written."""
        result: R = self._func(*self._args(args), **kwargs)
        return result

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, P2], R], instance: S, owner: type[Any] | None = None
    ) -> CachedFunction[P2, R]: ...
    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        return CachedFunction(self._func, self._options, instance)


class AsyncCachedFunction(_Cached[P, R]):
    """An ``async def`` whose results are cached; await it as the function itself."""

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        options = self._options
        full, key, tags = self._plan(args, kwargs)
        func = self._func
        result: R = await _async_cache(options).aget_or_set(
            key,
            lambda: func(*full, **kwargs),
            options.ttl,
            tags=tags,
            **options.load,
        )
        return result

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove this call's entry from every level (and every process's L1); True if one was found."""
        return await _async_cache(self._options).adelete(self.key(*args, **kwargs))

    async def uncached(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await the function itself: the cache is neither read nor written."""
        result: R = await self._func(*self._args(args), **kwargs)
        return result

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(
        self: AsyncCachedFunction[Concatenate[S, P2], R], instance: S, owner: type[Any] | None = None
    ) -> AsyncCachedFunction[P2, R]: ...
    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        return AsyncCachedFunction(self._func, self._options, instance)


class _Decorator:
    """What ``cached(...)`` returns: applied to a function, the cached function."""

    __slots__ = ("_settings",)

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = settings

    @overload
    def __call__(  # type: ignore[overload-overlap]  # a coroutine function is also a Callable[P, R]
        self, func: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCachedFunction[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> CachedFunction[P, R]: ...
    def __call__(self, func: Callable[P, Any]) -> Any:
        options = _Options(func, **self._settings)
        if inspect.iscoroutinefunction(func):
            return AsyncCachedFunction(func, options)
        return CachedFunction(func, options)


def cached(
    ttl: float | None = None,
    *,
    key: KeySpec = None,
    tags: TagSpec = (),
    condition: Callable[[Any], bool] | None = None,
    unless: Callable[[Any], bool] | None = None,
    cache: MultiLevelCache[Any, Any] | None = None,
    prefix: str = "fn",
    refresh_ahead: float | None = None,
    fail_safe: FailSafe | None = None,
    soft_timeout: float | None = None,
    hard_timeout: float | None = None,
) -> _Decorator:
    """Cache what the decorated function returns (see the module docstring for an example).

    Args:
        ttl: seconds an entry lives (``None``: the cache's default TTL; ``math.inf``: until evicted).
        key: ``None`` for the default key (a digest of the bound arguments, see
            :mod:`otel_cache.core.call_keys`), a template over the parameters
            (``"user:{user_id}"``), or a callable taking the function's arguments.
        tags: tag templates (``["user:{user_id}"]``), or a callable returning the tags; the
            cache's ``invalidate_tags`` removes every entry carrying one, in every process.
        condition: store a result only if ``condition(result)`` is true.
        unless: do not store a result if ``unless(result)`` is true.
            A result not stored still goes to every caller of that load.
        cache: the :class:`~otel_cache.MultiLevelCache` to use; by default the managers'
            (:func:`~otel_cache.get_cache_manager` for a sync function,
            :func:`~otel_cache.get_async_cache_manager` for an ``async def``), looked up at
            each call, so that resetting the managers applies.
        prefix: the first part of default keys.
        refresh_ahead: a share of the TTL (0.8, say): the first call after it has passed
            returns the cached value and refreshes it in the background (one refresh per key).
        fail_safe: keep each value for ``FailSafe.max_age`` past its TTL, and serve it when a
            later call of the function raises (see :mod:`otel_cache.core.fail_safe`).
        soft_timeout: with a fail-safe copy at hand, serve it once a call has waited this long.
        hard_timeout: after this long, the copy or :class:`~otel_cache.errors.LoadTimeoutError`;
            either way the call goes on in the background and its result is stored.

    Raises:
        InvalidTTLError: a bad ``ttl``.
        CacheConfigError: a template that names no parameter, a bad ``prefix``, ``key``, ``tags``
            or ``refresh_ahead``.
        TypeError: a generator function, a ``cache`` that is not a MultiLevelCache, or a
            ``fail_safe`` that is not a FailSafe.
    """
    return _Decorator(
        {
            "ttl": ttl,
            "key": key,
            "tags": tags,
            "condition": condition,
            "unless": unless,
            "cache": cache,
            "prefix": prefix,
            "refresh_ahead": refresh_ahead,
            "fail_safe": fail_safe,
            "soft_timeout": soft_timeout,
            "hard_timeout": hard_timeout,
        }
    )


def _store_if(
    condition: Callable[[Any], bool] | None, unless: Callable[[Any], bool] | None
) -> Callable[[Any], bool] | None:
    for name, check in (("condition", condition), ("unless", unless)):
        if check is not None and not callable(check):
            raise TypeError(f"{name} must be callable, not {type(check).__name__}")
    if condition is not None and unless is not None:
        return lambda result: bool(condition(result)) and not unless(result)
    if unless is not None:
        return lambda result: not unless(result)
    return condition


def _sync_cache(options: _Options) -> MultiLevelCache[Any, Any]:
    if options.cache is not None:
        return options.cache
    return get_cache_manager().cache


def _async_cache(options: _Options) -> MultiLevelCache[Any, Any]:
    if options.cache is not None:
        return options.cache
    return get_async_cache_manager().cache
