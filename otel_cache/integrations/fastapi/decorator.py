"""``@cached``: cache what a FastAPI endpoint returns, with the HTTP caching headers.

The decisions are in :mod:`otel_cache.integrations.fastapi.policy`; this module is
the two thin shells around them, one for ``async def`` endpoints (the async cache
API, on the loop) and one for ``def`` endpoints (the sync API, in FastAPI's
threadpool), plus the signature surgery that lets FastAPI hand us the request.

Key templates and tag templates over the endpoint's parameters are the ones of
:func:`otel_cache.cached` (:mod:`otel_cache.core.call_keys`): one implementation.
With a key template, :func:`invalidate_cached` (and :func:`ainvalidate_cached`) remove
one call's entry by its parameters.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi.encoders import jsonable_encoder
from starlette.requests import Request
from starlette.responses import Response

from otel_cache.core.call_keys import CallKeys, KeySpec
from otel_cache.core.keys import canonical_digest
from otel_cache.core.ttl import validate_ttl
from otel_cache.errors import InvalidTTLError, SerializationError
from otel_cache.integrations.fastapi import policy
from otel_cache.integrations.fastapi.policy import Action, CachedResponse, Directives
from otel_cache.multilevel import MultiLevelCache

__all__ = ["ainvalidate_cached", "cached", "cached_key", "invalidate_cached"]

log = logging.getLogger("otel_cache.integrations.fastapi")

_F = TypeVar("_F", bound=Callable[..., object])

# Parameters added to the endpoint's signature so that FastAPI passes the request and
# its sub-response (whose headers FastAPI merges into the response it builds).
_REQUEST = "_otel_cache_request"
_RESPONSE = "_otel_cache_response"


class _UncacheableError(Exception):
    """The endpoint returned a ``Response``: it is passed through, not cached."""

    def __init__(self, response: Response) -> None:
        super().__init__("endpoint returned a Response")
        self.response = response


@dataclass(frozen=True, slots=True)
class _Settings:
    ttl: float
    keys: CallKeys  # the key template (if any) and the tag templates
    custom_key: bool
    vary: tuple[str, ...]
    namespace: str
    cache: MultiLevelCache[Any, Any] | None
    clock: Callable[[], float]
    endpoint: str
    request_param: str
    response_param: str

    def take(self, kwargs: dict[str, Any]) -> tuple[Request, Response]:
        """The request and sub-response FastAPI passed; the ones we added are removed from ``kwargs``."""
        request = kwargs.pop(_REQUEST) if self.request_param == _REQUEST else kwargs[self.request_param]
        response = kwargs.pop(_RESPONSE) if self.response_param == _RESPONSE else kwargs[self.response_param]
        return request, response


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one request asks of the cache."""

    action: Action
    directives: Directives
    key: str
    tags: tuple[str, ...]
    method: str
    if_none_match: str | None


# The settings of each decorated endpoint, for the invalidation helpers (no attribute on the function).
_ENDPOINTS: weakref.WeakKeyDictionary[Callable[..., Any], _Settings] = weakref.WeakKeyDictionary()


def cached(
    ttl: float = 60,
    *,
    key: KeySpec = None,
    vary_headers: Iterable[str] = (),
    tags: Iterable[str] | Callable[..., Iterable[str]] = (),
    namespace: str = "http",
    cache: MultiLevelCache[Any, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> Callable[[_F], _F]:
    """Cache the JSON an endpoint returns for ``ttl`` seconds; put it under the route decorator.

    ::

        @app.get("/users/{user_id}")
        @cached(ttl=60, vary_headers=["accept-language"])
        async def user(user_id: int) -> User: ...

    Args:
        ttl: seconds a response stays cached (``math.inf``: until evicted).
        key: a template over the endpoint's parameters (``"user:{user_id}"``) or a callable
            given them: the entry's key is ``{namespace}:{key}`` (and a digest of the
            ``vary_headers`` values, if any), instead of a hash of the whole request;
            :func:`invalidate_cached` then removes one entry by its parameters. Parameters
            not in the template do not tell entries apart.
        vary_headers: request headers whose values are part of the key (and of ``Vary``).
        tags: tags (or tag templates over the endpoint's parameters, ``"user:{user_id}"``, or
            a callable given them) of every response this endpoint caches:
            ``invalidate_tags(tags)`` on the cache (or a manager) removes them, in every process.
        namespace: prefix of the cache keys, which are, without ``key``, hashes of the endpoint,
            method, path, sorted query parameters and ``vary_headers`` values.
        cache: the cache to use; by default the process-wide managers' cache
            (:func:`~otel_cache.get_async_cache_manager` for ``async def`` endpoints,
            :func:`~otel_cache.get_cache_manager` for ``def`` endpoints), looked up
            at each request, so that :func:`~otel_cache.areset_cache_managers` applies.
        clock: Unix time, for ``max-age``; inject one in tests.

    Raises:
        InvalidTTLError: ``ttl`` is not a positive number of seconds.
        ValueError: a bad ``vary_headers`` name or ``namespace``; a template that names no
            parameter of the endpoint (:class:`~otel_cache.errors.CacheConfigError`).
        TypeError: the endpoint is a generator (streamed responses are not cached).
    """
    seconds = validate_ttl(ttl)
    if seconds is None:
        raise InvalidTTLError("ttl must be a number of seconds, not None")
    vary = policy.normalise_vary([vary_headers] if isinstance(vary_headers, str) else vary_headers)
    if not isinstance(namespace, str) or not namespace or ":" in namespace:
        raise ValueError(f"namespace must be a non-empty string without ':', got {namespace!r}")

    def decorate(func: _F) -> _F:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(f"@cached cannot cache the generator endpoint {func.__qualname__}")
        signature, request_param, response_param = _endpoint_params(func)
        settings = _Settings(
            ttl=seconds,
            keys=CallKeys(func, key=key, tags=tags, prefix=namespace),
            custom_key=key is not None,
            vary=vary,
            namespace=namespace,
            cache=cache,
            clock=clock,
            endpoint=f"{func.__module__}.{func.__qualname__}",
            request_param=request_param,
            response_param=response_param,
        )
        if inspect.iscoroutinefunction(func):
            wrapper = _async_endpoint(func, settings)
        else:
            wrapper = _sync_endpoint(func, settings)
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        _ENDPOINTS[wrapper] = settings
        return cast(_F, wrapper)

    return decorate


# -- the shells -----------------------------------------------------------------------


def _async_endpoint(func: Callable[..., Any], settings: _Settings) -> Callable[..., Any]:
    @functools.wraps(func)
    async def endpoint(**kwargs: Any) -> Any:
        request, response = settings.take(kwargs)
        plan = _plan(request, settings, kwargs)
        if plan.action is Action.BYPASS:
            response.headers[policy.X_CACHE] = "BYPASS"
            return await func(**kwargs)
        store = settings.cache
        if store is None:
            from otel_cache.managers import get_async_cache_manager

            store = get_async_cache_manager().cache
        loaded = False

        async def load() -> dict[str, object]:
            nonlocal loaded
            loaded = True
            return _entry_data(await func(**kwargs), settings)

        try:
            entry = None
            if plan.action is Action.LOOKUP:
                data = await store.aget_or_set(plan.key, load, settings.ttl, tags=plan.tags)
                entry = _usable(data, plan, settings, loaded)
            if entry is None:  # REFRESH, or what the cache held cannot answer this request
                data = await load()
                try:
                    await store.aput(plan.key, data, settings.ttl, tags=plan.tags)
                except SerializationError:
                    log.warning(
                        "@cached %s: response kept in L1 only (L2 cannot encode it)", settings.endpoint
                    )
                entry = policy.parse_entry(data)
        except _UncacheableError as exc:
            # The leader's Response is for the leader's client; a coalesced waiter asks for its own.
            return exc.response if loaded else await func(**kwargs)
        return _respond(entry, plan, response, settings, hit=not loaded)

    return endpoint


def _sync_endpoint(func: Callable[..., Any], settings: _Settings) -> Callable[..., Any]:
    @functools.wraps(func)
    def endpoint(**kwargs: Any) -> Any:
        request, response = settings.take(kwargs)
        plan = _plan(request, settings, kwargs)
        if plan.action is Action.BYPASS:
            response.headers[policy.X_CACHE] = "BYPASS"
            return func(**kwargs)
        store = settings.cache
        if store is None:
            from otel_cache.managers import get_cache_manager

            store = get_cache_manager().cache
        loaded = False

        def load() -> dict[str, object]:
            nonlocal loaded
            loaded = True
            return _entry_data(func(**kwargs), settings)

        try:
            entry = None
            if plan.action is Action.LOOKUP:
                data = store.get_or_set(plan.key, load, settings.ttl, tags=plan.tags)
                entry = _usable(data, plan, settings, loaded)
            if entry is None:  # REFRESH, or what the cache held cannot answer this request
                data = load()
                try:
                    store.put(plan.key, data, settings.ttl, tags=plan.tags)
                except SerializationError:
                    log.warning(
                        "@cached %s: response kept in L1 only (L2 cannot encode it)", settings.endpoint
                    )
                entry = policy.parse_entry(data)
        except _UncacheableError as exc:
            return exc.response if loaded else func(**kwargs)
        return _respond(entry, plan, response, settings, hit=not loaded)

    return endpoint


# -- shared by both shells (no I/O) --------------------------------------------------


def _plan(request: Request, settings: _Settings, arguments: dict[str, Any]) -> _Plan:
    headers = request.headers
    directives = policy.request_directives(headers.get("cache-control"), headers.get("pragma"))
    method = request.method
    action = policy.choose_action(method, directives)
    key = ""
    tags: tuple[str, ...] = ()
    if action is not Action.BYPASS:
        vary = {name: headers.getlist(name) for name in settings.vary}
        if settings.custom_key:
            key = _custom_key(settings, arguments, vary)
        else:
            key = policy.request_key(
                namespace=settings.namespace,
                endpoint=settings.endpoint,
                method=method,
                path=request.url.path,
                query=request.query_params.multi_items(),
                headers=vary,
            )
        tags = settings.keys.tags((), arguments)
    return _Plan(action, directives, key, tags, method, headers.get("if-none-match"))


def _custom_key(settings: _Settings, arguments: dict[str, Any], vary: dict[str, list[str]] | None) -> str:
    """``{namespace}:{key}``, and a digest of the vary headers' values when the endpoint varies."""
    key = f"{settings.namespace}:{settings.keys.key((), arguments)}"
    if settings.vary:
        assert vary is not None
        key += f":{canonical_digest(vary)}"
    return key


# -- invalidation ----------------------------------------------------------------------


def cached_key(endpoint: Callable[..., Any], /, **params: Any) -> str:
    """The cache key of ``endpoint`` (decorated with ``@cached(key=...)``) for these parameters.

    Raises:
        TypeError: ``endpoint`` is not a ``@cached`` endpoint, has no key template, or varies
            by headers (its entries are one per header value: invalidate them by tag).
    """
    settings = _ENDPOINTS.get(endpoint)
    if settings is None:
        raise TypeError(f"{getattr(endpoint, '__qualname__', endpoint)!r} is not a @cached endpoint")
    if not settings.custom_key:
        raise TypeError(f"@cached endpoint {settings.endpoint} has no key=...: invalidate it by tag")
    if settings.vary:
        raise TypeError(f"@cached endpoint {settings.endpoint} varies by headers: invalidate it by tag")
    return _custom_key(settings, params, None)


def invalidate_cached(endpoint: Callable[..., Any], /, **params: Any) -> bool:
    """Remove the cached response of ``endpoint`` for these parameters from every level and
    every process (the sync managers' cache unless the endpoint names one); True if found."""
    key = cached_key(endpoint, **params)
    settings = _ENDPOINTS[endpoint]
    store = settings.cache
    if store is None:
        from otel_cache.managers import get_cache_manager

        store = get_cache_manager().cache
    return store.delete(key)


async def ainvalidate_cached(endpoint: Callable[..., Any], /, **params: Any) -> bool:
    """Async :func:`invalidate_cached` (the async managers' cache unless the endpoint names one)."""
    key = cached_key(endpoint, **params)
    settings = _ENDPOINTS[endpoint]
    store = settings.cache
    if store is None:
        from otel_cache.managers import get_async_cache_manager

        store = get_async_cache_manager().cache
    return await store.adelete(key)


def _entry_data(result: object, settings: _Settings) -> dict[str, object]:
    if isinstance(result, Response):
        raise _UncacheableError(result)
    body = jsonable_encoder(result)
    return CachedResponse.create(body, ttl=settings.ttl, now=settings.clock()).to_data()


def _usable(data: object, plan: _Plan, settings: _Settings, loaded: bool) -> CachedResponse | None:
    """The entry, unless it is not ours or (served from the cache) older than the request allows."""
    entry = policy.parse_entry(data)
    if entry is None or loaded:
        return entry
    return entry if policy.acceptable(entry, plan.directives, settings.clock()) else None


def _respond(
    entry: CachedResponse | None, plan: _Plan, response: Response, settings: _Settings, *, hit: bool
) -> object:
    assert entry is not None  # _entry_data always builds a valid envelope
    # A fresh entry is as old as it is: max-age is the full TTL, not a second less.
    now = settings.clock() if hit else entry.stored_at
    headers = policy.response_headers(entry, now=now, hit=hit, vary=settings.vary)
    if policy.not_modified(plan.if_none_match, entry.etag, plan.method):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    # Returned as data, not as a JSONResponse: FastAPI then applies the route's
    # response_model (filtering fields), response_class and status_code, on hits as on misses.
    return entry.body


def _endpoint_params(func: Callable[..., Any]) -> tuple[inspect.Signature, str, str]:
    """The signature FastAPI should see, and the names of its ``Request`` and ``Response`` parameters.

    FastAPI passes one parameter of each (it keeps one name per kind), so an endpoint's
    own ``request: Request`` is used as is; otherwise a keyword-only one is added, and
    removed again before the endpoint is called.
    """
    try:
        signature = inspect.signature(func, eval_str=True)
    except NameError:  # a forward reference: FastAPI resolves it later, in func's globals
        signature = inspect.signature(func)
    params = list(signature.parameters.values())
    request = _param_of_type(params, Request, func) or _REQUEST
    response = _param_of_type(params, Response, func) or _RESPONSE
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind)
        for name, kind in ((request, Request), (response, Response))
        if name in (_REQUEST, _RESPONSE)
    ]
    for param in extra:
        if param.name in signature.parameters:
            raise TypeError(f"@cached endpoints cannot have a parameter named {param.name}")
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    return signature.replace(parameters=[*params[:at], *extra, *params[at:]]), request, response


def _param_of_type(params: list[inspect.Parameter], kind: type, func: Callable[..., Any]) -> str | None:
    for param in params:
        annotation = param.annotation
        if isinstance(annotation, str):  # unresolved: try this one alone
            try:
                annotation = eval(
                    annotation, getattr(func, "__globals__", {})
                )  # as inspect(eval_str=True) does
            except Exception:
                continue
        if isinstance(annotation, type) and issubclass(annotation, kind):
            return param.name
    return None
