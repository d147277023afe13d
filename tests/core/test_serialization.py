"""L2 serializers: tagged json/msgpack, signed pickle, and nothing unpickled that was not signed."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from otel_cache.core.serialization import make_serializer
from otel_cache.errors import CacheConfigError, CacheError, SerializationError

KEY = b"k" * 32
JSON_LIKE: list[Any] = [
    None,
    True,
    0,
    -(2**63),
    2**63 - 1,
    1.5,
    "",
    "héllo \u2603",
    [],
    {},
    [1, "a", None, [2.5, {"x": []}]],
    {"a": {"b": [1, 2, {"c": None}]}, "d": "e"},
]


class Marker:
    """Unpickling it creates ``path`` (a directory): proof that the payload ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


# -- json -----------------------------------------------------------------------


@pytest.mark.parametrize("value", JSON_LIKE, ids=repr)
def test_json_round_trip(value: Any) -> None:
    serializer = make_serializer("json")
    data = serializer.dumps(value)
    assert data[:1] == b"j"
    assert serializer.loads(data) == value


def test_json_is_the_default() -> None:
    assert make_serializer().name == "json"
    assert make_serializer().dumps(1)[:1] == b"j"


def test_json_tags_what_it_has_no_type_for_and_gives_it_back() -> None:
    serializer = make_serializer("json")
    data = serializer.dumps((1, (2, "a")))
    assert data[:1] == b"J"
    assert serializer.loads(data) == (1, (2, "a"))
    assert type(serializer.loads(data)[1]) is tuple


@pytest.mark.parametrize(
    "value",
    [object(), Path("p"), type("Sub", (str,), {})("s"), [1, {"x": object()}]],
    ids=["object", "path", "str-subclass", "nested-object"],
)
def test_json_refuses_values_it_cannot_give_back(value: Any) -> None:
    with pytest.raises(SerializationError) as info:
        make_serializer("json").dumps(value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CacheError)


@pytest.mark.parametrize("name", ["json", "msgpack"])
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"j",
        b"j{not json",
        b"j\xff\xfe",
        b"m\xc1",
        b"m",
        b"m\x92\x01",
        b"x{}",
        b"{}",
        b"\x00",
        b"P123",
        b'J{"~":"tuple","v":1}',
        b'J{"~":"nope","v":[]}',
        b'J{"~":"datetime","v":"yesterday"}',
        b'J{"~":"int","v":12}',
        b'J{"~":"enum","c":"os.system","v":"x"}',
        b'J{"~":"dict","v":[[[1],2]]}',
    ],
    ids=repr,
)
def test_garbage_raises_serialization_error(name: str, data: bytes) -> None:
    with pytest.raises(SerializationError):
        make_serializer(name).loads(data)


def test_unknown_tag_is_named_in_the_error() -> None:
    with pytest.raises(SerializationError, match="b'x'"):
        make_serializer("json").loads(b"x[]")


# -- msgpack --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [*JSON_LIKE, b"", b"\x00\xffbytes", {"blob": b"\x01\x02", "items": [b"a", "a"]}],
    ids=repr,
)
def test_msgpack_round_trip(value: Any) -> None:
    serializer = make_serializer("msgpack")
    data = serializer.dumps(value)
    assert data[:1] == b"m"
    assert serializer.loads(data) == value


def test_msgpack_keeps_bytes_and_str_apart() -> None:
    serializer = make_serializer("msgpack")
    value = serializer.loads(serializer.dumps([b"a", "a"]))
    assert [type(item) for item in value] == [bytes, str]


def test_msgpack_tags_tuples_and_int_keys_and_gives_them_back() -> None:
    serializer = make_serializer("msgpack")
    data = serializer.dumps({1: (1, (2,))})
    assert data[:1] == b"M"
    assert serializer.loads(data) == {1: (1, (2,))}


@pytest.mark.parametrize("value", [object(), type("Sub", (int,), {})(1)], ids=["object", "int-subclass"])
def test_msgpack_refuses_values_it_cannot_give_back(value: Any) -> None:
    with pytest.raises(SerializationError):
        make_serializer("msgpack").dumps(value)


def test_readers_accept_each_others_formats() -> None:
    """A namespace can move between json and msgpack: both read both."""
    as_json = make_serializer("json")
    as_msgpack = make_serializer("msgpack")
    value = {"a": [1, 2.5, None, "s"], "b": {"c": True}}
    assert as_json.loads(as_msgpack.dumps(value)) == value
    assert as_msgpack.loads(as_json.dumps(value)) == value
    assert as_json.loads(as_msgpack.dumps(b"raw")) == b"raw"


# -- pickle ---------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, b""], ids=["missing", "empty"])
def test_pickle_requires_a_key(key: bytes | None) -> None:
    with pytest.raises(CacheConfigError):
        make_serializer("pickle", pickle_hmac_key=key)


def test_unknown_serializer() -> None:
    with pytest.raises(CacheConfigError, match="yaml"):
        make_serializer("yaml")


def test_pickle_round_trip() -> None:
    serializer = make_serializer("pickle", pickle_hmac_key=KEY)
    value = {"tuple": (1, 2), "set": {1, 2}, "bytes": b"\x00", "path": Path("/tmp")}
    data = serializer.dumps(value)
    assert data[:1] == b"p"
    assert serializer.loads(data) == value


def test_pickle_reader_also_reads_json_and_msgpack() -> None:
    serializer = make_serializer("pickle", pickle_hmac_key=KEY)
    assert serializer.loads(make_serializer("json").dumps([1])) == [1]
    assert serializer.loads(make_serializer("msgpack").dumps([1])) == [1]


def test_unpicklable_value_raises_serialization_error() -> None:
    with pytest.raises(SerializationError):
        make_serializer("pickle", pickle_hmac_key=KEY).dumps(lambda: None)


def test_the_marker_does_run_when_signed_with_the_key(tmp_path: Path) -> None:
    """Positive control for the tests below: a verified payload is unpickled, and runs."""
    marker = tmp_path / "ran"
    serializer = make_serializer("pickle", pickle_hmac_key=KEY)
    serializer.loads(serializer.dumps(Marker(marker)))
    assert marker.exists()


def _tamper(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize("where", ["signature", "payload", "last byte"])
def test_tampered_pickle_is_refused_and_not_run(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "ran"
    serializer = make_serializer("pickle", pickle_hmac_key=KEY)
    data = serializer.dumps(Marker(marker))
    index = {"signature": 1, "payload": 40, "last byte": len(data) - 1}[where]
    with pytest.raises(SerializationError):
        serializer.loads(_tamper(data, index))
    assert not marker.exists()


def test_pickle_signed_with_another_key_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    data = make_serializer("pickle", pickle_hmac_key=b"attacker-key").dumps(Marker(marker))
    with pytest.raises(SerializationError):
        make_serializer("pickle", pickle_hmac_key=KEY).loads(data)
    assert not marker.exists()


@pytest.mark.parametrize("body", ["unsigned", "truncated"])
def test_unsigned_or_truncated_pickle_is_refused_and_not_run(tmp_path: Path, body: str) -> None:
    marker = tmp_path / "ran"
    raw = pickle.dumps(Marker(marker))
    data = b"p" + raw if body == "unsigned" else b"p" + raw[:10]
    with pytest.raises(SerializationError):
        make_serializer("pickle", pickle_hmac_key=KEY).loads(data)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_json_and_msgpack_refuse_pickles_without_unpickling(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    signed = make_serializer("pickle", pickle_hmac_key=KEY).dumps(Marker(marker))
    reader = make_serializer(name)
    for data in (signed, b"p" + pickle.dumps(Marker(marker))):
        with pytest.raises(SerializationError, match="b'p'"):
            reader.loads(data)
    assert not marker.exists()
