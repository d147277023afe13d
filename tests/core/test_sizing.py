"""deep_sizeof: containers are charged for their contents, cycles end, each object once per value."""

from __future__ import annotations

import sys
from collections import OrderedDict, namedtuple

import pytest

from otel_cache.core.sizing import deep_sizeof, entry_size


@pytest.mark.parametrize("value", [0, 10**50, 1.5, "text", b"bytes" * 100, None, object()], ids=repr)
def test_non_containers_have_their_shallow_size(value: object) -> None:
    assert deep_sizeof(value) == sys.getsizeof(value)


def test_list_includes_its_items() -> None:
    items = ["a" * 1000, "b" * 2000, 12345.5]
    value = list(items)
    assert deep_sizeof(value) == sys.getsizeof(value) + sum(sys.getsizeof(i) for i in items)
    assert deep_sizeof(value) > sys.getsizeof(value) + 3000


@pytest.mark.parametrize("kind", [tuple, set, frozenset])
def test_other_containers_include_their_items(kind: type) -> None:
    items = ["x" * 500, "y" * 700]
    value = kind(items)
    assert deep_sizeof(value) == sys.getsizeof(value) + sum(sys.getsizeof(i) for i in items)


def test_dict_includes_keys_and_values() -> None:
    key, val = "k" * 300, "v" * 4000
    value = {key: val}
    assert deep_sizeof(value) == sys.getsizeof(value) + sys.getsizeof(key) + sys.getsizeof(val)


def test_nested_containers_are_counted_recursively() -> None:
    leaf = "z" * 5000
    value = {"outer": [("inner", {leaf})]}
    assert deep_sizeof(value) > 5000
    inner = value["outer"]
    assert deep_sizeof(value) == (sys.getsizeof(value) + sys.getsizeof("outer") + deep_sizeof(inner))


def test_cycles_do_not_recurse_forever() -> None:
    loop: list[object] = ["x" * 100]
    loop.append(loop)
    assert deep_sizeof(loop) == sys.getsizeof(loop) + sys.getsizeof("x" * 100)
    node: dict[str, object] = {}
    node["self"] = node
    node["pair"] = [node, (node,)]
    assert deep_sizeof(node) > sys.getsizeof(node)


def test_very_deep_nesting_does_not_overflow_the_stack() -> None:
    value: list[object] = ["leaf"]
    for _ in range(sys.getrecursionlimit() * 2):
        value = [value]
    size = deep_sizeof(value)
    assert sys.getsizeof(value) < size < 10**6


def test_shared_container_is_counted_once_per_value() -> None:
    inner = ["s" * 1000]
    value = [inner, inner, (inner,)]
    tup = value[2]
    assert deep_sizeof(value) == sys.getsizeof(value) + deep_sizeof(inner) + sys.getsizeof(tup)


def test_each_value_is_charged_for_what_it_shares() -> None:
    shared = ["s" * 1000]
    first, second = [shared], {"k": shared}
    # Nothing is remembered between calls: both values pay for the shared list.
    assert deep_sizeof(first) == sys.getsizeof(first) + deep_sizeof(shared)
    assert deep_sizeof(second) == sys.getsizeof(second) + sys.getsizeof("k") + deep_sizeof(shared)
    assert deep_sizeof(first) == deep_sizeof(first)


def test_shared_leaf_is_counted_once_per_value() -> None:
    big = "x" * 10_000
    value = [big] * 100
    assert deep_sizeof(value) == sys.getsizeof(value) + sys.getsizeof(big)


@pytest.mark.parametrize("kind", ["OrderedDict", "namedtuple"])
def test_container_subclasses_are_sized_deeply_at_top_level(kind: str) -> None:
    big = "x" * 10_000
    point = namedtuple("point", "a")
    value = OrderedDict(a=big) if kind == "OrderedDict" else point(big)
    nested = [value]
    assert deep_sizeof(nested) > 10_000  # nested, it is sized deeply
    assert deep_sizeof(value) > 10_000


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("abc", "x" * 100),
        ("é", "ü" * 10),
        ("", ""),
        ("k", "😀"),
        ("k", b"bytes"),
        (1, [1, 2, "x"]),
        (("a", 1), {"a": "b"}),
        (2**70, 3.5),
        (None, True),
    ],
)
def test_entry_size_equals_deep_sizeof_of_key_and_value(key: object, value: object) -> None:
    # entry_size sizes ASCII strings from their length; it must agree with getsizeof.
    assert entry_size(key, value) == deep_sizeof(key) + deep_sizeof(value)
