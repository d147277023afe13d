"""How values are stored in L2: safe by default.

Every serialized value starts with a one-byte format tag (in Redis, after the
expiry header of :mod:`otel_cache.backends.envelope`)::

    b"j" + orjson bytes                      json    (default)
    b"m" + msgpack bytes                     msgpack (needs the msgpack extra)
    b"p" + HMAC-SHA256(key, data) + data     pickle  (opt-in, signed)

Reading accepts json and msgpack whatever the configured writer, so a namespace
can move from one to the other. A pickled value is only ever unpickled when pickle
is enabled *and* its HMAC verifies with the configured key: a shared Redis cannot
make this process run code. Bytes that fail any of this raise
:class:`~otel_cache.errors.SerializationError`, which the multi-level cache counts
and treats as a miss.

JSON and msgpack store JSON-like data: tuples come back as lists, and a value that
has no such form (a set, an arbitrary object) raises ``SerializationError`` when
written. L1 keeps the Python object itself, so such a value is still cached in L1.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any, Protocol

import orjson

from otel_cache.errors import CacheConfigError, SerializationError

__all__ = ["Serializer", "make_serializer"]

_JSON, _MSGPACK, _PICKLE = b"j"[0], b"m"[0], b"p"[0]
_DIGEST = 32


class Serializer(Protocol):
    """Turns values into bytes for L2 and back."""

    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class _Codec:
    """Decodes every tag it is allowed to; subclasses choose how to encode."""

    name = "json"

    def __init__(self, hmac_key: bytes | None = None) -> None:
        self._hmac_key = hmac_key
        self._msgpack: Any = _import_msgpack(required=False)

    def dumps(self, value: Any) -> bytes:
        _check_json(value)
        try:
            return b"j" + orjson.dumps(value)
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            raise SerializationError(f"cannot encode a {type(value).__name__} as JSON: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        if not data:
            raise SerializationError("empty value")
        tag, body = data[0], memoryview(data)[1:]
        try:
            if tag == _JSON:
                return orjson.loads(body)
            if tag == _MSGPACK and self._msgpack is not None:
                return self._msgpack.unpackb(body, raw=False, strict_map_key=False)
            if tag == _PICKLE and self._hmac_key is not None:
                return self._unpickle(bytes(body))
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"cannot decode a stored value: {type(exc).__name__}") from exc
        raise SerializationError(f"refusing a stored value with format tag {bytes([tag])!r}")

    def _unpickle(self, body: bytes) -> Any:
        assert self._hmac_key is not None
        signature, payload = body[:_DIGEST], body[_DIGEST:]
        expected = hmac.new(self._hmac_key, payload, hashlib.sha256).digest()
        if len(signature) != _DIGEST or not hmac.compare_digest(signature, expected):
            raise SerializationError("refusing a pickled value whose signature does not verify")
        return pickle.loads(payload)  # signed by a key only trusted writers hold


class _MsgpackCodec(_Codec):
    name = "msgpack"

    def __init__(self, hmac_key: bytes | None = None) -> None:
        super().__init__(hmac_key)
        self._msgpack = _import_msgpack(required=True)

    def dumps(self, value: Any) -> bytes:
        try:
            packed: bytes = self._msgpack.packb(value, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"cannot encode a {type(value).__name__} as msgpack: {exc}") from exc
        return b"m" + packed


class _PickleCodec(_Codec):
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        assert self._hmac_key is not None
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(f"cannot pickle a {type(value).__name__}: {exc}") from exc
        return b"p" + hmac.new(self._hmac_key, payload, hashlib.sha256).digest() + payload


_JSON_SCALARS = frozenset({str, int, bool, type(None)})


def _check_json(value: Any) -> None:
    """Refuse what JSON would silently change: NaN/inf (null), dataclasses, dates,
    UUIDs, enums and other subclasses (they come back as another type). Tuples are
    allowed and come back as lists (documented)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise SerializationError(f"value nested deeper than {_MAX_DEPTH} levels (or refers to itself)")
        kind = type(item)
        if kind in _JSON_SCALARS:
            continue
        if kind is float:
            if item != item or item in (_INF, -_INF):
                raise SerializationError(f"JSON cannot store {item!r}")
        elif kind is list or kind is tuple:
            stack.extend((child, depth + 1) for child in item)
        elif kind is dict:
            for key, child in item.items():
                if type(key) is not str:
                    raise SerializationError(f"JSON object keys must be str, got {type(key).__name__}")
                stack.append((child, depth + 1))
        else:
            raise SerializationError(
                f"JSON would not give back a {kind.__name__}: use plain data, msgpack or pickle"
            )


_INF = float("inf")
_MAX_DEPTH = 256


def make_serializer(name: str = "json", *, pickle_hmac_key: bytes | None = None) -> Serializer:
    """The serializer called ``name``; pickle requires ``pickle_hmac_key``."""
    if name == "json":
        return _Codec()
    if name == "msgpack":
        return _MsgpackCodec()
    if name == "pickle":
        if not pickle_hmac_key:
            raise CacheConfigError("the pickle serializer needs an HMAC key")
        return _PickleCodec(pickle_hmac_key)
    raise CacheConfigError(f"unknown serializer {name!r}")


def _import_msgpack(*, required: bool) -> Any:
    try:
        import msgpack
    except ImportError as exc:
        if required:
            raise CacheConfigError("the msgpack serializer needs `pip install otel-cache[msgpack]`") from exc
        return None
    return msgpack
