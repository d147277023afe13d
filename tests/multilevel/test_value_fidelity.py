"""What is put comes back equal and of the same type, from L1, from Redis and in another process's cache.

Every supported type (``otel_cache.core.value_tree``) through both serializers and
both APIs, on the session redis-server; the rest is refused at ``put`` before anything
is written, with or without Redis.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import uuid
from decimal import Decimal
from typing import Any

import pydantic
import pytest
import redis

from otel_cache import SerializationError
from tests.multilevel.adapters import CacheAdapter
from tests.multilevel.test_redis_levels import Make
from tests.support.config import patient_config


class Colour(enum.Enum):
    RED = "red"
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1


class Flavour(enum.StrEnum):
    SWEET = "sweet"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: tuple[int, int]


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    placed: dt.datetime
    total: Decimal
    lines: list[Point]
    colour: Colour


class User(pydantic.BaseModel):
    name: str
    joined: dt.date
    tags: tuple[str, ...]


class Undeclared(enum.Enum):
    ONE = 1


@dataclasses.dataclass
class UndeclaredPoint:
    x: int


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyList(list[int]):
    pass


DECLARED = (Colour, Level, Flavour, Point, Order, User)

VALUES: dict[str, Any] = {
    "str": "héllo \u2603",
    "empty-str": "",
    "bytes": b"\x00\xffraw",
    "bytearray": bytearray(b"abc"),
    "int": -(2**63),
    "big-int": 2**100,
    "float": 1.5,
    "inf": -math.inf,
    "bool": True,
    "none": None,
    "list": [1, "a", None, [2.5, {"x": []}]],
    "tuple": (1, (2, "a")),
    "empty-tuple": (),
    "tuple-in-dict": {"pair": (1, 2), "list": [(3,)]},
    "dict": {"a": {"b": [1, 2, {"c": None}]}},
    "int-keys": {1: "one", 2: "two"},
    "tuple-keys": {(1, "a"): [1]},
    "marker-key": {"~": "tuple", "v": [1]},
    "set": {1, 2, 3},
    "frozenset": frozenset({"a"}),
    "datetime": dt.datetime(2026, 12, 4, 13, 5, 6, 789, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "naive-datetime": dt.datetime(2026, 1, 2, 3, 4),
    "date": dt.date(2026, 2, 28),
    "time": dt.time(23, 59, 1, 5),
    "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "uuid": uuid.UUID(int=12345),
    "decimal": Decimal("-1.2300"),
    "enum": Colour.GREEN,
    "int-enum": Level.LOW,
    "str-enum": Flavour.SWEET,
    "dataclass": Point(1, (2, 3)),
    "nested-dataclass": Order(
        uuid.UUID(int=7), dt.datetime(2026, 1, 1), Decimal("9.99"), [Point(0, (0, 0))], Colour.RED
    ),
    "model": User(name="ada", joined=dt.date(2020, 1, 1), tags=("a", "b")),
    "models-in-a-tuple": (User(name="a", joined=dt.date(2021, 1, 1), tags=()), 1),
}


def same(left: Any, right: Any) -> bool:
    """Equal and of the same types all the way down (NaN aside, which is never equal)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(v, right[k]) for k, v in left.items())
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if dataclasses.is_dataclass(left) and not isinstance(left, type):
        return same(dataclasses.asdict(left), dataclasses.asdict(right))
    if isinstance(left, pydantic.BaseModel):
        return same(dict(left), dict(right))
    return bool(left == right)


@pytest.fixture(params=["json", "msgpack"])
def serializer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pair(make_cache: Make, redis_url: str, serializer: str) -> tuple[CacheAdapter, CacheAdapter]:
    """Two caches on one Redis and namespace, as two processes would have them."""
    config = patient_config(redis_url=redis_url, namespace="fidelity", serializer=serializer)
    return make_cache(config, value_types=DECLARED), make_cache(config, value_types=DECLARED)


@pytest.mark.parametrize("name", list(VALUES))
async def test_a_value_comes_back_as_it_went_in_from_every_level(
    pair: tuple[CacheAdapter, CacheAdapter], name: str
) -> None:
    writer, other = pair
    value = VALUES[name]
    assert await writer.put(name, value)
    from_l1 = await writer.get(name)
    writer.l1.clear()
    from_redis = await writer.get(name)
    from_another_process = await other.get(name)
    for got in (from_l1, from_redis, from_another_process):
        assert same(got, value), (name, got)
    assert (await writer.stats()).l2.decode_errors == 0


async def test_many_values_at_once_come_back_as_they_went_in(pair: tuple[CacheAdapter, CacheAdapter]) -> None:
    writer, other = pair
    await writer.put_many(VALUES)
    got = await other.get_many(list(VALUES))
    assert all(same(got[name], value) for name, value in VALUES.items())


async def test_nan_comes_back_as_a_float_nan(pair: tuple[CacheAdapter, CacheAdapter]) -> None:
    writer, other = pair
    await writer.put("nan", [math.nan])
    (got,) = await other.get("nan")
    assert type(got) is float
    assert math.isnan(got)


UNSTORABLE: dict[str, Any] = {
    "object": object(),
    "undeclared-enum": Undeclared.ONE,
    "undeclared-dataclass": UndeclaredPoint(1),
    "str-subclass": MyStr("a"),
    "int-subclass": MyInt(1),
    "list-subclass": MyList([1]),
    "nested": {"fine": [1, 2], "not": [object()]},
    "in-a-tuple": (1, Undeclared.ONE),
    "function": len,
}


@pytest.mark.parametrize("name", list(UNSTORABLE))
async def test_what_cannot_come_back_unchanged_is_refused_and_nothing_is_written(
    pair: tuple[CacheAdapter, CacheAdapter], raw_redis: redis.Redis, name: str
) -> None:
    writer, other = pair
    await writer.put("a", "old")
    with pytest.raises(SerializationError):
        await writer.put("a", UNSTORABLE[name])
    assert writer.l1.get("a") == "old"
    assert await other.get("a") == "old"
    assert raw_redis.exists("fidelity:a") == 1
    assert (await writer.stats()).l2.encode_errors == 1


async def test_put_many_with_one_unstorable_value_writes_none_of_them(
    pair: tuple[CacheAdapter, CacheAdapter], raw_redis: redis.Redis
) -> None:
    writer, _ = pair
    with pytest.raises(SerializationError, match="1 of 3"):
        await writer.put_many({"good": 1, "bad": object(), "also": 2})
    assert raw_redis.exists("fidelity:good", "fidelity:bad", "fidelity:also") == 0
    assert writer.l1.get_many(["good", "bad", "also"]) == {}


@pytest.mark.parametrize("name", ["object", "undeclared-enum", "str-subclass", "nested"])
async def test_without_redis_the_same_values_are_refused(make_cache: Make, name: str) -> None:
    cache = make_cache(patient_config(), value_types=DECLARED)
    with pytest.raises(SerializationError):
        await cache.put("a", UNSTORABLE[name])
    with pytest.raises(SerializationError):
        await cache.put_many({"b": 1, "a": UNSTORABLE[name]})
    assert len(cache.l1) == 0
    assert await cache.put("t", VALUES["nested-dataclass"])
    assert same(await cache.get("t"), VALUES["nested-dataclass"])


async def test_a_stored_node_naming_an_undeclared_type_is_a_miss_not_an_import(
    make_cache: Make, redis_url: str, raw_redis: redis.Redis
) -> None:
    # A foreign writer names a class this process never declared: nothing is imported or built.
    cache = make_cache(patient_config(redis_url=redis_url, namespace="fidelity"), value_types=DECLARED)
    await cache.put("a", Point(1, (2, 3)))
    stored = raw_redis.get("fidelity:a")
    assert stored is not None
    forged = stored.replace(f"{Point.__module__}.Point".encode(), b"subprocess.Popen")
    assert forged != stored
    raw_redis.set("fidelity:a", forged)
    cache.l1.clear()
    missing = object()
    assert await cache.get("a", missing) is missing
    assert (await cache.stats()).l2.decode_errors == 1


async def test_a_value_larger_than_l1_is_kept_in_redis_only_and_served_from_there(
    make_cache: Make, redis_url: str
) -> None:
    config = patient_config(redis_url=redis_url, namespace="fidelity", l1_max_bytes=4096)
    cache, other = make_cache(config), make_cache(config)
    big = "x" * 10_000
    assert await cache.put("big", big) is False
    assert cache.l1.get("big") is None
    assert await cache.get("big") == big
    assert await other.get("big") == big
    assert cache.l1.get("big") is None  # the fill is rejected too
    stats = await cache.stats()
    assert stats.l1.evictions["rejected"] == 2  # the put and the fill
    assert stats.l2.hits == 1
