"""Cache warming: keep a set of keys fresh by loading them on a schedule.

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
                last_error='TimeoutError')

:class:`ThreadWarmer` and :class:`AsyncWarmer` are thin shells over one pure
:class:`~otel_cache.warming.core.WarmerCore`, which holds the plan, the schedule,
the failure policy and the counters.
"""

from otel_cache.warming.core import WarmerStats
from otel_cache.warming.factory import CacheWarmer
from otel_cache.warming.tasks import AsyncWarmer
from otel_cache.warming.thread import ThreadWarmer

__all__ = ["AsyncWarmer", "CacheWarmer", "ThreadWarmer", "WarmerStats"]
