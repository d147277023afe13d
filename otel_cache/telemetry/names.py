"""Every metric, span and attribute name otel_cache emits, in one place.

Names follow OpenTelemetry's rules: dotted, under the library's own prefix
``otel_cache.``, units in the unit field (``s``, ``By``, ``{entry}``), never in the
name, no ``_total`` on counters (the Prometheus exporter adds it). There is no
cache semantic convention yet (semantic-conventions issue #1747); where one is
drafted or an ecosystem habit exists (Sentry's ``cache.hit``, Micrometer's
``cache.gets{result}``), the names follow it. ``docs/telemetry.md`` lists each
with its Prometheus name; a test checks that the two agree.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ATTR",
    "DURATION_BUCKETS",
    "INSTRUMENTATION_NAME",
    "LAG_BUCKETS",
    "METRICS",
    "SCHEMA_URL",
    "SPAN",
    "MetricSpec",
]

INSTRUMENTATION_NAME: Final = "otel_cache"
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.28.0"

# Seconds, from 1 µs (an L1 hit, a lock wait) to 10 s (a loader, a stuck Redis).
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Event-loop lag: from 100 µs to 10 s.
LAG_BUCKETS: Final[tuple[float, ...]] = (
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class ATTR:
    """Attribute keys."""

    CACHE_NAME: Final = "otel_cache.name"
    MODE: Final = "otel_cache.mode"  # sync | async
    LEVEL: Final = "otel_cache.level"  # l1 | l2
    RESULT: Final = "otel_cache.result"  # hit | miss (requests); success | failure (loads, refreshes)
    # get | set | delete | get_many | set_many | clear | invalidate_tags
    OPERATION: Final = "otel_cache.operation"
    EVICTION_REASON: Final = "otel_cache.eviction.reason"  # size | expired | deleted | rejected
    LOCK_TYPE: Final = "otel_cache.lock.type"  # threading.Lock | threading.RLock | single-flight
    BREAKER_STATE: Final = "otel_cache.circuit_breaker.state"  # closed | open | half_open
    BREAKER_SIDE: Final = "otel_cache.circuit_breaker.side"  # read | write
    UNREADABLE_REASON: Final = "otel_cache.unreadable.reason"  # decode | type
    COMPRESSION_SIDE: Final = "otel_cache.compression.side"  # input | output
    TIMEOUT_KIND: Final = "otel_cache.timeout.kind"  # soft | hard | waiter
    IGNORED_REASON: Final = "otel_cache.invalidation.reason"  # garbage | version
    WARMER_NAME: Final = "otel_cache.warmer.name"
    WARMER_FAILURES: Final = "otel_cache.warmer.failures"  # int, on warmer run spans (the metric's name)
    LOCK_WAIT: Final = "otel_cache.lock.wait"  # seconds, on spans
    KEY_HASH: Final = "otel_cache.key.hash"  # only when the user opts in; never the raw key
    COALESCED: Final = "otel_cache.coalesced"
    SERVER_ADDRESS: Final = "server.address"  # a cluster node, on its breaker's series
    SERVER_PORT: Final = "server.port"
    CACHE_HIT: Final = "cache.hit"  # Sentry's cache convention
    ERROR_TYPE: Final = "error.type"  # semantic conventions
    LOOP_NAME: Final = "otel_cache.event_loop.name"  # the EventLoopMonitor's name
    LOOP_TASK: Final = "otel_cache.event_loop.task"
    LOOP_BLOCKED: Final = "otel_cache.event_loop.blocked_s"
    CODE_STACKTRACE: Final = "code.stacktrace"  # semantic conventions
    CODE_FUNCTION: Final = "code.function.name"  # semantic conventions
    CODE_FILE_PATH: Final = "code.file.path"  # semantic conventions
    CODE_LINE_NUMBER: Final = "code.line.number"  # semantic conventions


class SPAN:
    """Span names."""

    L2: Final = "otel_cache.l2 {operation}"  # format with the operation
    LOAD: Final = "otel_cache.load"
    LOAD_WAIT: Final = "otel_cache.load.wait"
    WARMER_RUN: Final = "otel_cache.warmer.run"
    LOOP_BLOCKED: Final = "event_loop.blocked"
    LOCK_CONTENDED_EVENT: Final = "otel_cache.lock.contended"  # a span event
    FAIL_SAFE_EVENT: Final = "otel_cache.fail_safe.activated"  # a span event: a copy answered a failed load
    LOAD_TIMEOUT_EVENT: Final = "otel_cache.load.timeout"  # a span event: a caller stopped waiting


class MetricSpec:
    """Name, unit and description of one instrument (Prometheus name derived)."""

    __slots__ = ("description", "kind", "name", "unit")

    def __init__(self, name: str, kind: str, unit: str, description: str) -> None:
        self.name = name
        self.kind = kind
        self.unit = unit
        self.description = description

    @property
    def prometheus_name(self) -> str:
        """The name the OpenTelemetry Prometheus exporter gives it (dots to ``_``, unit, ``_total``)."""
        base = self.name.replace(".", "_")
        unit = {"s": "seconds", "By": "bytes"}.get(self.unit, "")
        if unit and not base.endswith(unit):
            base = f"{base}_{unit}"
        if self.kind in ("counter", "observable_counter"):
            base += "_total"
        return base


class METRICS:
    """Every instrument. ``kind`` is the OpenTelemetry instrument kind."""

    REQUESTS: Final = MetricSpec(
        "otel_cache.requests", "observable_counter", "{request}", "Lookups by level and result (hit/miss)."
    )
    PUTS: Final = MetricSpec("otel_cache.puts", "observable_counter", "{request}", "Values stored, by level.")
    EVICTIONS: Final = MetricSpec(
        "otel_cache.evictions", "observable_counter", "{entry}", "Entries that left L1, by reason."
    )
    # Not OpenTelemetry's ``*.count`` habit for up-down counters: Prometheus reads a ``_count``
    # suffix as a histogram's or summary's (``promtool check metrics`` flags it).
    ENTRIES: Final = MetricSpec(
        "otel_cache.entries", "observable_up_down_counter", "{entry}", "Entries held in L1."
    )
    MEMORY: Final = MetricSpec(
        "otel_cache.memory.usage",
        "observable_up_down_counter",
        "By",
        "Bytes held in L1: as the sizer counts with a byte bound; without one, the shallow size"
        " of keys and values (containers' contents not counted).",
    )
    OPERATION_DURATION: Final = MetricSpec(
        "otel_cache.operation.duration",
        "histogram",
        "s",
        "Duration of L2 operations, by operation and level.",
    )
    L2_ERRORS: Final = MetricSpec(
        "otel_cache.l2.errors", "observable_counter", "{error}", "Failed L2 calls, by error.type."
    )
    L2_UNSYNCED: Final = MetricSpec(
        "otel_cache.l2.unsynced",
        "observable_up_down_counter",
        "{entry}",
        "Keys whose L2 copy may be stale (their L2 write or delete failed or was skipped); "
        "reads delete such copies instead of serving them.",
    )
    L2_UNREADABLE: Final = MetricSpec(
        "otel_cache.l2.unreadable",
        "observable_counter",
        "{read}",
        "L2 reads answered with something the cache cannot use, served as misses and never fed to "
        "the circuit breaker: a value that does not decode (garbage, another program's value), or a "
        "key that holds another type (WRONGTYPE; a put over it replaces it).",
    )
    L2_COMPRESSED_SIZE: Final = MetricSpec(
        "otel_cache.l2.compressed.size",
        "observable_counter",
        "By",
        "Bytes of the values written to L2 compressed: their serialized size (input) and their "
        "size as written (output); output / input is the compression ratio.",
    )
    L2_REPAIRS: Final = MetricSpec(
        "otel_cache.l2.repairs",
        "observable_counter",
        "{entry}",
        "Stale L2 copies deleted (by a read or by the repair after an outage) after a failed L2 write.",
    )
    INVALIDATIONS_SENT: Final = MetricSpec(
        "otel_cache.invalidation.sent",
        "observable_counter",
        "{message}",
        "Invalidation messages published to the other processes on the same Redis and namespace.",
    )
    INVALIDATIONS_RECEIVED: Final = MetricSpec(
        "otel_cache.invalidation.received",
        "observable_counter",
        "{message}",
        "Invalidation messages from other processes applied to L1.",
    )
    INVALIDATIONS_IGNORED: Final = MetricSpec(
        "otel_cache.invalidation.ignored",
        "observable_counter",
        "{message}",
        "Messages on the invalidation channel ignored, by reason (garbage, version).",
    )
    INVALIDATION_LAG: Final = MetricSpec(
        "otel_cache.invalidation.lag",
        "histogram",
        "s",
        "From the sender's clock at publishing to receipt (clocks of different hosts may disagree).",
    )
    CHANNEL_UP: Final = MetricSpec(
        "otel_cache.invalidation.channel.up",
        "observable_gauge",
        "{channel}",
        "1 while the invalidation channel is subscribed (L1 serves copies), 0 while it is down.",
    )
    L1_FLUSHES: Final = MetricSpec(
        "otel_cache.invalidation.l1_flushes",
        "observable_counter",
        "{flush}",
        "L1 emptied because the invalidation channel was lost.",
    )
    BREAKER_STATE: Final = MetricSpec(
        "otel_cache.circuit_breaker.state",
        "observable_gauge",
        "{state}",
        "Circuit breaker state: one series per state (closed, open, half_open), 1 for the current"
        " one and 0 for the others.",
    )
    LOCK_WAIT: Final = MetricSpec(
        "otel_cache.lock.wait.duration",
        "histogram",
        "s",
        "Time spent waiting for a contended lock, by lock type.",
    )
    LOCK_HOLD: Final = MetricSpec(
        "otel_cache.lock.hold.duration", "histogram", "s", "Time a lock was held, by lock type (sampled)."
    )
    LOCK_CONTENDED: Final = MetricSpec(
        "otel_cache.lock.contended",
        "observable_counter",
        "{wait}",
        "Contended lock acquisitions, by lock type.",
    )
    LOADS: Final = MetricSpec(
        "otel_cache.loads",
        "observable_counter",
        "{load}",
        "Loader calls (a single-flight leader whose L1 re-check and Redis read missed), by mode.",
    )
    FAIL_SAFE_ACTIVATIONS: Final = MetricSpec(
        "otel_cache.fail_safe.activations",
        "observable_counter",
        "{activation}",
        "get_or_set calls whose load raised and that a fail-safe copy answered (get_or_set's "
        "fail_safe; the copy is then reused for its throttle).",
    )
    LOAD_TIMEOUTS: Final = MetricSpec(
        "otel_cache.load.timeouts",
        "observable_counter",
        "{timeout}",
        "get_or_set callers that stopped waiting for a load, by kind: soft (a fail-safe copy "
        "answered), hard (the copy, or LoadTimeoutError), waiter (waiting on another's load); "
        "the load goes on and stores its value.",
    )
    REFRESHES: Final = MetricSpec(
        "otel_cache.refreshes",
        "observable_counter",
        "{refresh}",
        "Background refreshes ahead of expiry (get_or_set's refresh_ahead) that ended, by result "
        "(success, failure; a failure keeps the old value).",
    )
    COALESCED: Final = MetricSpec(
        "otel_cache.load.coalesced",
        "observable_counter",
        "{request}",
        "Callers that waited for another caller's flight (its Redis read, then its load) instead of"
        " their own.",
    )
    LOAD_DURATION: Final = MetricSpec(
        "otel_cache.load.duration", "histogram", "s", "Loader duration, by result (success/failure)."
    )
    WARMER_RUNS: Final = MetricSpec("otel_cache.warmer.runs", "observable_counter", "{run}", "Warmer runs.")
    WARMER_DURATION: Final = MetricSpec(
        "otel_cache.warmer.run.duration", "histogram", "s", "Duration of warmer runs."
    )
    WARMER_FAILURES: Final = MetricSpec(
        "otel_cache.warmer.failures",
        "observable_counter",
        "{failure}",
        "Keys the warmer failed to load or store.",
    )
    WARMER_LEADER: Final = MetricSpec(
        "otel_cache.warmer.leader",
        "observable_gauge",
        "{warmer}",
        "1 while this process warms on schedule (with leader election: holds the warmer's lease), else 0.",
    )
    LOOP_LAG: Final = MetricSpec(
        "otel_cache.event_loop.lag", "histogram", "s", "Event-loop lag: how late a sleep woke up."
    )
    LOOP_LAG_MAX: Final = MetricSpec(
        "otel_cache.event_loop.lag.max",
        "observable_gauge",
        "s",
        "Longest event-loop block seen in the last collection interval.",
    )
    LOOP_BLOCKS: Final = MetricSpec(
        "otel_cache.event_loop.blocks",
        "observable_counter",
        "{block}",
        "Times the watchdog saw the loop blocked past its threshold.",
    )

    @classmethod
    def all(cls) -> tuple[MetricSpec, ...]:
        return tuple(value for value in vars(cls).values() if isinstance(value, MetricSpec))
