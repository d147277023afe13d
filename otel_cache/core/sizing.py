"""Byte sizes of cached values, for the L1 byte bound.

:func:`deep_sizeof` is ``sys.getsizeof`` plus the contents of the common
containers (list, tuple, set, frozenset, dict and their subclasses), recursively,
each object counted once per value. It is an estimate of what the value keeps
alive, not an exact figure: objects shared between values (interned strings,
small ints) are charged to every value that holds them. Any callable
``(object) -> int`` can replace it (``Sizer``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["Sizer", "deep_sizeof", "entry_size", "shallow_entry_size"]

Sizer = Callable[[object], int]

_getsizeof = sys.getsizeof
_CONTAINERS = (list, tuple, set, frozenset, dict)
_MAX_DEPTH = 32
_SCALARS = frozenset({str, int, float, bytes, bool, type(None)})


def deep_sizeof(value: object) -> int:
    """Return the size in bytes of ``value`` and of the containers' contents."""
    kind = type(value)
    if kind in _SCALARS or not isinstance(value, _CONTAINERS):  # the set lookup is the fast path
        return _getsizeof(value)
    return _size(value, set(), 0)


def _size(value: object, seen: set[int], depth: int) -> int:
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = _getsizeof(value)
    if depth >= _MAX_DEPTH or not isinstance(value, _CONTAINERS):
        return size
    if isinstance(value, dict):
        for k, v in value.items():
            size += _size(k, seen, depth + 1) + _size(v, seen, depth + 1)
    else:
        for item in value:
            size += _size(item, seen, depth + 1)
    return size


def entry_size(key: object, value: object) -> int:
    """``deep_sizeof(key) + deep_sizeof(value)`` in one call: the L1 put path's default.

    ``sys.getsizeof`` costs a special-method lookup (about as much as the rest of a
    put); an ASCII ``str``, the most common key and a common value, is sized from its
    length instead (CPython's compact ASCII layout: ``getsizeof("") + len(s)``).
    """
    kind = type(key)
    if kind is str and key.isascii():  # type: ignore[attr-defined]
        key_size = _STR_BASE + len(key)  # type: ignore[arg-type]
    else:
        key_size = _getsizeof(key) if kind in _SCALARS else deep_sizeof(key)
    kind = type(value)
    if kind is str and value.isascii():  # type: ignore[attr-defined]
        return key_size + _STR_BASE + len(value)  # type: ignore[arg-type]
    return key_size + (_getsizeof(value) if kind in _SCALARS else deep_sizeof(value))


def shallow_entry_size(key: object, value: object) -> int:
    """``sys.getsizeof`` of the key and of the value themselves, not of what they contain.

    What the L1 counts in its bytes metric when no byte bound is set, so that a put
    never walks a value: exact for strings, bytes and numbers, an underestimate for
    containers (a dict counts its own table, not its keys and values).
    """
    key_size = _STR_BASE + len(key) if type(key) is str and key.isascii() else _getsizeof(key)
    if type(value) is str and value.isascii():
        return key_size + _STR_BASE + len(value)
    return key_size + _getsizeof(value)


_STR_BASE = _getsizeof("")
