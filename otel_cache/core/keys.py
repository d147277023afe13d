"""Keys: how a cache key becomes a Redis key, and how a query becomes a cache key.

L2 keys are ``{namespace}:{rendered key}``. A ``str`` key is rendered as itself (so
Redis keys stay readable); any other supported key (``int``, ``float``, ``bool``,
``None``, ``bytes``, and tuples of these) is rendered as ``\\x1f`` followed by a
tagged JSON form, and a ``str`` key that itself starts with ``\\x1f`` is escaped
the same way, so two different keys never share a Redis key. Keys that compare
equal in Python (``1``, ``1.0``, ``True``) share one Redis key, as they share one
L1 entry. Anything else raises :class:`~otel_cache.errors.CacheKeyError`, and so
does a rendered key longer than ``max_key_length``.

Query keys (:func:`query_key`) are ``query:{type}:{digest}``: a BLAKE2b digest of a
canonical JSON form of the query in which dict keys are sorted and sets ordered,
so the same query always gives the same key, in any process, whatever the order
of its fields. Dataclasses and pydantic models are canonicalised through their
fields, and their type name is part of the key (two query types with the same
fields do not collide). Tuples and lists are sequences (order matters).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
from collections.abc import Hashable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from pathlib import PurePath
from typing import Any
from uuid import UUID

import orjson

from otel_cache.errors import CacheKeyError

__all__ = ["L2KeyBuilder", "canonical_digest", "parse_key", "query_key", "render_key"]

_ESCAPE = "\x1f"
_SCALARS = frozenset({str, int, bool, type(None)})
_INT_MIN, _INT_MAX = -(2**63), 2**64


def render_key(key: Hashable) -> str:
    """The text form of ``key`` inside Redis (without namespace)."""
    if isinstance(key, str):
        text = key if type(key) is str else str.__str__(key)  # str subclasses (StrEnum) equal their str
        return text if not text.startswith(_ESCAPE) else _ESCAPE + _dumps(["s", text])
    return _ESCAPE + _dumps(_tag(key))


class L2KeyBuilder:
    """Builds namespaced Redis keys and checks their length."""

    __slots__ = ("max_length", "prefix")

    def __init__(self, namespace: str, max_length: int) -> None:
        if not namespace or ":" in namespace:
            raise CacheKeyError(f"a namespace must be non-empty and contain no ':', got {namespace!r}")
        self.prefix = f"{namespace}:"
        self.max_length = max_length

    def __call__(self, key: Hashable) -> str:
        # A plain str key that needs no escape is itself (render_key's first case, inlined).
        rendered = key if type(key) is str and key[:1] != _ESCAPE else render_key(key)
        if len(rendered) > self.max_length:
            raise CacheKeyError(
                f"key is {len(rendered)} characters long once encoded; the limit is {self.max_length}"
            )
        return self.prefix + rendered

    def parse(self, l2_key: str) -> Hashable:
        """The cache key behind ``l2_key`` (a key equal to the one rendered); CacheKeyError if none."""
        if not l2_key.startswith(self.prefix):
            raise CacheKeyError("not a key of this namespace")
        return parse_key(l2_key[len(self.prefix) :])


def parse_key(rendered: str) -> Hashable:
    """The inverse of :func:`render_key`, up to equality (``1.0`` and ``True`` come back as ``1``)."""
    if not rendered.startswith(_ESCAPE):
        return rendered
    try:
        return _untag(orjson.loads(rendered[1:]))
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError) as exc:
        raise CacheKeyError(f"not a rendered key: {exc}") from exc


def _untag(tagged: Any) -> Hashable:
    kind = tagged[0]
    if kind == "n":
        return None
    if kind == "i":
        return int(tagged[1])
    if kind == "f":
        return float(tagged[1])
    if kind == "s":
        return str(tagged[1])
    if kind == "b":
        return bytes.fromhex(tagged[1])
    if kind == "t":
        return tuple(_untag(item) for item in tagged[1])
    raise ValueError(f"unknown key tag {kind!r}")


def _tag(key: object) -> object:
    if key is None:
        return ["n"]
    if isinstance(key, bool | int):
        return ["i", str(int(key))]
    if isinstance(key, float):
        if math.isfinite(key) and key.is_integer():
            return ["i", str(int(key))]
        return ["f", repr(key)]
    if isinstance(key, str):
        return ["s", str.__str__(key)]
    if isinstance(key, bytes):
        return ["b", key.hex()]
    if isinstance(key, tuple):
        return ["t", [_tag(item) for item in key]]
    raise CacheKeyError(
        f"a {type(key).__name__} key cannot be stored in L2; "
        "use str, int, float, bytes, None or tuples of them"
    )


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


# -- query keys ------------------------------------------------------------------


def query_key(query: object, *, prefix: str = "query") -> str:
    """A stable, order-independent cache key for ``query``.

    Raises :class:`~otel_cache.errors.CacheKeyError` for a query containing values
    with no canonical form (arbitrary objects, NaN).
    """
    return f"{prefix}:{_type_name(query)}:{canonical_digest(query)}"


def canonical_digest(value: object) -> str:
    """The BLAKE2b digest (32 hex digits) of ``value``'s canonical form: equal for equal
    values in any process, whatever the order of dict keys and sets.

    Raises :class:`~otel_cache.errors.CacheKeyError` as :func:`query_key` does.
    """
    # A dict of names to scalars (most calls' arguments) is its own canonical form.
    plain = type(value) is dict and all(
        type(item) in _SCALARS
        and (type(item) is not int or _INT_MIN <= item < _INT_MAX)
        and type(name) is str
        and name[:1] != _ESCAPE
        for name, item in value.items()
    )
    canonical = value if plain else _canonical(value)
    try:
        payload = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise CacheKeyError(f"query cannot be hashed: {exc}") from exc
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def _type_name(query: object) -> str:
    return type(query).__name__


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value < _INT_MAX else {"__int__": str(value)}  # orjson: 64 bits
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CacheKeyError(f"queries cannot contain {value!r}")
        return _canonical(int(value)) if value.is_integer() else value
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID | PurePath | IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, timedelta):
        return {"__timedelta__": value.total_seconds()}
    if isinstance(value, Mapping):
        return {str(_canonical_key(k)): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        items = [_canonical(item) for item in value]
        return sorted(items, key=lambda item: orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"__type__": _type_name(value), **_canonical(fields)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # pydantic v2 model
        # Python mode keeps sets as sets, which _canonical orders; JSON mode would list them in hash order.
        return {"__type__": _type_name(value), **_canonical(model_dump())}
    jsonable = _pydantic_jsonable(value)  # pydantic types such as HttpUrl have a JSON form
    if jsonable is not None:
        return _canonical(jsonable)
    raise CacheKeyError(
        f"queries cannot contain a {type(value).__name__}; use plain data, dataclasses or models"
    )


def _pydantic_jsonable(value: object) -> object | None:
    if not type(value).__module__.startswith("pydantic"):
        return None
    try:
        from pydantic_core import to_jsonable_python
    except ImportError:
        return None
    try:
        jsonable: object = to_jsonable_python(value)
    except Exception:
        return None
    return jsonable if isinstance(jsonable, str | int | float | list | dict) else None


def _canonical_key(key: object) -> object:
    canonical = _canonical(key)
    if isinstance(canonical, str) and not canonical.startswith(_ESCAPE):
        return canonical
    return _ESCAPE + orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS).decode()
