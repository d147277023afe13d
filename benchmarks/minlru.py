"""The floor: the smallest correct LRU on an ``OrderedDict``, sync and async.

No lock, no TTL, no counters, no sizing: the cost of the LRU bookkeeping alone in
pure Python. Every other row is compared with the row of this cache doing the same
operation (the ratio column).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["AsyncMinLRU", "MinLRU"]


class MinLRU:
    """At most ``max_entries`` entries; a hit moves its key to the young end."""

    __slots__ = ("_data", "_max")

    def __init__(self, max_entries: int) -> None:
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._max = max_entries

    def get(self, key: Hashable, default: Any = None) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            return default
        self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        data = self._data
        if key in data:
            data.move_to_end(key)
        data[key] = value
        if len(data) > self._max:
            data.popitem(last=False)


class AsyncMinLRU(MinLRU):
    """:class:`MinLRU` with ``async def`` twins; the bodies are copied, not called, so the
    async rows add only the cost of creating and awaiting a coroutine."""

    __slots__ = ()

    async def aget(self, key: Hashable, default: Any = None) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            return default
        self._data.move_to_end(key)
        return value

    async def aput(self, key: Hashable, value: Any) -> None:
        data = self._data
        if key in data:
            data.move_to_end(key)
        data[key] = value
        if len(data) > self._max:
            data.popitem(last=False)
