"""Values as trees that JSON or msgpack store exactly: what is put comes back equal and of the same type.

JSON and msgpack know a few types; a cache that hands them a tuple gets a list
back, and a list from Redis where L1 gave a tuple. This module closes that gap
for a documented set of types, and refuses the rest::

    plain (stored as is)    str, int (64-bit), bool, None, finite float, list, dict with
                            str keys; bytes with msgpack
    tagged                  larger ints, tuple, set, frozenset, bytes (JSON), bytearray, NaN and ±inf,
                            dict with other keys, datetime, date, time, timedelta, UUID,
                            Decimal
    tagged, by declared type  Enum members, dataclasses, pydantic models: their class
                            must be given (``MultiLevelCache(value_types=[...])``)
    refused                 anything else, subclasses of the types above included
                            (a ``str`` subclass would come back as ``str``):
                            :class:`~otel_cache.errors.SerializationError` at ``put``

A tagged node is a one-key-marked object, ``{"~": tag, "v": payload}``; a user dict
that has a ``"~"`` key (or a key that is not a str) is itself tagged, so a stored
object with ``"~"`` is always a node. A declared type travels as its qualified name
(``module.QualName``) and is looked up among the declared types only: nothing read
from Redis makes this process import a module or build an undeclared class.

:func:`is_plain` walks a value without copying it; only values that need tags are
rebuilt (:func:`to_tree`). The hit path never comes here: L1 keeps the object.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from otel_cache.errors import CacheConfigError, SerializationError

__all__ = ["MAX_DEPTH", "ValueTypes", "from_tree", "is_plain", "to_tree"]

MAX_DEPTH = 256
"""Deepest nesting accepted (deeper values, or values that contain themselves, are refused)."""

_MARK = "~"
_SCALARS = frozenset({str, bool, type(None)})
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson and msgpack store as numbers


class ValueTypes:
    """The classes whose instances may be stored: Enum subclasses, dataclasses, pydantic models."""

    __slots__ = ("_by_name", "_names")

    def __init__(self, types: Iterable[type] = ()) -> None:
        self._by_name: dict[str, type] = {}
        self._names: dict[type, str] = {}
        for cls in types:
            if not isinstance(cls, type) or not (
                issubclass(cls, enum.Enum) or dataclasses.is_dataclass(cls) or _is_model_class(cls)
            ):
                raise CacheConfigError(
                    f"value_types take Enum subclasses, dataclasses and pydantic models, got {cls!r}"
                )
            name = f"{cls.__module__}.{cls.__qualname__}"
            if self._by_name.get(name, cls) is not cls:
                raise CacheConfigError(f"two value types are both named {name}")
            self._by_name[name] = cls
            self._names[cls] = name

    def name_of(self, cls: type) -> str:
        try:
            return self._names[cls]
        except KeyError:
            raise SerializationError(
                f"a {cls.__qualname__} is stored only if its class is declared: "
                f"MultiLevelCache(..., value_types=[{cls.__qualname__}])"
            ) from None

    def named(self, name: object) -> type:
        cls = self._by_name.get(name) if isinstance(name, str) else None
        if cls is None:
            raise SerializationError(f"a stored value names an undeclared type {name!r}")
        return cls

    def __bool__(self) -> bool:
        return bool(self._by_name)


NO_TYPES = ValueTypes()


def is_plain(value: Any, *, native_bytes: bool) -> bool:
    """Whether ``value`` needs no tag (it is stored as is); raises for what cannot be stored."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    plain = True
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SerializationError(f"value nested deeper than {MAX_DEPTH} levels (or refers to itself)")
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is int:
            if plain and not _INT_MIN <= item <= _INT_MAX:
                plain = False
        elif kind is float:
            if plain and not math.isfinite(item):
                plain = False
        elif kind is list:
            stack.extend((child, depth + 1) for child in item)
        elif kind is dict:
            for key, child in item.items():
                if type(key) is not str or key == _MARK:
                    plain = False
                    stack.append((key, depth + 1))
                stack.append((child, depth + 1))
        elif kind is bytes:
            plain = plain and native_bytes
        elif kind is tuple or kind is set or kind is frozenset:
            plain = False
            stack.extend((child, depth + 1) for child in item)
        elif kind in _TAGGED_SCALARS:
            plain = False
        else:
            # Enum members, dataclasses, models: checked (and their contents walked) by to_tree.
            _declared_kind(kind)
            plain = False
    return plain


def to_tree(value: Any, types: ValueTypes, *, native_bytes: bool, depth: int = 0) -> Any:
    """``value`` as a tree of plain data with tagged nodes (see the module docstring)."""
    if depth > MAX_DEPTH:
        raise SerializationError(f"value nested deeper than {MAX_DEPTH} levels (or refers to itself)")
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else _node("int", str(value))
    if kind is float:
        return value if math.isfinite(value) else _node("float", repr(value))

    def below(child: Any) -> Any:
        return to_tree(child, types, native_bytes=native_bytes, depth=depth + 1)

    if kind is list:
        return [below(child) for child in value]
    if kind is dict:
        if all(type(key) is str and key != _MARK for key in value):
            return {key: below(child) for key, child in value.items()}
        return _node("dict", [[below(k), below(v)] for k, v in value.items()])
    if kind is bytes:
        return value if native_bytes else _node("bytes", base64.b64encode(value).decode("ascii"))
    if kind is tuple or kind is set or kind is frozenset:
        return _node(kind.__name__, [below(child) for child in value])
    encode = _TAGGED_SCALARS.get(kind)
    if encode is not None:
        return _node(kind.__name__, encode(value))
    declared = _declared_kind(kind)
    name = types.name_of(kind)
    if declared == "enum":
        return {_MARK: "enum", "c": name, "v": value.name}
    if declared == "model":
        return {_MARK: "model", "c": name, "v": value.model_dump_json()}
    fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
    return {_MARK: "dataclass", "c": name, "v": below(fields)}


def from_tree(tree: Any, types: ValueTypes, depth: int = 0) -> Any:
    """The value that :func:`to_tree` made ``tree`` from; :class:`SerializationError` if malformed."""
    if depth > MAX_DEPTH:
        raise SerializationError(f"stored value nested deeper than {MAX_DEPTH} levels")
    kind = type(tree)
    if kind is list:
        return [from_tree(child, types, depth + 1) for child in tree]
    if kind is not dict:
        return tree
    if _MARK not in tree:
        return {key: from_tree(child, types, depth + 1) for key, child in tree.items()}
    tag, payload = tree[_MARK], tree.get("v")
    try:
        return _DECODERS[tag](payload, tree, types, depth + 1)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"a stored {tag!r} node is malformed: {type(exc).__name__}") from exc


def _node(tag: str, payload: Any) -> dict[str, Any]:
    return {_MARK: tag, "v": payload}


def _declared_kind(kind: type) -> str:
    if issubclass(kind, enum.Enum):
        return "enum"
    if _is_model_class(kind):
        return "model"
    if dataclasses.is_dataclass(kind):
        return "dataclass"
    for base in (str, int, float, bytes, list, dict, tuple):
        if issubclass(kind, base):
            raise SerializationError(
                f"a {kind.__name__} (a {base.__name__} subclass) would come back as a {base.__name__}: "
                "store a plain one"
            )
    raise SerializationError(
        f"cannot store a {kind.__name__}: plain data, tuples, sets, dates, UUIDs, Decimals and "
        "declared Enum, dataclass and pydantic types only (or the signed pickle serializer)"
    )


def _is_model_class(cls: type) -> bool:
    try:  # pydantic is optional
        from pydantic import BaseModel
    except ImportError:
        return False
    return issubclass(cls, BaseModel)


def _items(payload: Any, types: ValueTypes, depth: int) -> list[Any]:
    if type(payload) is not list:
        raise SerializationError("a stored collection node has no list of items")
    return [from_tree(child, types, depth) for child in payload]


def _malformed(tag: str) -> Any:
    raise SerializationError(f"a stored {tag!r} node is malformed")


def _decode_float(payload: Any, node: Any, types: ValueTypes, depth: int) -> float:
    if payload not in ("nan", "inf", "-inf"):
        raise SerializationError(f"a stored float node holds {payload!r}")
    return float(payload)


def _decode_dict(payload: Any, node: Any, types: ValueTypes, depth: int) -> dict[Any, Any]:
    return {key: value for key, value in _items(payload, types, depth)}


def _decode_bytes(payload: Any, node: Any, types: ValueTypes, depth: int) -> bytes:
    return base64.b64decode(payload, validate=True)


def _decode_enum(payload: Any, node: Any, types: ValueTypes, depth: int) -> Any:
    cls = types.named(node.get("c"))
    if not issubclass(cls, enum.Enum):
        raise SerializationError(f"a stored enum node names {cls.__qualname__}, not an Enum")
    return cls[payload]


def _decode_model(payload: Any, node: Any, types: ValueTypes, depth: int) -> Any:
    return types.named(node.get("c")).model_validate_json(payload)  # type: ignore[attr-defined]


def _decode_dataclass(payload: Any, node: Any, types: ValueTypes, depth: int) -> Any:
    cls = types.named(node.get("c"))
    fields = from_tree(payload, types, depth)
    if type(fields) is not dict:
        raise SerializationError("a stored dataclass node has no fields")
    return cls(**fields)


_TAGGED_SCALARS: dict[type, Any] = {
    bytearray: lambda v: base64.b64encode(v).decode("ascii"),
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    dt.timedelta: lambda v: [v.days, v.seconds, v.microseconds],
    uuid.UUID: str,
    Decimal: str,
}

_DECODERS: dict[str, Any] = {
    "int": lambda p, n, t, d: int(p) if type(p) is str else _malformed("int"),
    "float": _decode_float,
    "dict": _decode_dict,
    "bytes": _decode_bytes,
    "bytearray": lambda p, n, t, d: bytearray(base64.b64decode(p, validate=True)),
    "tuple": lambda p, n, t, d: tuple(_items(p, t, d)),
    "set": lambda p, n, t, d: set(_items(p, t, d)),
    "frozenset": lambda p, n, t, d: frozenset(_items(p, t, d)),
    "datetime": lambda p, n, t, d: dt.datetime.fromisoformat(p),
    "date": lambda p, n, t, d: dt.date.fromisoformat(p),
    "time": lambda p, n, t, d: dt.time.fromisoformat(p),
    "timedelta": lambda p, n, t, d: dt.timedelta(days=p[0], seconds=p[1], microseconds=p[2]),
    "UUID": lambda p, n, t, d: uuid.UUID(p),
    "Decimal": lambda p, n, t, d: Decimal(p),
    "enum": _decode_enum,
    "model": _decode_model,
    "dataclass": _decode_dataclass,
}
