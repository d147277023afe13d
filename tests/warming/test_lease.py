"""One warmer per deployment: the lease's pure core, then warmers on a real Redis, then real processes.

The core is stepped by hand with a manual clock against a few lines that play Redis's
part (``SET NX PX``, the renew and release scripts), so hand-over timing is exact. The
warmers and processes run for real; they wait for conditions with generous deadlines
and never assert that something happens within a tight window.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from otel_cache import CacheConfig, MultiLevelCache
from otel_cache.errors import BackendUnavailableError, CacheConfigError
from otel_cache.l1 import AsyncLRUCache
from otel_cache.warming import AsyncWarmer, ThreadWarmer
from otel_cache.warming.core import WarmerCore
from otel_cache.warming.lease import (
    DEFAULT_LEASE_TTL,
    LeaseAttempt,
    LeaseCore,
    LeaseStats,
    lease_for,
    lease_key,
    new_token,
    validate_lease_ttl,
)
from tests.support import ManualClock, RedisServer
from tests.support.config import patient_config
from tests.warming.helpers import PREFIX, Shell, eventually, warmer_tasks, warmer_threads
from tests.warming.lease_process import loads_key

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = patient_config(redis_url="redis://127.0.0.1:1/0", namespace="app")
FAST = 0.02  # seconds between runs
SHORT_LEASE = 0.5  # for hand-over tests: they wait for the new leader, they never time it
STEADY_LEASE = 3.0  # for "only one warms": a renewal may be held up 2 s before the term ends
WAIT = 20.0  # generous: a busy 2-core machine


# -- the pure core: Redis played by a dict and a manual clock ----------------------


class FakeRedis:
    """The lease key's three commands as Redis runs them, on a manual clock, for exact timing.

    A model of one key, not of Redis: the warmer tests below run the same commands
    against a real redis-server.
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.keys: dict[str, tuple[str, float]] = {}  # key -> (token, expires at)

    def get(self, key: str) -> str | None:
        entry = self.keys.get(key)
        if entry is None or entry[1] <= self.clock():
            self.keys.pop(key, None)
            return None
        return entry[0]

    def set_nx_px(self, key: str, token: str, ttl_ms: int) -> bool:
        if self.get(key) is not None:
            return False
        self.keys[key] = (token, self.clock() + ttl_ms / 1000)
        return True

    def renew(self, key: str, token: str, ttl_ms: int) -> bool:
        if self.get(key) not in (token, None):
            return False
        self.keys[key] = (token, self.clock() + ttl_ms / 1000)
        return True

    def release(self, key: str, token: str) -> bool:
        if self.get(key) != token:
            return False
        del self.keys[key]
        return True


def tick(core: LeaseCore, server: FakeRedis) -> LeaseAttempt:
    """What ``SyncLease.tick`` does, against the fake."""
    attempt = core.attempt()
    if attempt.command == "acquire":
        ok = server.set_nx_px(core.key, core.token, core.ttl_ms)
    else:
        ok = server.renew(core.key, core.token, core.ttl_ms)
    core.answered(attempt, ok)
    return attempt


def new_core(clock: ManualClock, name: str = "users", ttl: float = 9.0) -> LeaseCore:
    return LeaseCore(CONFIG, name, ttl=ttl, clock=clock)


def test_the_key_is_one_key_per_namespace_and_warmer_name() -> None:
    assert lease_key("app", "users") == "app:\x1f#lease:warmer:users"
    assert LeaseCore(CONFIG, "users").key == "app:\x1f#lease:warmer:users"


def test_the_token_names_host_and_process_and_differs_per_warmer() -> None:
    host, pid, suffix = new_token().rsplit(":", 2)
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert len(suffix) == 8
    assert LeaseCore(CONFIG, "users").token != LeaseCore(CONFIG, "users").token


def test_renewed_every_third_of_the_ttl() -> None:
    core = LeaseCore(CONFIG, "users")
    assert (core.ttl, core.renew_interval, core.ttl_ms) == (DEFAULT_LEASE_TTL, DEFAULT_LEASE_TTL / 3, 10_000)
    assert LeaseCore(CONFIG, "users", ttl=0.5).ttl_ms == 500


@pytest.mark.parametrize("ttl", [0, -1, 0.001, float("inf"), float("nan"), True, "10", None])
def test_invalid_lease_ttl_is_a_config_error(ttl: object) -> None:
    with pytest.raises(CacheConfigError, match="lease_ttl"):
        validate_lease_ttl(ttl)


def test_a_follower_acquires_with_set_nx_and_then_renews() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    core = new_core(clock)
    assert (core.state, core.leading) == ("follower", False)
    assert tick(core, server).command == "acquire"
    assert (core.state, core.leading) == ("leader", True)
    assert server.get(core.key) == core.token
    clock.advance(core.renew_interval)
    assert tick(core, server).command == "renew"
    assert core.leading
    assert core.stats() == LeaseStats(acquired=1, lost=0, errors=0), "a renewal is not a new term"


def test_a_term_ends_ttl_after_the_last_renewal_was_sent() -> None:
    clock = ManualClock()
    core = new_core(clock, ttl=9.0)
    core.answered(core.attempt(), True)  # sent at 0
    clock.advance(8.999)
    assert core.leading
    clock.advance(0.001)
    assert not core.leading, "Redis's copy expires no earlier: nobody else can lead yet while we do"
    # The next tick finds the term over: counted as lost, and the key is reclaimed if still ours.
    attempt = core.attempt()
    assert (attempt.command, core.state, core.stats().lost) == ("renew", "reclaim", 1)


def test_a_refused_set_nx_leaves_a_follower_and_counts_nothing() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    leader, follower = new_core(clock), new_core(clock)
    tick(leader, server)
    assert tick(follower, server).command == "acquire"
    assert (follower.state, follower.leading, follower.stats()) == ("follower", False, LeaseStats())
    assert tick(follower, server).command == "acquire", "a follower keeps asking"


def test_a_renewal_that_finds_another_token_loses_the_lease() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    core = new_core(clock)
    tick(core, server)
    server.keys[core.key] = ("someone-else", clock() + 60)
    assert tick(core, server).command == "renew"
    assert (core.state, core.leading, core.stats()) == ("follower", False, LeaseStats(acquired=1, lost=1))
    assert core.attempt().command == "acquire"


def test_a_failed_renewal_stops_warming_at_once_and_reclaims_the_key_when_redis_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_cache.warming")
    clock = ManualClock()
    server = FakeRedis(clock)
    core = new_core(clock)
    tick(core, server)
    for _ in range(2):  # an outage of two ticks
        clock.advance(core.renew_interval)
        core.failed(core.attempt(), BackendUnavailableError("Redis is unreachable"))
        assert not core.leading
    assert core.stats() == LeaseStats(acquired=1, lost=1, errors=2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, "one for the failure, one for the loss: not one a tick"
    # Redis is back and the key is still ours (its 9 s had not passed): taken back by the renew
    # script, where SET NX would have been refused until the key expired.
    clock.advance(core.renew_interval / 2)
    assert tick(core, server).command == "renew"
    assert (core.state, core.leading) == ("leader", True)
    assert core.stats() == LeaseStats(acquired=2, lost=1, errors=2)


def test_a_reclaim_or_renewal_that_finds_the_key_gone_takes_it() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    core = new_core(clock)
    tick(core, server)
    core.failed(core.attempt(), BackendUnavailableError("down"))
    server.keys.clear()  # Redis restarted empty
    assert tick(core, server).command == "renew"
    assert (core.state, core.leading) == ("leader", True)
    assert core.stats() == LeaseStats(acquired=2, lost=1, errors=1)
    clock.advance(core.renew_interval)
    server.keys.clear()  # a clear() of the namespace: the leader keeps its term
    assert tick(core, server).command == "renew"
    assert (core.state, core.leading, core.stats().lost) == ("leader", True, 1)
    assert server.get(core.key) == core.token


def test_a_reclaim_that_finds_another_holder_goes_back_to_set_nx() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    core = new_core(clock)
    tick(core, server)
    core.failed(core.attempt(), BackendUnavailableError("down"))
    server.keys[core.key] = ("someone-else", clock() + 60)
    assert tick(core, server).command == "renew"
    assert (core.state, core.stats().lost) == ("follower", 1), "not lost twice"
    assert tick(core, server).command == "acquire"
    assert not core.leading


def test_errors_as_a_follower_are_counted_not_lost() -> None:
    clock = ManualClock()
    core = new_core(clock)
    core.failed(core.attempt(), BackendUnavailableError("down"))
    assert (core.state, core.stats()) == ("follower", LeaseStats(errors=1))
    assert core.attempt().command == "acquire"


def test_release_stops_leading_and_is_not_a_loss() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    core = new_core(clock)
    assert core.release() is False, "a follower has nothing to delete"
    tick(core, server)
    assert core.release() is True
    assert (core.state, core.leading, core.stats().lost) == ("follower", False, 0)


def test_a_released_lease_is_taken_at_the_followers_next_attempt() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    old, new = new_core(clock), new_core(clock)
    tick(old, server)
    tick(new, server)
    clock.advance(1.0)
    assert old.release()
    server.release(old.key, old.token)
    tick(new, server)
    assert new.leading
    assert server.get(new.key) == new.token


def test_a_dead_leaders_lease_is_taken_within_ttl_and_one_renew_interval() -> None:
    clock = ManualClock()
    server = FakeRedis(clock)
    dead, follower = new_core(clock, ttl=9.0), new_core(clock, ttl=9.0)
    tick(dead, server)  # its last renewal, at 0; then it is SIGKILLed
    clock.advance(1.234)  # the follower ticks out of phase with it
    while not follower.leading:
        tick(follower, server)
        if follower.leading:
            break
        clock.advance(follower.renew_interval)
    assert 9.0 <= clock() < 9.0 + follower.renew_interval
    assert not dead.leading, "the dead one's term ended as Redis's copy expired"


def test_two_leaders_never_overlap_whoever_ticks_late() -> None:
    """Every core believes it leads only while the fake Redis holds its token."""
    clock = ManualClock()
    server = FakeRedis(clock)
    cores = [new_core(clock, ttl=3.0) for _ in range(3)]
    # Ticks at uneven gaps, some longer than the TTL (a held-up thread).
    gaps = [0.4, 1.1, 0.2, 3.5, 0.9, 0.05, 2.9, 1.0, 0.3, 4.0, 0.7, 1.3]
    for step, gap in enumerate(gaps * 3):
        tick(cores[step % 3], server)
        for core in cores:
            assert not core.leading or server.get(core.key) == core.token
        clock.advance(gap)
        for core in cores:
            assert not core.leading or server.get(core.key) == core.token
    assert sum(core.stats().acquired for core in cores) > 1, "the lease changed hands"


def test_warmer_core_reports_the_lease() -> None:
    clock = ManualClock()
    lease = new_core(clock)
    core = WarmerCore(["a"], interval=1, lease=lease)
    assert (core.stats().leader, core.may_warm()) == (False, False)
    lease.answered(lease.attempt(), True)
    stats = core.stats()
    assert (stats.leader, stats.lease_acquired, core.may_warm()) == (True, 1, True)
    alone = WarmerCore(["a"], interval=1)
    assert alone.may_warm(), "without a lease every process warms"
    assert alone.stats().leader is False, "until its shell starts it"
    alone.scheduled = True
    assert alone.stats().leader is True


class RedisConfigured(AsyncLRUCache[str, Any]):
    """An L1 cache that says it has Redis: what ``lease_for`` looks at."""

    def __init__(self, config: CacheConfig) -> None:
        super().__init__()
        self._config = config

    @property
    def config(self) -> CacheConfig:
        return self._config

    @property
    def redis(self) -> object | None:
        return "a connector" if self._config.l2_enabled else None


def test_lease_for_follows_the_caches_redis_and_the_option() -> None:
    with_redis = RedisConfigured(CONFIG)
    without_redis = RedisConfigured(CacheConfig())
    lease = lease_for(with_redis, "users", leader_election=None, lease_ttl=2)
    assert lease is not None
    assert (lease.key, lease.ttl, lease.config) == ("app:\x1f#lease:warmer:users", 2.0, CONFIG)
    assert lease_for(with_redis, "users", leader_election=True) is not None
    assert lease_for(with_redis, "users", leader_election=False) is None
    assert lease_for(without_redis, "users", leader_election=None) is None
    assert lease_for(AsyncLRUCache(), "users", leader_election=None) is None, "no config: L1 only"
    for cache in (without_redis, AsyncLRUCache()):
        with pytest.raises(CacheConfigError, match="leader_election=True needs a cache with Redis"):
            lease_for(cache, "users", leader_election=True)
    with pytest.raises(CacheConfigError, match="leader_election"):
        lease_for(with_redis, "users", leader_election="yes")  # type: ignore[arg-type]
    with pytest.raises(CacheConfigError, match="lease_ttl"):
        lease_for(AsyncLRUCache(), "users", leader_election=False, lease_ttl=0)


def test_the_shells_take_the_options(shell: Shell) -> None:
    assert shell.make(RedisConfigured(CONFIG), str, ["a"], interval=1).leader_election is True
    assert (
        shell.make(RedisConfigured(CONFIG), str, ["a"], interval=1, leader_election=False).leader_election
        is False
    )
    assert shell.make(AsyncLRUCache(), str, ["a"], interval=1).leader_election is False
    with pytest.raises(CacheConfigError, match="leader_election=True"):
        shell.make(AsyncLRUCache(), str, ["a"], interval=1, leader_election=True)
    with pytest.raises(CacheConfigError, match="lease_ttl"):
        shell.make(RedisConfigured(CONFIG), str, ["a"], interval=1, lease_ttl=-1)


# -- warmers on one real Redis, in this process -----------------------------------


class CountingLoader:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, key: str) -> str:
        self.calls[key] += 1
        return f"value-{key}"

    @property
    def total(self) -> int:
        return sum(self.calls.values())


Warmer = ThreadWarmer[str, str] | AsyncWarmer[str, str]


@pytest.fixture
def namespace() -> str:
    return f"lease-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def make_cache(shell: Shell) -> AsyncIterator[Callable[[CacheConfig], MultiLevelCache[str, str]]]:
    """``make(config)``: a ``MultiLevelCache`` for the shell's mode; closed after the test."""
    made: list[MultiLevelCache[str, str]] = []

    def make(config: CacheConfig) -> MultiLevelCache[str, str]:
        cache: MultiLevelCache[str, str] = MultiLevelCache(config, async_mode=shell.async_mode)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.aclose()


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def token_of(warmer: Warmer) -> str:
    lease = warmer._core.lease
    assert lease is not None
    return lease.token


def pair(
    shell: Shell,
    make_cache: Callable[[CacheConfig], MultiLevelCache[str, str]],
    config: CacheConfig,
    **options: Any,
) -> list[tuple[Warmer, CountingLoader]]:
    """Two warmers of one name, each with its own cache (as two processes would have)."""
    warmers = []
    for _ in range(2):
        loader = CountingLoader()
        warmer = shell.make(make_cache(config), loader, ["a", "b"], interval=FAST, name="users", **options)
        warmers.append((warmer, loader))
    return warmers


async def test_two_warmers_of_one_name_warm_in_one_only_and_hand_over_on_stop(
    shell: Shell, make_cache: Any, redis_url: str, namespace: str, raw_redis: redis.Redis
) -> None:
    config = patient_config(redis_url=redis_url, namespace=namespace, invalidation=False)
    (first, first_loads), (second, second_loads) = pair(shell, make_cache, config, lease_ttl=STEADY_LEASE)
    key = lease_key(namespace, "users")
    try:
        await shell.start(first)
        await shell.start(second)
        await eventually(lambda: first.stats().runs + second.stats().runs >= 5, within=WAIT)
        leader, follower = (first, second) if first.stats().leader else (second, first)
        leader_loads, follower_loads = (
            (first_loads, second_loads) if leader is first else (second_loads, first_loads)
        )
        assert leader.stats().leader
        assert not follower.stats().leader
        assert follower_loads.total == 0, "the follower never warmed"
        assert leader.stats().runs >= 5
        assert follower.stats().runs == 0
        assert raw_redis.get(key) == token_of(leader)
        assert 0 < raw_redis.pttl(key) <= 3000
        # run_once() warms in any process: the lease gates the schedule only.
        await shell.run_once(follower)
        assert follower_loads.total == 2

        await shell.stop(leader)
        stats = leader.stats()
        assert (stats.leader, stats.lease_acquired, stats.lease_lost) == (False, 1, 0), "released, not lost"
        await eventually(lambda: follower.stats().leader and follower_loads.total >= 6, within=WAIT)
        assert raw_redis.get(key) == token_of(follower)
        before = leader_loads.total
        assert follower.stats().lease_acquired == 1
    finally:
        await shell.stop(first)
        await shell.stop(second)
    assert leader_loads.total == before, "a stopped warmer warms no more"
    assert raw_redis.exists(key) == 0, "the last leader released the lease"
    assert shell.leftovers() == []


async def test_a_leader_whose_key_was_taken_stops_warming_until_it_leads_again(
    shell: Shell, make_cache: Any, redis_url: str, namespace: str, raw_redis: redis.Redis
) -> None:
    config = patient_config(redis_url=redis_url, namespace=namespace, invalidation=False)
    loader = CountingLoader()
    warmer = shell.make(make_cache(config), loader, ["a"], interval=FAST, name="users", lease_ttl=SHORT_LEASE)
    key = lease_key(namespace, "users")
    runs_thread_or_task = PREFIX + "users"
    try:
        await shell.start(warmer)
        await eventually(lambda: warmer.stats().leader and loader.total >= 3, within=WAIT)
        raw_redis.set(key, "another-process", px=60_000)
        await eventually(lambda: not warmer.stats().leader, within=WAIT)
        assert warmer.stats().lease_lost >= 1  # more if a renewal was late on a busy machine
        assert warmer.running, "losing the lease never ends the warmer"
        # The runs end with the term: no run thread or scheduler task is left ...
        await eventually(lambda: runs_thread_or_task not in warmer_threads() + warmer_tasks(), within=WAIT)
        settled = loader.total
        await asyncio.sleep(4 * SHORT_LEASE)
        # ... and while another process holds the key, this one neither leads nor warms.
        assert (warmer.stats().leader, loader.total) == (False, settled)
        assert raw_redis.get(key) == "another-process"

        raw_redis.delete(key)
        await eventually(lambda: warmer.stats().leader and loader.total > settled, within=WAIT)
        assert warmer.stats().lease_acquired >= 2
    finally:
        await shell.stop(warmer)
    assert shell.leftovers() == []


async def test_a_redis_outage_stops_warming_and_the_lease_is_taken_again_after_it(
    shell: Shell, make_cache: Any, fresh_redis_server: RedisServer, namespace: str
) -> None:
    config = CacheConfig(
        redis_url=fresh_redis_server.url, namespace=namespace, invalidation=False, redis_timeout=0.2
    )
    loader = CountingLoader()
    warmer = shell.make(make_cache(config), loader, ["a"], interval=FAST, name="users", lease_ttl=SHORT_LEASE)
    try:
        await shell.start(warmer)
        await eventually(lambda: warmer.stats().leader and loader.total >= 3, within=WAIT)
        fresh_redis_server.stop()
        await eventually(lambda: not warmer.stats().leader and warmer.stats().lease_errors >= 2, within=WAIT)
        assert warmer.running, "Redis errors never end the warmer"
        assert warmer.stats().lease_lost >= 1  # more if a renewal was late on a busy machine
        fresh_redis_server.start()  # empty: the key is gone, and the renew script takes it
        await eventually(lambda: warmer.stats().leader, within=WAIT)
        settled = loader.total
        await eventually(lambda: loader.total > settled, within=WAIT)
        assert warmer.stats().lease_acquired >= 2
    finally:
        await shell.stop(warmer)
    assert shell.leftovers() == []


async def test_stop_from_inside_the_loader_ends_the_warmer_and_releases_the_lease(
    shell: Shell, make_cache: Any, redis_url: str, namespace: str, raw_redis: redis.Redis
) -> None:
    config = patient_config(redis_url=redis_url, namespace=namespace, invalidation=False)
    warmer: Any = None
    stopped: list[object] = []

    def loader(key: str) -> str:
        if not stopped:
            stopped.append(warmer.stop() if not shell.async_mode else asyncio.ensure_future(warmer.stop()))
        return key

    warmer = shell.make(
        make_cache(config), loader, ["a", "b"], interval=FAST, name="users", lease_ttl=SHORT_LEASE
    )
    await shell.start(warmer)
    await eventually(lambda: bool(stopped) and not warmer.running, within=WAIT)
    if shell.async_mode:
        await stopped[0]  # type: ignore[misc]
    else:
        assert stopped == [False], "from its own thread: the thread ends once the loader returns"
    await eventually(lambda: raw_redis.exists(lease_key(namespace, "users")) == 0, within=WAIT)
    assert not warmer.stats().leader
    await eventually(lambda: shell.leftovers() == [], within=WAIT)


async def test_warmers_of_different_names_lead_each_their_own(
    shell: Shell, make_cache: Any, redis_url: str, namespace: str
) -> None:
    config = patient_config(redis_url=redis_url, namespace=namespace, invalidation=False)
    loaders = [CountingLoader(), CountingLoader()]
    warmers = [
        shell.make(make_cache(config), loader, ["a"], interval=FAST, name=name, lease_ttl=STEADY_LEASE)
        for loader, name in zip(loaders, ("users", "orders"), strict=True)
    ]
    try:
        for warmer in warmers:
            await shell.start(warmer)
        await eventually(
            lambda: all(w.stats().leader for w in warmers) and min(x.total for x in loaders) >= 2
        )
    finally:
        for warmer in warmers:
            await shell.stop(warmer)


async def test_leader_election_false_warms_in_every_process(
    shell: Shell, make_cache: Any, redis_url: str, namespace: str, raw_redis: redis.Redis
) -> None:
    config = patient_config(redis_url=redis_url, namespace=namespace, invalidation=False)
    warmers = pair(shell, make_cache, config, leader_election=False)
    try:
        for warmer, _ in warmers:
            await shell.start(warmer)
        await eventually(lambda: all(loader.total >= 4 for _, loader in warmers), within=WAIT)
        assert all(warmer.stats().leader for warmer, _ in warmers)
    finally:
        for warmer, _ in warmers:
            await shell.stop(warmer)
    assert raw_redis.exists(lease_key(namespace, "users")) == 0
    assert shell.leftovers() == []


async def test_without_redis_every_warmer_runs_as_before(shell: Shell) -> None:
    loaders = [CountingLoader(), CountingLoader()]
    warmers = [shell.make(AsyncLRUCache(), loader, ["a"], interval=FAST, name="users") for loader in loaders]
    try:
        for warmer in warmers:
            assert not warmer.leader_election
            await shell.start(warmer)
        await eventually(lambda: all(loader.total >= 3 for loader in loaders))
        assert all(warmer.stats().leader for warmer in warmers), "each warms: each reports it"
        assert warmer_threads() + warmer_tasks() == [PREFIX + "users"] * 2, "no lease thread or task"
    finally:
        for warmer in warmers:
            await shell.stop(warmer)
    for warmer in warmers:
        stats = warmer.stats()
        assert (stats.leader, stats.lease_acquired, stats.lease_lost, stats.lease_errors) == (False, 0, 0, 0)


# -- real processes ----------------------------------------------------------------


class WarmerProcess:
    """``python -m tests.warming.lease_process``: a warmer in a process of its own."""

    def __init__(self, url: str, namespace: str, mode: str, lease_ttl: float) -> None:
        self.mode = mode
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.warming.lease_process",
                url,
                namespace,
                "users",
                mode,
                str(lease_ttl),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line == "ready\n", f"the warmer process did not start ({self.proc.poll()}): {line!r}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int:
        """Close its stdin: it stops the warmer (releasing the lease) and exits."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=WAIT)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=WAIT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def spawn(redis_url: str, namespace: str) -> Iterator[Callable[[str], WarmerProcess]]:
    started: list[WarmerProcess] = []

    def start(mode: str) -> WarmerProcess:
        process = WarmerProcess(redis_url, namespace, mode, STEADY_LEASE)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def holder_pid(raw_redis: redis.Redis, namespace: str) -> int | None:
    token = raw_redis.get(lease_key(namespace, "users"))
    return None if token is None else int(str(token).rsplit(":", 2)[1])


def loads_of(raw_redis: redis.Redis, namespace: str, process: WarmerProcess) -> int:
    return int(raw_redis.get(loads_key(namespace, process.pid)) or 0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("modes", [("sync", "sync"), ("async", "async"), ("sync", "async")])
async def test_in_many_processes_one_warms_and_another_takes_over_when_it_dies_or_stops(
    modes: tuple[str, str], spawn: Callable[[str], WarmerProcess], raw_redis: redis.Redis, namespace: str
) -> None:
    processes = [spawn(mode) for mode in modes]
    await eventually(lambda: holder_pid(raw_redis, namespace) is not None, within=WAIT)
    by_pid = {process.pid: process for process in processes}
    leader = by_pid[holder_pid(raw_redis, namespace) or 0]
    (follower,) = (process for process in processes if process is not leader)
    await eventually(lambda: loads_of(raw_redis, namespace, leader) >= 5, within=WAIT)
    assert loads_of(raw_redis, namespace, follower) == 0, "only the lease holder warms"
    assert holder_pid(raw_redis, namespace) == leader.pid

    # SIGKILL: no release; the follower leads once the key expires (lease_ttl after the last renewal).
    leader.kill()
    await eventually(lambda: holder_pid(raw_redis, namespace) == follower.pid, within=WAIT)
    await eventually(lambda: loads_of(raw_redis, namespace, follower) >= 3, within=WAIT)

    # A clean stop releases the key: a newcomer takes it at its next attempt.
    newcomer = spawn(modes[0])
    assert loads_of(raw_redis, namespace, newcomer) == 0
    assert follower.stop() == 0
    await eventually(lambda: holder_pid(raw_redis, namespace) == newcomer.pid, within=WAIT)
    await eventually(lambda: loads_of(raw_redis, namespace, newcomer) >= 3, within=WAIT)
    assert newcomer.stop() == 0
    assert raw_redis.exists(lease_key(namespace, "users")) == 0


@pytest.mark.cluster
async def test_on_a_redis_cluster_one_warmer_of_two_leads(
    shell: Shell, make_cache: Any, redis_cluster_url: str, namespace: str
) -> None:
    config = patient_config(redis_url=redis_cluster_url, namespace=namespace, invalidation=False)
    (first, first_loads), (second, second_loads) = pair(shell, make_cache, config, lease_ttl=STEADY_LEASE)
    try:
        await shell.start(first)
        await shell.start(second)
        await eventually(lambda: first.stats().runs + second.stats().runs >= 3, within=WAIT)
        assert first.stats().leader != second.stats().leader
        assert min(first_loads.total, second_loads.total) == 0  # the follower never warmed
        assert first.stats().lease_errors == second.stats().lease_errors == 0
    finally:
        await shell.stop(first)
        await shell.stop(second)
    assert shell.leftovers() == []
