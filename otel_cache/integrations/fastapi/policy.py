"""HTTP caching decisions for :func:`~otel_cache.integrations.fastapi.cached`: pure, no I/O.

Everything here is plain synchronous code over strings and numbers (no Starlette,
no cache, no clock of its own), so that the sync and async shells in
:mod:`otel_cache.integrations.fastapi.decorator` only add the cache calls::

    request ──► request_directives()  no-store ─► BYPASS (no read, no write)
                  │                   no-cache / max-age=0 ─► REFRESH (no read, write)
                  ▼
               request_key() ──► cache.get_or_set(key, load)  (single-flight)
                                        │
                  parse_entry() ◄───────┘ (not ours or too old for max-age ─► REFRESH)
                  │
                  ▼
               not_modified()? ─► 304 + headers      else ─► body + response_headers()

A cached response is an envelope of plain JSON data (:meth:`CachedResponse.to_data`),
so that it survives the L2 serializer: the body, its weak ETag, when it was stored
and when it expires, both as Unix time (the entry may be read by another process).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import orjson

from otel_cache.core.keys import query_key

__all__ = [
    "ENVELOPE_VERSION",
    "X_CACHE",
    "Action",
    "CachedResponse",
    "Directives",
    "RequestKey",
    "acceptable",
    "choose_action",
    "etag_for",
    "max_age",
    "normalise_vary",
    "not_modified",
    "parse_entry",
    "request_directives",
    "request_key",
    "response_headers",
]

ENVELOPE_VERSION = 1
X_CACHE = "x-cache"
# RFC 9111 §1.2.2: caches must accept up to 2**31; a year is the customary "forever".
_MAX_AGE_LIMIT = 365 * 24 * 3600
_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})


class Action(Enum):
    """What a request asks of the cache."""

    LOOKUP = "lookup"  # serve from the cache; load (single-flight) on a miss
    REFRESH = "refresh"  # do not serve from the cache; load and store
    BYPASS = "bypass"  # neither read nor write


@dataclass(frozen=True, slots=True)
class Directives:
    """The request's cache directives that ``@cached`` honours."""

    no_store: bool = False
    no_cache: bool = False
    max_age: int | None = None


def request_directives(cache_control: str | None, pragma: str | None = None) -> Directives:
    """Parse ``Cache-Control`` (and the HTTP/1.0 ``Pragma: no-cache`` when it is absent).

    Unknown directives are ignored, and so is a malformed ``max-age`` (RFC 9111 §4.2.1).
    """
    if cache_control is None:
        no_cache = pragma is not None and "no-cache" in _tokens(pragma)
        return Directives(no_cache=no_cache)
    no_store = no_cache = False
    age: int | None = None
    for token in _tokens(cache_control):
        name, _, value = token.partition("=")
        if name == "no-store":
            no_store = True
        elif name == "no-cache":
            no_cache = True
        elif name == "max-age":
            value = value.strip().strip('"')
            if value.isdigit():
                age = int(value)
    return Directives(no_store=no_store, no_cache=no_cache, max_age=age)


def choose_action(method: str, directives: Directives) -> Action:
    """BYPASS for unsafe methods and ``no-store``; REFRESH for ``no-cache`` and ``max-age=0``.

    Only GET and HEAD are cached: the key holds no request body, so caching a POST
    would answer different bodies with one response.
    """
    if method.upper() not in _CACHEABLE_METHODS or directives.no_store:
        return Action.BYPASS
    if directives.no_cache or directives.max_age == 0:
        return Action.REFRESH
    return Action.LOOKUP


def _tokens(header: str) -> list[str]:
    return [token.strip().lower() for token in header.split(",") if token.strip()]


# -- keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestKey:
    """What identifies a cached response; only its digest is ever stored or recorded."""

    endpoint: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, tuple[str, ...]], ...]


def normalise_vary(names: Iterable[str]) -> tuple[str, ...]:
    """Header names lower-cased, without duplicates, in the order given.

    Raises:
        ValueError: a name is empty or not a string.
    """
    seen: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"vary_headers must be header names, got {name!r}")
        seen[name.strip().lower()] = None
    return tuple(seen)


def request_key(
    *,
    namespace: str,
    endpoint: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, Sequence[str]],
) -> str:
    """``{namespace}:RequestKey:{digest}``: the same for the same request, whatever its query order.

    Query parameters are sorted by name only: the values of a repeated parameter keep
    their order (``?tag=b&tag=a`` is a list the endpoint may read in order). ``HEAD``
    shares the key of ``GET``. A header that is absent differs from one that is empty.
    """
    method = method.upper()
    key = RequestKey(
        endpoint=endpoint,
        method="GET" if method == "HEAD" else method,
        path=path,
        query=tuple(sorted(query, key=lambda item: item[0])),
        headers=tuple((name, tuple(headers.get(name, ()))) for name in sorted(headers)),
    )
    return query_key(key, prefix=namespace)


# -- entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A cached body with its ETag; ``stored_at`` and ``expires_at`` are Unix times."""

    body: object
    etag: str
    stored_at: float
    expires_at: float | None  # None: never expires

    @classmethod
    def create(cls, body: object, *, ttl: float, now: float) -> CachedResponse:
        """A new entry for ``body`` (already JSON data), stored at ``now`` for ``ttl`` seconds."""
        expires = now + ttl if math.isfinite(ttl) else None
        return cls(body=body, etag=etag_for(body), stored_at=now, expires_at=expires)

    def to_data(self) -> dict[str, object]:
        """The envelope as JSON data, for the cache."""
        return {
            "v": ENVELOPE_VERSION,
            "body": self.body,
            "etag": self.etag,
            "stored_at": self.stored_at,
            "expires_at": self.expires_at,
        }

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def remaining(self, now: float) -> float | None:
        """Seconds of freshness left (``None``: never expires)."""
        return None if self.expires_at is None else max(0.0, self.expires_at - now)


def parse_entry(data: object) -> CachedResponse | None:
    """The entry in ``data``, or ``None`` if it is not an envelope of this version."""
    if not isinstance(data, Mapping) or data.get("v") != ENVELOPE_VERSION:
        return None
    etag, stored, expires = data.get("etag"), data.get("stored_at"), data.get("expires_at")
    if not isinstance(etag, str) or not _is_number(stored) or not (expires is None or _is_number(expires)):
        return None
    assert isinstance(stored, int | float)  # for mypy: checked above
    assert expires is None or isinstance(expires, int | float)
    return CachedResponse(
        body=data.get("body"),
        etag=etag,
        stored_at=float(stored),
        expires_at=None if expires is None else float(expires),
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def acceptable(entry: CachedResponse, directives: Directives, now: float) -> bool:
    """Whether a cached entry may answer: not older than the request's ``max-age``."""
    return directives.max_age is None or entry.age(now) <= directives.max_age


def etag_for(body: object) -> str:
    """A weak ETag of ``body``: the same for equal JSON data, whatever its key order."""
    payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return f'W/"{hashlib.blake2b(payload, digest_size=16).hexdigest()}"'


def not_modified(if_none_match: str | None, etag: str, method: str) -> bool:
    """``If-None-Match`` matches ``etag`` (weak comparison, lists and ``*``), for GET and HEAD."""
    if if_none_match is None or method.upper() not in _CACHEABLE_METHODS:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = _opaque(etag)
    return any(_opaque(tag) == ours for tag in if_none_match.split(","))


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag[:2] in ("W/", "w/") else tag


def max_age(seconds: float | None) -> int:
    """The ``max-age`` value for ``seconds`` of freshness (``None``: never expires)."""
    if seconds is None or seconds >= _MAX_AGE_LIMIT:
        return _MAX_AGE_LIMIT
    # Rounded down, so that a downstream cache never keeps the response longer than we do.
    return max(0, math.floor(seconds))


def response_headers(
    entry: CachedResponse, *, now: float, hit: bool, vary: Sequence[str] = ()
) -> dict[str, str]:
    """``Cache-Control``, ``ETag``, ``X-Cache`` and (with ``vary``) ``Vary`` for ``entry``."""
    headers = {
        "cache-control": f"max-age={max_age(entry.remaining(now))}",
        "etag": entry.etag,
        X_CACHE: "HIT" if hit else "MISS",
    }
    if vary:
        headers["vary"] = ", ".join(vary)
    return headers
