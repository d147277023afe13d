"""Compression through a real Redis: large values are stored compressed, any reader gets them back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from otel_cache import CacheConfig, CacheConfigError
from otel_cache.backends.envelope import HEADER_SIZE
from tests.multilevel.adapters import CacheAdapter
from tests.support.config import patient_config

Make = Callable[..., CacheAdapter]
ROWS = [{"id": i, "name": f"name-{i}", "span": (i, i + 1)} for i in range(300)]


@pytest.mark.parametrize(("name", "tag"), [("zstd", b"z"), ("lz4", b"l")])
async def test_large_values_go_to_redis_compressed_and_every_reader_gets_them_back(
    make_cache: Make, raw_redis: redis.Redis, redis_url: str, name: str, tag: bytes
) -> None:
    writer = make_cache(patient_config(redis_url=redis_url, namespace="zip", compression=name))
    plain_reader = make_cache(patient_config(redis_url=redis_url, namespace="zip"))  # compression off
    await writer.put("rows", ROWS)
    await writer.put_many({"small": "x", "more": ROWS[:100]})
    stored = {key: raw_redis.get(writer.l2_key(key)) for key in ("rows", "small", "more")}
    assert {key: raw[HEADER_SIZE : HEADER_SIZE + 1] for key, raw in stored.items() if raw} == {
        "rows": tag,
        "small": b"j",  # under compression_min_bytes: as it is
        "more": tag,
    }
    for key, value in (("rows", ROWS), ("small", "x"), ("more", ROWS[:100])):
        assert await plain_reader.get(key) == value
    assert type((await plain_reader.get("rows"))[0]["span"]) is tuple

    stats = (await writer.stats()).l2
    assert stats.compressed == 2
    assert 0 < stats.compressed_output_bytes < stats.compressed_input_bytes / 3
    assert sum(len(stored[key]) - HEADER_SIZE for key in ("rows", "more")) == stats.compressed_output_bytes
    assert (await plain_reader.stats()).l2.compressed == 0


async def test_without_redis_compression_has_nothing_to_do(make_cache: Make) -> None:
    cache = make_cache(CacheConfig(compression="zstd"))
    await cache.put("rows", ROWS)
    assert await cache.get("rows") == ROWS
    assert (await cache.stats()).l2.compressed == 0


def test_compression_from_the_environment() -> None:
    env = {"OTEL_CACHE_COMPRESSION": "lz4", "OTEL_CACHE_COMPRESSION_MIN_BYTES": "4096"}
    config = CacheConfig.from_env(env)
    assert (config.compression, config.compression_min_bytes) == ("lz4", 4096)
    assert CacheConfig.from_env({"OTEL_CACHE_COMPRESSION": "none"}).compression is None
    with pytest.raises(CacheConfigError, match="OTEL_CACHE_COMPRESSION"):
        CacheConfig.from_env({"OTEL_CACHE_COMPRESSION": "gzip"})
    with pytest.raises(CacheConfigError, match="compression_min_bytes"):
        CacheConfig(compression_min_bytes=0)
