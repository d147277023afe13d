"""Cache warming: keep a set of keys fresh by loading them on a schedule, in one process.

A cache warmer runs as a thread in sync mode and as asyncio tasks in async mode::

    from otel_cache.warming import CacheWarmer

    # sync code: one daemon thread, "otel-cache-warmer-users"
    warmer = CacheWarmer(cache, load_user, ["alice", "bob"], interval=60, ttl=120, name="users")
    with warmer:                      # start() ... stop()
        serve()

    # async code: one scheduler task (and up to `concurrency` workers during a run)
    warmer = CacheWarmer(cache, fetch_user, top_user_ids, interval=60, async_mode=True)
    async with warmer:                # start() ... await stop()
        await serve()

Every ``interval`` seconds a run calls ``loader(key)`` for each key and stores the
value with ``cache.put(key, value, ttl)`` (``await cache.aput(...)`` in async mode).
``keys`` is a fixed collection, or a callable asked for the keys at every run. The
async loader may be an ``async def`` or a plain function (called on the loop).

Runs start every ``interval`` seconds; one that overruns skips the starts it missed.
``run_immediately=False`` waits one interval before the first run; ``run_once()``
warms now, in the caller. ``start()`` and ``stop()`` are idempotent, and ``stop()``
returns promptly whatever the interval: it wakes the thread and joins it (a run in
progress ends after its current key), or cancels the task and awaits it, so no
thread or task is left behind.

Failures never stop the warmer. An exception from the loader or the cache fails
that key only; one from the key callable fails that run only. Each is logged with
its traceback at WARNING on the ``otel_cache.warming`` logger and counted::

    >>> warmer.stats()
    WarmerStats(runs=3, keys_warmed=5, keys_rejected=0, failures=1, last_run_duration_s=0.0012,
                last_error='TimeoutError', leader=True, lease_acquired=1, lease_lost=0, lease_errors=0)

One warmer per deployment. Uvicorn workers and replicas on one Redis would each run
the warmer, doing every load and Redis write once per process. So when the cache has
Redis configured (``cache.config.l2_enabled``; ``leader_election=None``, the default),
a warmer of a given name warms in one process only, among all that share the Redis
and the namespace: the one holding its lease, the key
``{namespace}:\x1f#lease:warmer:{name}`` (``SET NX PX`` to take it, small Lua scripts to
renew it while it holds this process's token or nobody's, and to release it only while
it holds this process's)::

    CacheWarmer(cache, load_user, keys, interval=60, name="users")                 # one process warms
    CacheWarmer(cache, load_user, keys, interval=60, name="users", lease_ttl=30)   # hand-over after 30 s
    CacheWarmer(cache, load_user, keys, interval=60, leader_election=False)        # every process warms

- Every process tries every ``lease_ttl / 3`` seconds (``lease_ttl`` default 10 s): a
  follower to take the lease, the leader to renew it. The lease lives in a thread
  (``otel-cache-warmer-<name>-lease``, redis-py) or task (``redis.asyncio``) of its own,
  so a slow loader never delays a renewal; the runs start when this process becomes
  leader (at once, or one interval later with ``run_immediately=False``).
- Hand-over: ``stop()`` ends the runs, then deletes the key, and another process leads
  within ``lease_ttl / 3``; a process that dies (SIGKILL, OOM) leaves the key to expire,
  and another leads within ``lease_ttl + lease_ttl / 3``.
- A leader that cannot renew (Redis unreachable, or the key holds another token) stops
  warming at once, its run in progress after the current key, and at the latest
  ``lease_ttl`` after its last renewal was sent; it goes on trying, and warms again once
  it leads again. While Redis is unreachable no process warms: the warmer fills Redis
  for all, and the caches fail open anyway. Redis errors never end the warmer; they are
  counted in ``lease_errors`` (``lease_lost`` counts lost terms) and logged once an outage.
- ``run_once()`` warms in any process, leader or not: the lease gates the schedule only.
- Without Redis (an L1-only cache, or a cache without ``config``) every process warms,
  as ``leader_election=False`` does; ``leader_election=True`` then is a ``CacheConfigError``.

``stats().leader`` and the gauge ``otel_cache.warmer.leader`` are 1 in the process that
warms on schedule (without leader election: every started warmer). The decisions are
in the pure :mod:`otel_cache.warming.lease`, the Redis I/O in ``lease_sync`` and
``lease_async``.

:class:`ThreadWarmer` and :class:`AsyncWarmer` are thin shells over one pure
:class:`~otel_cache.warming.core.WarmerCore`, which holds the plan, the schedule,
the failure policy and the counters.
"""

from otel_cache.warming.core import WarmerStats
from otel_cache.warming.factory import CacheWarmer
from otel_cache.warming.tasks import AsyncWarmer
from otel_cache.warming.thread import ThreadWarmer

__all__ = ["AsyncWarmer", "CacheWarmer", "ThreadWarmer", "WarmerStats"]
