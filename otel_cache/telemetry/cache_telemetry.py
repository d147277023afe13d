"""``CacheTelemetry``: the OpenTelemetry handler behind :mod:`otel_cache.telemetry.hooks`.

Metrics come in two kinds:

* **Observable** instruments (requests, puts, evictions, entries, bytes, L2
  errors, breaker state, contended locks, loads, coalesced waiters, warmer runs,
  failures and leadership) read the caches' plain integer counters at collection time: an
  L1 hit costs them nothing.
* **Histograms** (L2 operation duration, load duration, lock wait, warmer run
  duration) are recorded on slow paths only: an L2 call, a load, a contended
  lock wait, a warmer run.

Every point carries the cache's name (``otel_cache.name``) and mode
(``otel_cache.mode``: sync or async); nothing carries a key. Spans: one per L2
call (``otel_cache.l2 get`` ...), one per load (``otel_cache.load``), one per
waiter (``otel_cache.load.wait``, linked to the leader's load span), one per
warmer run; a contended lock wait adds a ``otel_cache.lock.contended`` event to
the current span. Spans carry no values and no raw keys; with
``record_key_hashes=True`` a load span carries a BLAKE2b hash of the key.
Attribute work is guarded by ``span.is_recording()`` and everything is skipped
under ``suppress_instrumentation``.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_cache._version import __version__
from otel_cache.core.breaker import BreakerState
from otel_cache.errors import BackendError
from otel_cache.telemetry import hooks
from otel_cache.telemetry.names import (
    ATTR,
    DURATION_BUCKETS,
    INSTRUMENTATION_NAME,
    LAG_BUCKETS,
    METRICS,
    SCHEMA_URL,
    SPAN,
)

__all__ = ["CacheTelemetry"]

_perf_counter = time.perf_counter
_RECENT_LEADERS = 1024
_STATE_NAMES = {
    BreakerState.CLOSED: "closed",
    BreakerState.OPEN: "open",
    BreakerState.HALF_OPEN: "half_open",
}


def _suppressed() -> bool:
    return not is_instrumentation_enabled()


class CacheTelemetry:
    """Spans and metrics for every registered cache and warmer."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        record_key_hashes: bool = False,
        on_first_attach: Callable[[], object] | None = None,
    ) -> None:
        """``on_first_attach``: called once, when the first cache or warmer is attached."""
        self._on_first_attach = on_first_attach
        self._first_attach_lock = threading.Lock()
        version = __version__
        self.tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, version, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter(
            INSTRUMENTATION_NAME, version, meter_provider=meter_provider, schema_url=SCHEMA_URL
        )
        # Which provider this handler reports to: observable callbacks answer only while the
        # installed handler reports to the same one (see _observer).
        self.meter_provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self.record_key_hashes = record_key_hashes
        self.enabled = True
        self._listeners: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._l2_shapes: weakref.WeakKeyDictionary[Any, dict[str, tuple[str, dict[str, str | int]]]] = (
            weakref.WeakKeyDictionary()
        )
        # Recent leaders' span contexts, kept after their load ends so a waiter that woke
        # up can still link to the load it waited for (bounded: oldest dropped first).
        # Values are [span context, still loading].
        self._leaders: OrderedDict[tuple[int, Hashable], list[Any]] = OrderedDict()
        buckets = list(DURATION_BUCKETS)
        self.operation_duration = _histogram(meter, METRICS.OPERATION_DURATION, buckets)
        self.load_duration = _histogram(meter, METRICS.LOAD_DURATION, buckets)
        self.lock_wait = _histogram(meter, METRICS.LOCK_WAIT, buckets)
        self.lock_hold = _histogram(meter, METRICS.LOCK_HOLD, buckets)
        self.warmer_duration = _histogram(meter, METRICS.WARMER_DURATION, buckets)
        self.invalidation_lag = _histogram(meter, METRICS.INVALIDATION_LAG, list(LAG_BUCKETS))
        observe = self._observer
        for spec, callback in (
            (METRICS.REQUESTS, observe(_requests)),
            (METRICS.PUTS, observe(_puts)),
            (METRICS.EVICTIONS, observe(_evictions)),
            (METRICS.L2_ERRORS, observe(_l2_errors)),
            (METRICS.L2_UNREADABLE, observe(_l2_unreadable)),
            (METRICS.L2_REPAIRS, observe(_l2_repairs)),
            (METRICS.L2_COMPRESSED_SIZE, observe(_l2_compressed_size)),
            (METRICS.INVALIDATIONS_SENT, observe(_invalidations_sent)),
            (METRICS.INVALIDATIONS_RECEIVED, observe(_invalidations_received)),
            (METRICS.INVALIDATIONS_IGNORED, observe(_invalidations_ignored)),
            (METRICS.L1_FLUSHES, observe(_l1_flushes)),
            (METRICS.LOCK_CONTENDED, observe(_lock_contended)),
            (METRICS.LOADS, observe(_loads)),
            (METRICS.REFRESHES, observe(_refreshes)),
            (METRICS.FAIL_SAFE_ACTIVATIONS, observe(_fail_safe_activations)),
            (METRICS.LOAD_TIMEOUTS, observe(_load_timeouts)),
            (METRICS.COALESCED, observe(_coalesced)),
            (METRICS.WARMER_RUNS, observe(_warmer_runs)),
            (METRICS.WARMER_FAILURES, observe(_warmer_failures)),
        ):
            meter.create_observable_counter(
                spec.name, callbacks=[callback], unit=spec.unit, description=spec.description
            )
        for spec, callback in (
            (METRICS.ENTRIES, observe(_entries)),
            (METRICS.MEMORY, observe(_memory)),
            (METRICS.L2_UNSYNCED, observe(_l2_unsynced)),
        ):
            meter.create_observable_up_down_counter(
                spec.name, callbacks=[callback], unit=spec.unit, description=spec.description
            )
        for spec, callback in (
            (METRICS.BREAKER_STATE, observe(_breaker_state)),
            (METRICS.CHANNEL_UP, observe(_channel_up)),
            (METRICS.WARMER_LEADER, observe(_warmer_leader)),
        ):
            meter.create_observable_gauge(
                spec.name, callbacks=[callback], unit=spec.unit, description=spec.description
            )

    # -- hooks.Handler ---------------------------------------------------------

    def attach(self, item: Any) -> None:
        if self._on_first_attach is not None:
            with self._first_attach_lock:
                callback, self._on_first_attach = self._on_first_attach, None
            if callback is not None:
                callback()
        lock = _lock_of(item)
        if lock is None or item in self._listeners:
            return
        attributes = _base_attributes(item)

        def on_wait(kind: str, wait: float) -> None:
            self._record_lock_wait(attributes, kind, wait)

        def on_hold(kind: str, hold: float) -> None:
            if self.enabled and not _suppressed():
                self.lock_hold.record(hold, {**attributes, ATTR.LOCK_TYPE: kind})

        lock.add_listener(on_wait)
        lock.add_hold_listener(on_hold)
        self._listeners[item] = (on_wait, on_hold)

    def detach(self, item: Any) -> None:
        listeners = self._listeners.pop(item, None)
        lock = _lock_of(item)
        if listeners is not None and lock is not None:
            lock.remove_listener(listeners[0])
            lock.remove_hold_listener(listeners[1])

    def invalidation_received(self, cache: Any, lag: float, keys: int, flush: bool) -> None:
        if self.enabled and not _suppressed():
            self.invalidation_lag.record(lag, _base_attributes(cache))

    def fail_safe_served(self, cache: Any, error: BaseException) -> None:
        if not self.enabled or _suppressed():
            return
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(SPAN.FAIL_SAFE_EVENT, {ATTR.ERROR_TYPE: type(error).__qualname__})

    def load_timed_out(self, cache: Any, kind: str) -> None:
        if not self.enabled or _suppressed():
            return
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(SPAN.LOAD_TIMEOUT_EVENT, {ATTR.TIMEOUT_KIND: kind})

    @contextmanager
    def l2_call(self, cache: Any, operation: str, node: str | None = None) -> Iterator[Any]:
        """Span and duration of one L2 call; ``node``: the cluster node (``host:port``) it went to."""
        if not self.enabled or _suppressed():
            yield None
            return
        name, attributes = self._l2_shape(cache, operation)
        if node is not None:  # a cluster: one series per node (bounded by the cluster's size)
            host, _, port = node.rpartition(":")
            attributes = {
                **attributes,
                ATTR.SERVER_ADDRESS: host or node,
                ATTR.SERVER_PORT: int(port) if port.isdigit() else 0,
            }
        span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        start = _perf_counter()
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield span
        except BackendError as exc:
            error_type = _error_type(exc)
            attributes = {**attributes, ATTR.ERROR_TYPE: error_type}  # the cached dict stays as it is
            if span.is_recording():
                span.set_attribute(ATTR.ERROR_TYPE, error_type)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, error_type))
            raise
        finally:
            self.operation_duration.record(_perf_counter() - start, attributes)
            span.end()

    def _l2_shape(self, cache: Any, operation: str) -> tuple[str, dict[str, str | int]]:
        """The span name and attributes of ``cache``'s L2 ``operation``, made once (a cache's
        name and mode never change); the same dict serves the span and the histogram."""
        shapes = self._l2_shapes.get(cache)
        if shapes is None:
            shapes = self._l2_shapes[cache] = {}
        shape = shapes.get(operation)
        if shape is None:
            attributes: dict[str, str | int] = {
                **_base_attributes(cache),
                ATTR.OPERATION: operation,
                ATTR.LEVEL: "l2",
            }
            shape = shapes[operation] = (SPAN.L2.format(operation=operation), attributes)
        return shape

    @contextmanager
    def load(self, cache: Any, key: Hashable) -> Iterator[Any]:
        if not self.enabled or _suppressed():
            yield None
            return
        attributes = _base_attributes(cache)
        span = self.tracer.start_span(SPAN.LOAD, kind=SpanKind.INTERNAL)
        if span.is_recording():
            span.set_attributes({**attributes, ATTR.CACHE_HIT: False})
            if self.record_key_hashes:
                span.set_attribute(ATTR.KEY_HASH, _key_hash(key))
        leader_key = (id(cache), key)
        self._leaders[leader_key] = leader = [span.get_span_context(), True]
        self._leaders.move_to_end(leader_key)
        while len(self._leaders) > _RECENT_LEADERS:
            self._leaders.popitem(last=False)
        start = _perf_counter()
        result = "success"
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield span
        except BaseException as exc:
            result = "failure"
            if span.is_recording():
                span.set_attribute(ATTR.ERROR_TYPE, type(exc).__qualname__)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            raise
        finally:
            leader[1] = False
            self.load_duration.record(_perf_counter() - start, {**attributes, ATTR.RESULT: result})
            span.end()

    @contextmanager
    def load_wait(self, cache: Any, key: Hashable) -> Iterator[Any]:
        if not self.enabled or _suppressed():
            yield None
            return
        leader_key = (id(cache), key)
        leader = self._leaders.get(leader_key)
        # Only a load still running is the one this caller waits for; an ended one is older.
        links = [Link(leader[0])] if leader is not None and leader[1] and leader[0].is_valid else []
        span = self.tracer.start_span(SPAN.LOAD_WAIT, kind=SpanKind.INTERNAL, links=links)
        if span.is_recording():
            span.set_attributes({**_base_attributes(cache), ATTR.COALESCED: True})
        start = _perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False):
                yield span
        finally:
            if not links:  # joined before the leader's span began: link now that it has
                late = self._leaders.get(leader_key)
                if late is not None and late[0].is_valid and span.is_recording():
                    span.add_link(late[0])
            self.lock_wait.record(
                _perf_counter() - start, {**_base_attributes(cache), ATTR.LOCK_TYPE: "single-flight"}
            )
            span.end()

    def warmer_run_started(self, warmer: Any) -> Any:
        if not self.enabled or _suppressed():
            return None
        span = self.tracer.start_span(SPAN.WARMER_RUN, kind=SpanKind.INTERNAL)
        if span.is_recording():
            span.set_attributes(
                {ATTR.WARMER_NAME: str(getattr(warmer, "name", "warmer")), **_mode_of(warmer)}
            )
        return span

    def warmer_run_finished(self, warmer: Any, token: Any, duration: float, failures: int) -> None:
        if token is None:
            return
        attributes = {ATTR.WARMER_NAME: str(getattr(warmer, "name", "warmer")), **_mode_of(warmer)}
        self.warmer_duration.record(duration, attributes)
        if token.is_recording():
            token.set_attribute(METRICS.WARMER_FAILURES.name, failures)
            if failures:
                token.set_status(Status(StatusCode.ERROR, f"{failures} key(s) failed"))
        token.end()

    # -- internals -------------------------------------------------------------

    def _record_lock_wait(self, attributes: dict[str, str], kind: str, wait: float) -> None:
        if not self.enabled or _suppressed():
            return
        self.lock_wait.record(wait, {**attributes, ATTR.LOCK_TYPE: kind})
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(SPAN.LOCK_CONTENDED_EVENT, {ATTR.LOCK_TYPE: kind, ATTR.LOCK_WAIT: wait})

    def _observer(self, collect: Any) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            # Not "self.enabled": the SDK keeps the first callbacks registered under a
            # name, so after uninstrument() and instrument() these belong to an older handler.
            current = hooks.current()
            if current is None or getattr(current, "meter_provider", None) is not self.meter_provider:
                return []

            observations: list[Observation] = []
            for item in hooks.registered():
                try:
                    observations.extend(collect(item))
                except Exception:  # a closed cache, a cache mid-shutdown: skip it this time
                    continue
            return observations

        return callback

    def close(self) -> None:
        self.enabled = False


# -- what each observable instrument reads ------------------------------------------


def _base_attributes(item: Any) -> dict[str, str]:
    return {ATTR.CACHE_NAME: str(getattr(item, "name", "default")), **_mode_of(item)}


def _mode_of(item: Any) -> dict[str, str]:
    mode = getattr(item, "mode", None)
    return {ATTR.MODE: str(mode)} if mode else {ATTR.MODE: "mixed"}


def _lock_of(item: Any) -> Any:
    l1 = getattr(item, "l1", None)
    holder = l1 if l1 is not None else item
    return getattr(holder, "lock", None)


def _l1_stats(item: Any) -> Any:
    l1 = getattr(item, "l1", None)
    source = l1 if l1 is not None else item
    stats = getattr(source, "stats", None)
    if stats is None or getattr(source, "closed", False) or not hasattr(source, "lock"):
        return None
    return stats()


def _requests(item: Any) -> Iterator[Observation]:
    l1 = _l1_stats(item)
    if l1 is None:
        return
    base = _base_attributes(item)
    yield Observation(l1.hits, {**base, ATTR.LEVEL: "l1", ATTR.RESULT: "hit"})
    yield Observation(l1.misses, {**base, ATTR.LEVEL: "l1", ATTR.RESULT: "miss"})
    tiers = getattr(item, "tiers", None)
    if tiers is not None and tiers.l2_enabled:
        l2 = tiers.stats()
        yield Observation(l2.hits, {**base, ATTR.LEVEL: "l2", ATTR.RESULT: "hit"})
        yield Observation(l2.misses, {**base, ATTR.LEVEL: "l2", ATTR.RESULT: "miss"})


def _puts(item: Any) -> Iterator[Observation]:
    l1 = _l1_stats(item)
    if l1 is None:
        return
    base = _base_attributes(item)
    yield Observation(l1.puts, {**base, ATTR.LEVEL: "l1"})
    tiers = getattr(item, "tiers", None)
    if tiers is not None and tiers.l2_enabled:
        yield Observation(tiers.stats().writes, {**base, ATTR.LEVEL: "l2"})


def _evictions(item: Any) -> Iterator[Observation]:
    l1 = _l1_stats(item)
    if l1 is None:
        return
    base = _base_attributes(item)
    for reason, count in l1.evictions.items():
        yield Observation(count, {**base, ATTR.EVICTION_REASON: reason})


def _entries(item: Any) -> Iterator[Observation]:
    l1 = _l1_stats(item)
    if l1 is not None:
        yield Observation(l1.entries, _base_attributes(item))


def _memory(item: Any) -> Iterator[Observation]:
    l1 = _l1_stats(item)
    if l1 is not None:
        yield Observation(l1.bytes, _base_attributes(item))


def _l2_errors(item: Any) -> Iterator[Observation]:
    tiers = getattr(item, "tiers", None)
    if tiers is None or not tiers.l2_enabled:
        return
    base = _base_attributes(item)
    for error_type, count in tiers.stats().errors.items():
        yield Observation(count, {**base, ATTR.ERROR_TYPE: error_type})


def _l2_unsynced(item: Any) -> Iterator[Observation]:
    tiers = getattr(item, "tiers", None)
    if tiers is not None and tiers.l2_enabled:
        yield Observation(tiers.stats().unsynced, _base_attributes(item))


def _l2_unreadable(item: Any) -> Iterator[Observation]:
    tiers = getattr(item, "tiers", None)
    if tiers is not None and tiers.l2_enabled:
        stats, base = tiers.stats(), _base_attributes(item)
        yield Observation(stats.decode_errors - stats.type_errors, {**base, ATTR.UNREADABLE_REASON: "decode"})
        yield Observation(stats.type_errors, {**base, ATTR.UNREADABLE_REASON: "type"})


def _l2_compressed_size(item: Any) -> Iterator[Observation]:
    tiers = getattr(item, "tiers", None)
    if tiers is not None and tiers.compression is not None:
        stats, base = tiers.stats(), _base_attributes(item)
        yield Observation(stats.compressed_input_bytes, {**base, ATTR.COMPRESSION_SIDE: "input"})
        yield Observation(stats.compressed_output_bytes, {**base, ATTR.COMPRESSION_SIDE: "output"})


def _l2_repairs(item: Any) -> Iterator[Observation]:
    tiers = getattr(item, "tiers", None)
    if tiers is not None and tiers.l2_enabled:
        yield Observation(tiers.stats().repairs, _base_attributes(item))


def _coherence(item: Any) -> Any:
    tiers = getattr(item, "tiers", None)
    coherence = getattr(tiers, "coherence", None) if tiers is not None else None
    return None if coherence is None else coherence.stats()


def _invalidations_sent(item: Any) -> Iterator[Observation]:
    stats = _coherence(item)
    if stats is not None:
        yield Observation(stats.sent_messages, _base_attributes(item))


def _invalidations_received(item: Any) -> Iterator[Observation]:
    stats = _coherence(item)
    if stats is not None:
        yield Observation(stats.received_messages, _base_attributes(item))


def _invalidations_ignored(item: Any) -> Iterator[Observation]:
    stats = _coherence(item)
    if stats is not None:
        base = _base_attributes(item)
        for reason in ("garbage", "version"):
            yield Observation(stats.ignored.get(reason, 0), {**base, ATTR.IGNORED_REASON: reason})


def _l1_flushes(item: Any) -> Iterator[Observation]:
    stats = _coherence(item)
    if stats is not None:
        yield Observation(stats.l1_flushes, _base_attributes(item))


def _channel_up(item: Any) -> Iterator[Observation]:
    stats = _coherence(item)
    if stats is not None:
        yield Observation(int(stats.up), _base_attributes(item))


def _breaker_state(item: Any) -> Iterator[Observation]:
    """The breakers of reads and of writes (``otel_cache.circuit_breaker.side``): of the whole,
    and on a cluster one set per node in use (``server.*``); a series per state, 1 for the
    breaker's current one (an alert reads ``{state="open"} == 1``, a sum counts open breakers)."""
    tiers = getattr(item, "tiers", None)
    if tiers is None or not tiers.l2_enabled:
        return
    base = _base_attributes(item)
    for side, breakers in (("read", tiers.breakers), ("write", tiers.write_breakers)):
        for node, breaker in breakers.reported().items():
            attributes: dict[str, str | int] = {**base, ATTR.BREAKER_SIDE: side}
            if node is not None:
                host, _, port = node.rpartition(":")
                attributes |= {ATTR.SERVER_ADDRESS: host, ATTR.SERVER_PORT: int(port or 0)}
            for state in BreakerState:
                yield Observation(
                    int(breaker.state is state), {**attributes, ATTR.BREAKER_STATE: _STATE_NAMES[state]}
                )


def _lock_contended(item: Any) -> Iterator[Observation]:
    lock = _lock_of(item)
    if lock is not None and _l1_stats(item) is not None:
        yield Observation(lock.contended, {**_base_attributes(item), ATTR.LOCK_TYPE: lock.kind})


def _loads(item: Any) -> Iterator[Observation]:
    for flights, mode in _flight_tables(item):
        yield Observation(flights.loads, {**_base_attributes(item), ATTR.MODE: mode})


def _fail_safe_activations(item: Any) -> Iterator[Observation]:
    tiers = getattr(item, "tiers", None)
    if tiers is not None and tiers.fail_safe_used:
        yield Observation(tiers.stats().fail_safe_served, _base_attributes(item))


def _load_timeouts(item: Any) -> Iterator[Observation]:
    tiers = getattr(item, "tiers", None)
    if tiers is not None:
        base = _base_attributes(item)
        for kind, count in sorted(tiers.stats().load_timeouts.items()):
            yield Observation(count, {**base, ATTR.TIMEOUT_KIND: kind})


def _refreshes(item: Any) -> Iterator[Observation]:
    flows = getattr(item, "flows", None)
    if flows is not None:
        stats, base = flows.refresh.stats(), _base_attributes(item)
        if stats.started:
            yield Observation(stats.succeeded, {**base, ATTR.RESULT: "success"})
            yield Observation(stats.failed, {**base, ATTR.RESULT: "failure"})


def _coalesced(item: Any) -> Iterator[Observation]:
    for flights, mode in _flight_tables(item):
        yield Observation(flights.coalesced, {**_base_attributes(item), ATTR.MODE: mode})


def _flight_tables(item: Any) -> list[tuple[Any, str]]:
    tables = []
    for attribute, mode in (("sync_flights", "sync"), ("async_flights", "async")):
        flights = getattr(item, attribute, None)
        if flights is not None and (flights.loads or flights.coalesced):
            tables.append((flights, mode))
    return tables


def _warmer_runs(item: Any) -> Iterator[Observation]:
    if hasattr(item, "stats") and hasattr(item, "interval_s"):
        yield Observation(item.stats().runs, {ATTR.WARMER_NAME: item.name, **_mode_of(item)})


def _warmer_failures(item: Any) -> Iterator[Observation]:
    if hasattr(item, "stats") and hasattr(item, "interval_s"):
        yield Observation(item.stats().failures, {ATTR.WARMER_NAME: item.name, **_mode_of(item)})


def _warmer_leader(item: Any) -> Iterator[Observation]:
    if hasattr(item, "stats") and hasattr(item, "interval_s"):
        yield Observation(int(item.stats().leader), {ATTR.WARMER_NAME: item.name, **_mode_of(item)})


def _histogram(meter: metrics.Meter, spec: Any, buckets: list[float]) -> metrics.Histogram:
    return meter.create_histogram(
        spec.name, unit=spec.unit, description=spec.description, explicit_bucket_boundaries_advisory=buckets
    )


def _error_type(error: BaseException) -> str:
    cause = error.__cause__
    return type(cause).__qualname__ if cause is not None else type(error).__qualname__


def _key_hash(key: Hashable) -> str:
    return hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
