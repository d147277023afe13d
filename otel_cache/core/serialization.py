"""How values are stored in L2: safe by default.

Every serialized value starts with a one-byte format tag (in Redis, after the
expiry header of :mod:`otel_cache.backends.envelope`)::

    b"j" + orjson bytes                      json    (default), plain data
    b"J" + orjson bytes of a tagged tree     json, values that need type tags
    b"m" + msgpack bytes                     msgpack (needs the msgpack extra), plain data
    b"M" + msgpack bytes of a tagged tree    msgpack, values that need type tags
    b"p" + HMAC-SHA256(key, data) + data     pickle  (opt-in, signed)
    b"z" / b"l" + a frame of the above       compressed (zstd / lz4): core.compression

Reading accepts json and msgpack whatever the configured writer, so a namespace
can move from one to the other. A pickled value is only ever unpickled when pickle
is enabled *and* its HMAC verifies with the configured key: a shared Redis cannot
make this process run code. Bytes that fail any of this raise
:class:`~otel_cache.errors.SerializationError`, which the multi-level cache counts
and treats as a miss.

JSON and msgpack give back what was put, equal and of the same type, for the types
of :mod:`otel_cache.core.value_tree` (tuples, dates, UUIDs, Decimals, declared Enum,
dataclass and pydantic types...); anything else raises ``SerializationError`` when
written, and :class:`~otel_cache.MultiLevelCache` refuses it at ``put`` whether or
not Redis is configured. Plain data is checked by one walk in Python, then
written by orjson or msgpack; only a value that needs tags is rebuilt first (costs:
``docs/benchmarks.md``, "Values").
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from otel_cache.core.compression import COMPRESSED_TAGS, decompress
from otel_cache.core.value_tree import NO_TYPES, ValueTypes, from_tree, is_plain, to_tree
from otel_cache.errors import CacheConfigError, SerializationError

__all__ = ["Serializer", "make_serializer"]

_JSON, _TAGGED_JSON, _MSGPACK, _TAGGED_MSGPACK, _PICKLE = b"jJmMp"
_DIGEST = 32


class Serializer(Protocol):
    """Turns values into bytes for L2 and back."""

    name: str

    def check(self, value: Any) -> None:
        """Raise :class:`SerializationError` if ``value`` cannot be stored as it is."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class _Codec:
    """Decodes every tag it is allowed to; subclasses choose how to encode."""

    name = "json"
    native_bytes = False

    def __init__(self, hmac_key: bytes | None = None, types: ValueTypes = NO_TYPES) -> None:
        self._hmac_key = hmac_key
        self._types = types
        self._msgpack: Any = _import_msgpack(required=False)

    def check(self, value: Any) -> None:
        if not is_plain(value, native_bytes=self.native_bytes):
            to_tree(value, self._types, native_bytes=self.native_bytes)

    def dumps(self, value: Any) -> bytes:
        if is_plain(value, native_bytes=False):
            tag, tree = b"j", value
        else:
            tag, tree = b"J", to_tree(value, self._types, native_bytes=False)
        try:
            return tag + orjson.dumps(tree)
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            raise SerializationError(f"cannot encode a {type(value).__name__} as JSON: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        if not data:
            raise SerializationError("empty value")
        tag, body = data[0], memoryview(data)[1:]
        try:
            if tag == _JSON:
                return orjson.loads(body)
            if tag == _TAGGED_JSON:
                return from_tree(orjson.loads(body), self._types)
            if tag in (_MSGPACK, _TAGGED_MSGPACK) and self._msgpack is not None:
                tree = self._msgpack.unpackb(body, raw=False, strict_map_key=False)
                return tree if tag == _MSGPACK else from_tree(tree, self._types)
            if tag == _PICKLE and self._hmac_key is not None:
                return self._unpickle(bytes(body))
            if tag in COMPRESSED_TAGS:
                inner = decompress(tag, bytes(body))
                if inner[:1] and inner[0] in COMPRESSED_TAGS:
                    raise SerializationError("refusing a value compressed twice")
                return self.loads(inner)
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
    native_bytes = True

    def __init__(self, hmac_key: bytes | None = None, types: ValueTypes = NO_TYPES) -> None:
        super().__init__(hmac_key, types)
        self._msgpack = _import_msgpack(required=True)

    def dumps(self, value: Any) -> bytes:
        if is_plain(value, native_bytes=True):
            tag, tree = b"m", value
        else:
            tag, tree = b"M", to_tree(value, self._types, native_bytes=True)
        try:
            packed: bytes = self._msgpack.packb(tree, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"cannot encode a {type(value).__name__} as msgpack: {exc}") from exc
        return tag + packed


class _PickleCodec(_Codec):
    name = "pickle"

    def check(self, value: Any) -> None:
        pass  # what pickle cannot store fails in dumps

    def dumps(self, value: Any) -> bytes:
        assert self._hmac_key is not None
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(f"cannot pickle a {type(value).__name__}: {exc}") from exc
        return b"p" + hmac.new(self._hmac_key, payload, hashlib.sha256).digest() + payload


def make_serializer(
    name: str = "json", *, pickle_hmac_key: bytes | None = None, value_types: Iterable[type] = ()
) -> Serializer:
    """The serializer called ``name``; pickle requires ``pickle_hmac_key``; ``value_types``
    are the Enum, dataclass and pydantic classes JSON and msgpack may store."""
    types = ValueTypes(value_types)
    if name == "json":
        return _Codec(types=types)
    if name == "msgpack":
        return _MsgpackCodec(types=types)
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
