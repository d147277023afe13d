"""``@cached``: cache what a FastAPI endpoint returns, with the HTTP caching headers.

The decisions are in :mod:`otel_cache.integrations.fastapi.policy`; this module is
the two thin shells around them, one for ``async def`` endpoints (the async cache
API, on the loop) and one for ``def`` endpoints (the sync API, in FastAPI's
threadpool), plus the signature surgery that lets FastAPI hand us the request.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi.encoders import jsonable_encoder
from starlette.requests import Request
from starlette.responses import Response

from otel_cache.core.tags import tag_names
from otel_cache.core.ttl import validate_ttl
from otel_cache.errors import InvalidTTLError, SerializationError
from otel_cache.integrations.fastapi import policy
from otel_cache.integrations.fastapi.policy import Action, CachedResponse, Directives
from otel_cache.multilevel import MultiLevelCache

__all__ = ["cached"]

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
    tags: tuple[str, ...]
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
    method: str
    if_none_match: str | None


def cached(
    ttl: float = 60,
    *,
    vary_headers: Iterable[str] = (),
    tags: Iterable[str] = (),
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
        vary_headers: request headers whose values are part of the key (and of ``Vary``).
        tags: tags of every response this endpoint caches: ``invalidate_tags(tags)`` on the
            cache (or a manager) removes them all, in every process.
        namespace: prefix of the cache keys, which are hashes of the endpoint, method,
            path, sorted query parameters and ``vary_headers`` values.
        cache: the cache to use; by default the process-wide managers' cache
            (:func:`~otel_cache.get_async_cache_manager` for ``async def`` endpoints,
            :func:`~otel_cache.get_cache_manager` for ``def`` endpoints), looked up
            at each request, so that :func:`~otel_cache.areset_cache_managers` applies.
        clock: Unix time, for ``max-age``; inject one in tests.

    Raises:
        InvalidTTLError: ``ttl`` is not a positive number of seconds.
        ValueError: a bad ``vary_headers`` name or ``namespace``.
        TypeError: the endpoint is a generator (streamed responses are not cached).
    """
    seconds = validate_ttl(ttl)
    if seconds is None:
        raise InvalidTTLError("ttl must be a number of seconds, not None")
    names = tag_names(tags)
    vary = policy.normalise_vary([vary_headers] if isinstance(vary_headers, str) else vary_headers)
    if not isinstance(namespace, str) or not namespace or ":" in namespace:
        raise ValueError(f"namespace must be a non-empty string without ':', got {namespace!r}")

    def decorate(func: _F) -> _F:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(f"@cached cannot cache the generator endpoint {func.__qualname__}")
        signature, request_param, response_param = _endpoint_params(func)
        settings = _Settings(
            ttl=seconds,
            tags=names,
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
        return cast(_F, wrapper)

    return decorate


# -- the shells -----------------------------------------------------------------------


def _async_endpoint(func: Callable[..., Any], settings: _Settings) -> Callable[..., Any]:
    @functools.wraps(func)
    async def endpoint(**kwargs: Any) -> Any:
        request, response = settings.take(kwargs)
        plan = _plan(request, settings)
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
                data = await store.aget_or_set(plan.key, load, settings.ttl, tags=settings.tags)
                entry = _usable(data, plan, settings, loaded)
            if entry is None:  # REFRESH, or what the cache held cannot answer this request
                data = await load()
                try:
                    await store.aput(plan.key, data, settings.ttl, tags=settings.tags)
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
        plan = _plan(request, settings)
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
                data = store.get_or_set(plan.key, load, settings.ttl, tags=settings.tags)
                entry = _usable(data, plan, settings, loaded)
            if entry is None:  # REFRESH, or what the cache held cannot answer this request
                data = load()
                try:
                    store.put(plan.key, data, settings.ttl, tags=settings.tags)
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


def _plan(request: Request, settings: _Settings) -> _Plan:
    headers = request.headers
    directives = policy.request_directives(headers.get("cache-control"), headers.get("pragma"))
    method = request.method
    action = policy.choose_action(method, directives)
    key = ""
    if action is not Action.BYPASS:
        key = policy.request_key(
            namespace=settings.namespace,
            endpoint=settings.endpoint,
            method=method,
            path=request.url.path,
            query=request.query_params.multi_items(),
            headers={name: headers.getlist(name) for name in settings.vary},
        )
    return _Plan(action, directives, key, method, headers.get("if-none-match"))


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
