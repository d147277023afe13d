"""Client options shared by the sync and asyncio Redis backends."""

from __future__ import annotations

import pytest

from otel_cache.backends.redis_options import redis_db

URLS = [
    ("redis://h:6379", 0),
    ("redis://h:6379/3", 3),
    ("rediss://u:p@h/12?ssl_cert_reqs=required", 12),
    ("unix:///run/redis.sock?db=2", 2),
    ("unix:///run/redis.sock", 0),
]


@pytest.mark.parametrize(("url", "db"), URLS)
def test_the_database_a_url_selects(url: str, db: int) -> None:
    assert redis_db(url) == db
