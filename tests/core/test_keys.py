"""Keys: ``render_key``/``L2KeyBuilder`` (cache key -> Redis key), ``query_key`` (query -> cache key)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import ipaddress
import os
import subprocess
import sys
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, HttpUrl

from otel_cache.core.keys import L2KeyBuilder, query_key, render_key
from otel_cache.errors import CacheError, CacheKeyError

# -- render_key -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "user:42", "héllo", "a b\nc", "{}", '["i","1"]'])
def test_a_str_renders_as_itself(key: str) -> None:
    assert render_key(key) == key


def test_equal_numbers_render_the_same() -> None:
    # 1, 1.0 and True are one dict key in L1, so they must be one Redis key.
    assert {1: "x"} == {1.0: "x"} == {True: "x"}
    assert render_key(1) == render_key(1.0) == render_key(True)
    assert render_key(0) == render_key(0.0) == render_key(-0.0) == render_key(False)
    assert render_key((1, "a")) == render_key((1.0, "a")) == render_key((True, "a"))


def test_a_numeric_string_differs_from_the_number() -> None:
    assert render_key("1") != render_key(1)
    assert render_key("1.5") != render_key(1.5)
    assert render_key("None") != render_key(None)
    assert render_key("True") != render_key(True)


def test_unequal_keys_render_differently() -> None:
    keys: list[Hashable] = [
        None,
        0,
        1,
        -1,
        1.5,
        2**70,
        float("inf"),
        "",
        "1",
        b"",
        b"1",
        b"a",
        "a",
        (),
        ("a",),
        (("a",),),
        ("a", "b"),
        ("a", ("b",)),
        (1,),
        (b"a",),
        (None,),
    ]
    rendered = [render_key(key) for key in keys]
    assert len(set(rendered)) == len(keys)


@pytest.mark.parametrize(
    "key",
    [1, 1.5, None, True, b"1", (1,), ("a", 1), "", "\x1f", "x"],
    ids=repr,
)
def test_a_string_starting_with_the_escape_cannot_collide(key: Hashable) -> None:
    """A str that looks like another key's rendering is escaped, so it never shares its Redis key."""
    impostor = render_key(key)
    if impostor.startswith("\x1f"):
        assert render_key(impostor) != impostor
        assert render_key(impostor) != render_key(key)
    assert render_key("\x1f" + impostor) != impostor


def test_escaped_strings_stay_distinct() -> None:
    keys = ["\x1f", "\x1f\x1f", "\x1fa", "a\x1f", "\x1f" + render_key(1)]
    assert len({render_key(key) for key in keys}) == len(keys)


def test_tuples_nest() -> None:
    assert render_key((1, (2, (3, "x")))) != render_key((1, 2, 3, "x"))
    assert render_key((1, (2, (3, "x")))) == render_key((1.0, (2, (3.0, "x"))))
    assert render_key(((),)) != render_key(())


def test_bytes_keys() -> None:
    assert render_key(b"\x00\xff") != render_key(b"\x00")
    assert render_key(b"abc") != render_key("abc")
    assert "\x00" not in render_key(b"\x00\xff")  # readable in Redis


@pytest.mark.parametrize(
    "key",
    [object(), frozenset({1}), [1, 2], {"a": 1}, (1, object()), (1, frozenset()), 1j, bytearray(b"a")],
    ids=lambda key: type(key).__name__,
)
def test_unsupported_keys_raise(key: object) -> None:
    with pytest.raises(CacheKeyError) as info:
        render_key(key)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, CacheError)


class Colour(enum.StrEnum):
    RED = "red"


class _Tag(str):
    pass


@pytest.mark.parametrize("key", [Colour.RED, _Tag("red")], ids=["StrEnum", "str subclass"])
def test_a_str_subclass_renders_like_the_equal_str(key: str) -> None:
    assert key == "red"
    assert hash(key) == hash("red")
    assert render_key(key) == render_key("red")


def test_l2_key_builder_adds_the_namespace() -> None:
    build = L2KeyBuilder("orders", max_length=100)
    assert build("user:1") == "orders:user:1"
    assert build(1) == "orders:" + render_key(1)
    assert build(("a", 1)) == "orders:" + render_key(("a", 1))


@pytest.mark.parametrize("namespace", ["", "app:v2"])
def test_l2_key_builder_refuses_a_namespace_that_could_overlap_another(namespace: str) -> None:
    # clear() deletes "namespace:*": an empty namespace would match every key, and
    # "app" would match "app:v2:*".
    with pytest.raises(CacheKeyError, match="namespace"):
        L2KeyBuilder(namespace, max_length=10)


def test_l2_key_builder_rejects_long_keys() -> None:
    build = L2KeyBuilder("ns", max_length=5)
    assert build("12345") == "ns:12345"  # the limit is on the key, not the namespace
    with pytest.raises(CacheKeyError, match="5"):
        build("123456")
    with pytest.raises(CacheKeyError):
        build((1, 2, 3))  # long once encoded


def test_l2_key_builder_rejects_unsupported_keys() -> None:
    with pytest.raises(CacheKeyError):
        L2KeyBuilder("ns", max_length=100)(frozenset())  # type: ignore[arg-type]


# -- query_key --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TraversalQuery:
    start: str
    depth: int
    filters: dict[str, str]


@dataclasses.dataclass(frozen=True)
class OtherQuery:
    start: str
    depth: int
    filters: dict[str, str]


class TraversalModel(BaseModel):
    start: str
    depth: int
    filters: dict[str, str]


def test_query_key_format() -> None:
    key = query_key({"a": 1})
    prefix, type_name, digest = key.split(":")
    assert (prefix, type_name) == ("query", "dict")
    assert len(digest) == 32
    int(digest, 16)
    assert query_key({"a": 1}, prefix="q").startswith("q:dict:")


def test_equal_dicts_in_another_order_share_a_key() -> None:
    assert query_key({"a": 1, "b": 2, "c": [1, 2]}) == query_key({"c": [1, 2], "b": 2, "a": 1})


def test_nested_dicts_and_sets_are_order_independent() -> None:
    one = {"outer": {"x": 1, "y": {"p": {3, 1, 2}, "q": "s"}}, "tags": {"b", "a", "c"}}
    two = {"tags": {"c", "a", "b"}, "outer": {"y": {"q": "s", "p": {2, 3, 1}}, "x": 1}}
    assert query_key(one) == query_key(two)
    assert query_key({"s": frozenset({"x", "y"})}) == query_key({"s": frozenset({"y", "x"})})


def test_mixed_type_sets_are_ordered_too() -> None:
    assert query_key({1, "a", None, (1, 2)}) == query_key({(1, 2), None, "a", 1})


def test_list_order_matters() -> None:
    assert query_key({"path": [1, 2]}) != query_key({"path": [2, 1]})
    assert query_key((1, 2)) != query_key((2, 1))


def test_different_values_give_different_keys() -> None:
    queries: list[object] = [
        {"a": 1},
        {"a": 2},
        {"a": "1"},
        {"b": 1},
        {"a": None},
        {"a": [1]},
        {"a": {"b": 1}},
        {"a": 1, "b": 1},
        {},
        {1: "a"},
        {"1": "a"},
    ]
    assert len({query_key(query) for query in queries}) == len(queries)


def test_int_and_str_dict_keys_differ() -> None:
    assert query_key({1: "a"}) != query_key({"1": "a"})


def test_equal_numbers_share_a_key() -> None:
    assert query_key({"depth": 1}) == query_key({"depth": 1.0})
    assert query_key({1: "a"}) == query_key({1.0: "a"})


def test_dataclass_field_order_does_not_matter() -> None:
    one = TraversalQuery(start="a", depth=2, filters={"kind": "svc", "env": "prod"})
    two = TraversalQuery(filters={"env": "prod", "kind": "svc"}, depth=2, start="a")
    assert query_key(one) == query_key(two)
    assert query_key(one).startswith("query:TraversalQuery:")


def test_pydantic_model_field_order_does_not_matter() -> None:
    one = TraversalModel(start="a", depth=2, filters={"kind": "svc", "env": "prod"})
    two = TraversalModel(filters={"env": "prod", "kind": "svc"}, depth=2, start="a")
    two_from_json = TraversalModel.model_validate_json(
        '{"filters":{"env":"prod","kind":"svc"},"depth":2,"start":"a"}'
    )
    assert query_key(one) == query_key(two) == query_key(two_from_json)
    assert query_key(one).startswith("query:TraversalModel:")
    assert query_key(one) != query_key(TraversalModel(start="a", depth=3, filters={}))


def test_types_with_the_same_fields_do_not_collide() -> None:
    fields = {"start": "a", "depth": 2, "filters": {"kind": "svc"}}
    keys = {
        query_key(TraversalQuery(**fields)),  # type: ignore[arg-type]
        query_key(OtherQuery(**fields)),  # type: ignore[arg-type]
        query_key(TraversalModel(**fields)),  # type: ignore[arg-type]
        query_key(fields),
    }
    assert len(keys) == 4


def test_nested_dataclasses_keep_their_type() -> None:
    one = {"q": TraversalQuery(start="a", depth=1, filters={})}
    two = {"q": OtherQuery(start="a", depth=1, filters={})}
    assert query_key(one) != query_key(two)


_SUBPROCESS_SCRIPT = """
import dataclasses
from pydantic import BaseModel
from otel_cache.core.keys import query_key

@dataclasses.dataclass
class TraversalQuery:
    start: str
    depth: int
    filters: dict[str, str]

class TaggedQuery(BaseModel):
    tags: set[str]

plain = [
    {"b": {"y", "x", "z", "w"}, "a": [1, 2.5, None, "s"], "c": {"k": frozenset({"p", "q", "r"})}},
    TraversalQuery(start="svc-a", depth=3, filters={"env": "prod", "kind": "svc", "zone": "eu"}),
]
print(",".join(query_key(query) for query in plain))
print(query_key(TaggedQuery(tags={"alpha", "beta", "gamma", "delta", "epsilon", "zeta"})))
"""


@pytest.fixture(scope="module")
def keys_by_seed() -> list[list[str]]:
    """The lines ``_SUBPROCESS_SCRIPT`` prints, in interpreters with different hash seeds."""
    repo = Path(__file__).resolve().parents[2]
    runs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(repo)}
        done = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        runs.append(done.stdout.splitlines())
    return runs


def test_query_keys_are_stable_across_processes(keys_by_seed: list[list[str]]) -> None:
    here = [
        {"b": {"y", "x", "z", "w"}, "a": [1, 2.5, None, "s"], "c": {"k": frozenset({"p", "q", "r"})}},
        # Same name and fields as the subprocess's dataclass: the key depends on nothing else.
        TraversalQuery(start="svc-a", depth=3, filters={"env": "prod", "kind": "svc", "zone": "eu"}),
    ]
    expected = ",".join(query_key(query) for query in here)
    assert [run[0] for run in keys_by_seed] == [expected] * len(keys_by_seed)


def test_pydantic_set_fields_are_stable_across_processes(keys_by_seed: list[list[str]]) -> None:
    assert len({run[1] for run in keys_by_seed}) == 1


@pytest.mark.parametrize("value", [2**63 - 1, 2**64 - 1, -(2**63), 1e19], ids=repr)
def test_numbers_within_64_bits(value: float) -> None:
    assert query_key({"id": value}) != query_key({"id": 0})


@pytest.mark.parametrize(
    "value",
    [0x4BF92F3577B34DA6A3CE929D0E0E4736, 2**64, -(2**63) - 1, 1e20],
    ids=["trace id", "2**64", "-2**63-1", "1e20"],
)
def test_big_numbers_have_a_key(value: float) -> None:
    assert query_key({"trace_id": value}) == query_key({"trace_id": value})
    assert query_key({"trace_id": value}) != query_key({"trace_id": str(value)})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=repr)
def test_non_finite_floats_raise(value: float) -> None:
    with pytest.raises(CacheKeyError):
        query_key({"threshold": value})
    with pytest.raises(CacheKeyError):
        query_key([[value]])


class Window(BaseModel):
    since: datetime.datetime
    colour: Colour


class RichModel(BaseModel):
    window: Window
    tags: frozenset[str]
    path: tuple[int, ...]


def test_pydantic_models_with_nested_models_sets_and_enums() -> None:
    since = datetime.datetime(2024, 1, 2, 3, 4, 5)
    one = RichModel(window=Window(since=since, colour=Colour.RED), tags={"b", "a"}, path=(1, 2))
    two = RichModel(path=[1, 2], tags=["a", "b"], window={"colour": "red", "since": since})  # type: ignore[arg-type]
    assert query_key(one) == query_key(two)
    later = one.model_copy(
        update={"window": Window(since=since + datetime.timedelta(seconds=1), colour=Colour.RED)}
    )
    assert query_key(later) != query_key(one)
    assert query_key(one.model_copy(update={"path": (2, 1)})) != query_key(one)


class UrlQuery(BaseModel):
    url: HttpUrl


class DurationQuery(BaseModel):
    window: datetime.timedelta


class PathQuery(BaseModel):
    path: Path


class AddressQuery(BaseModel):
    address: ipaddress.IPv4Address


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda: UrlQuery(url="https://example.com/a"), id="HttpUrl"),  # type: ignore[arg-type]
        pytest.param(lambda: DurationQuery(window=datetime.timedelta(minutes=5)), id="timedelta"),
        pytest.param(lambda: PathQuery(path=Path("/srv/data")), id="Path"),
        pytest.param(lambda: AddressQuery(address="10.0.0.1"), id="IPv4Address"),  # type: ignore[arg-type]
    ],
)
def test_pydantic_fields_with_a_json_form_have_a_key(query: Any) -> None:
    assert query_key(query()) == query_key(query())


def test_nan_in_a_pydantic_model_raises() -> None:
    class Model(BaseModel):
        threshold: float

    with pytest.raises(CacheKeyError):
        query_key(Model(threshold=float("nan")))


@pytest.mark.parametrize(
    "query",
    [object(), {"a": object()}, [1, object()], {"a": {1, 2j}}, {object(): 1}, {"f": len}],
    ids=["object", "nested", "in list", "complex in set", "object dict key", "function"],
)
def test_arbitrary_objects_raise(query: object) -> None:
    with pytest.raises(CacheKeyError) as info:
        query_key(query)
    assert isinstance(info.value, TypeError)


def test_an_escape_prefixed_str_dict_key_does_not_collide_with_an_int_key() -> None:
    assert query_key({"\x1f1": "a"}) != query_key({1: "a"})
