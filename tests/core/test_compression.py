"""Compression of large L2 values: round trips, thresholds, and what a reader refuses."""

from __future__ import annotations

import pytest
import zstandard

from otel_cache.core.compression import LZ4, MAX_VALUE_BYTES, ZSTD, Compression, make_compression
from otel_cache.core.serialization import make_serializer
from otel_cache.errors import CacheConfigError, SerializationError

LARGE = {"rows": [{"id": i, "name": f"name-{i}", "tags": ["a", "b"]} for i in range(200)]}


@pytest.mark.parametrize(("name", "tag"), [("zstd", ZSTD), ("lz4", LZ4)])
@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_a_large_value_is_compressed_and_any_reader_gets_it_back(
    name: str, tag: int, serializer: str
) -> None:
    codec = make_serializer(serializer)
    data = codec.dumps(LARGE)
    packed = make_compression(name).pack(data)
    assert packed is not None
    assert packed[0] == tag
    assert len(packed) < len(data) / 3  # repetitive rows shrink a lot
    assert make_serializer("json").loads(packed) == LARGE  # a reader's own settings do not matter
    assert make_serializer("msgpack").loads(packed) == LARGE


def test_values_under_the_threshold_or_that_do_not_shrink_stay_as_they_are() -> None:
    compression = make_compression("zstd", min_bytes=100)
    assert compression.pack(b"j" + b"1" * 50) is None
    incompressible = b"j" + bytes(range(256)) * 1  # 257 bytes of no repetition
    assert compression.pack(incompressible) is None
    assert compression.pack(b"j" + b"a" * 500) is not None


def test_tuples_and_other_tagged_values_survive_compression() -> None:
    codec = make_serializer("json")
    value = {"spans": [(i, f"x{i}") for i in range(100)], "ids": {1, 2, 3}}
    packed = make_compression("lz4").pack(codec.dumps(value))
    assert packed is not None
    back = codec.loads(packed)
    assert back == value
    assert type(back["spans"][0]) is tuple


@pytest.mark.parametrize(
    "stored",
    [
        b"z" + b"not a zstd frame",
        b"l" + b"not an lz4 frame",
        b"z",
        b"z" + zstandard.ZstdCompressor(write_content_size=False).compress(b"j" + b"1" * 2000),  # no size
        b"z"
        + zstandard.ZstdCompressor().compress(b"z" + zstandard.ZstdCompressor().compress(b"j1")),  # twice
    ],
)
def test_a_reader_refuses_bad_frames_with_a_serialization_error(stored: bytes) -> None:
    with pytest.raises(SerializationError):
        make_serializer("json").loads(stored)


def test_a_frame_that_claims_more_than_the_largest_redis_value_is_refused_before_allocating() -> None:
    # A zstd frame header alone: magic, a descriptor for a single segment with a 4-byte
    # content size, and that size (1 GiB); no block follows, nothing should be read past it.
    header = b"\x28\xb5\x2f\xfd" + b"\xa0" + (2**30).to_bytes(4, "little")
    assert zstandard.frame_content_size(header + bytes(8)) == 2**30 > MAX_VALUE_BYTES
    with pytest.raises(SerializationError, match="excessive"):
        make_serializer("json").loads(b"z" + header + bytes(8))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(CacheConfigError, match="zstd"):
        make_compression("gzip")
    with pytest.raises(CacheConfigError, match="min_bytes"):
        make_compression("zstd", min_bytes=0)
    with pytest.raises(CacheConfigError, match="min_bytes"):
        Compression(make_compression("lz4").compressor, min_bytes=True)  # type: ignore[arg-type]
