"""``EventLoopMonitor`` (``otel_cache/telemetry/loop_monitor.py``) against the real SDK.

The loop is blocked on purpose with ``time.sleep`` in plain functions that the
coroutines call: that is what blocking the loop means (and it keeps flake8-async's
rule against ``time.sleep`` in ``async def`` for real mistakes).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Metric, Sum
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from otel_cache.errors import CacheConfigError
from otel_cache.telemetry.loop_monitor import EventLoopMonitor, _culprit, _Frame
from otel_cache.telemetry.names import ATTR, INSTRUMENTATION_NAME, LAG_BUCKETS, METRICS, SCHEMA_URL, SPAN

pytestmark = pytest.mark.timeout(20)

WATCHDOG_PREFIX = "otel-cache-loop-watchdog"


class Providers:
    """A TracerProvider and a MeterProvider of the test's own, and readers of what they got."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)

    def monitor(self, **kwargs: Any) -> EventLoopMonitor:
        return EventLoopMonitor(
            meter_provider=self.meter_provider, tracer_provider=self.tracer_provider, **kwargs
        )

    def blocked_spans(self) -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if span.name == SPAN.LOOP_BLOCKED]

    def metrics(self) -> dict[str, tuple[Metric, Any]]:
        """Collect now (observable callbacks run, the max-lag window resets): metric -> (metric, scope)."""
        data = self.reader.get_metrics_data()
        found: dict[str, tuple[Metric, Any]] = {}
        for resource_metrics in data.resource_metrics if data is not None else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = (metric, scope_metrics.scope)
        return found


@pytest.fixture
def otel() -> Iterator[Providers]:
    providers = Providers()
    yield providers
    providers.tracer_provider.shutdown()
    providers.meter_provider.shutdown()


def point_of(metrics: dict[str, tuple[Metric, Any]], name: str, loop_name: str) -> Any:
    metric, _ = metrics[name]
    [point] = [
        p for p in metric.data.data_points if dict(p.attributes or {}).get(ATTR.LOOP_NAME) == loop_name
    ]
    return point


async def eventually(predicate: Callable[[], object], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        await asyncio.sleep(0.002)


async def next_sample(monitor: EventLoopMonitor) -> None:
    """Return right after the sampler has measured a lag and gone back to sleep."""
    seen, deadline = monitor.samples, time.monotonic() + 5.0
    while monitor.samples == seen:
        assert time.monotonic() < deadline, "the sampler stopped sampling"
        await asyncio.sleep(0)  # not a timer: return in the loop iteration the sampler ran in


def block_loop(seconds: float) -> float:
    """Block the calling thread, the event loop's, for ``seconds``; the time it really took."""
    started = time.perf_counter()
    time.sleep(seconds)
    return time.perf_counter() - started


def render_report_synchronously(seconds: float) -> None:
    # Stands for CPU-bound work done on the loop by mistake.
    time.sleep(seconds)


def wait_for_legacy_client(seconds: float) -> None:
    threading.Event().wait(seconds)  # the innermost Python frame is in threading.py


def watchdog_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(WATCHDOG_PREFIX)]


def other_tasks() -> list[str]:
    current = asyncio.current_task()
    return [task.get_name() for task in asyncio.all_tasks() if task is not current]


# -- the lag ------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["after the sampler slept", "just before it wakes"])
async def test_measures_a_50ms_block_within_20_percent(otel: Providers, phase: str) -> None:
    # The sampler measures how late `sleep(interval)` wakes. A block of D s that starts
    # x s into that sleep (0 <= x <= interval) ends D + x s after the sleep began, so
    # the lag is D + x - interval: between D - interval and D. Both ends, on purpose:
    # - "after the sampler slept": next_sample() returns as soon as the sampler has gone
    #   back to sleep (x ~ 0), the worst case: D - interval = 45 ms for D = 50 ms;
    # - "just before it wakes": a timer 1 ms before the sampler's deadline blocks (x ~
    #   interval - 1 ms): about D - 1 ms.
    # Each is deterministic up to the loop's wake-up jitter: tens of µs on an idle machine,
    # a few ms when every core is busy (the lag then includes the OS's delay, as it should).
    interval = 0.005
    loop = asyncio.get_running_loop()
    async with otel.monitor(interval=interval, watchdog=False) as monitor:
        await next_sample(monitor)
        await next_sample(monitor)
        if phase == "after the sampler slept":
            blocked = block_loop(0.05)
        else:
            fired = loop.create_future()
            loop.call_later(interval - 0.001, lambda: fired.set_result(block_loop(0.05)))
            blocked = await fired
        await next_sample(monitor)
        samples = monitor.samples
        metrics = otel.metrics()
    lag = monitor.max_lag_s
    assert abs(lag - 0.05) <= 0.2 * 0.05, (lag, blocked)
    assert lag >= blocked - interval - 0.001, (lag, blocked)  # never more than an interval short
    if phase == "just before it wakes":
        assert lag >= blocked - 0.003, (lag, blocked)
    # The histogram got every sample, and its max is that lag.
    point = point_of(metrics, METRICS.LOOP_LAG.name, "default")
    assert point.count == samples
    assert point.max == pytest.approx(lag)


async def test_lag_histogram_has_the_right_name_unit_buckets_and_attributes(otel: Providers) -> None:
    async with otel.monitor(interval=0.002, name="api", mode="async") as monitor:
        await eventually(lambda: monitor.samples >= 5)
        metrics = otel.metrics()
    metric, scope = metrics[METRICS.LOOP_LAG.name]
    assert (scope.name, scope.schema_url) == (INSTRUMENTATION_NAME, SCHEMA_URL)
    assert scope.version
    assert metric.unit == METRICS.LOOP_LAG.unit == "s"
    assert metric.description == METRICS.LOOP_LAG.description
    assert isinstance(metric.data, Histogram)
    [point] = metric.data.data_points
    assert dict(point.attributes or {}) == {ATTR.MODE: "async", ATTR.LOOP_NAME: "api"}
    assert tuple(point.explicit_bounds) == LAG_BUCKETS
    assert point.count >= 5
    assert 0 <= point.min <= point.max < 0.1

    gauge, _ = metrics[METRICS.LOOP_LAG_MAX.name]
    assert isinstance(gauge.data, Gauge)
    assert gauge.unit == "s"
    blocks, _ = metrics[METRICS.LOOP_BLOCKS.name]
    assert isinstance(blocks.data, Sum)
    assert blocks.data.is_monotonic
    assert blocks.unit == METRICS.LOOP_BLOCKS.unit
    assert point_of(metrics, METRICS.LOOP_BLOCKS.name, "api").value == 0


async def test_max_lag_gauge_reports_the_longest_lag_since_the_last_collection(otel: Providers) -> None:
    async with otel.monitor(interval=0.005, watchdog=False, name="gauge") as monitor:
        await next_sample(monitor)
        block_loop(0.15)
        await next_sample(monitor)
        first = point_of(otel.metrics(), METRICS.LOOP_LAG_MAX.name, "gauge").value
        await next_sample(monitor)
        await next_sample(monitor)
        second = point_of(otel.metrics(), METRICS.LOOP_LAG_MAX.name, "gauge").value
    assert first == pytest.approx(monitor.max_lag_s)
    assert first >= 0.14
    assert second < first / 2  # reset by the first collection (a busy machine can delay a wake-up)
    assert monitor.max_lag_s == first  # the property is never reset


async def test_gauge_shows_a_block_while_it_lasts(otel: Providers) -> None:
    # The reader runs in its own thread (here: a thread of ours), so it sees the lag in progress.
    async with otel.monitor(interval=0.005, watchdog=False, name="stuck") as monitor:
        await next_sample(monitor)
        seen: list[float] = []

        def collect_later() -> None:
            time.sleep(0.1)
            seen.append(point_of(otel.metrics(), METRICS.LOOP_LAG_MAX.name, "stuck").value)

        reader = threading.Thread(target=collect_later)
        reader.start()
        block_loop(0.2)
        reader.join()
    [value] = seen
    assert 0.08 <= value <= 0.2


# -- the watchdog ---------------------------------------------------------------------


async def test_watchdog_span_names_the_blocking_function_and_links_the_request(otel: Providers) -> None:
    tracer = otel.tracer_provider.get_tracer("tests.app")
    interval = 0.01

    async def handle_request() -> tuple[SpanContext, int, int]:
        with tracer.start_as_current_span("GET /report") as request_span:
            await asyncio.sleep(0)
            started_ns = time.time_ns()
            render_report_synchronously(0.3)
            return request_span.get_span_context(), started_ns, time.time_ns()

    async with otel.monitor(interval=interval, block_threshold=0.1, name="web") as monitor:
        await next_sample(monitor)
        request, started_ns, ended_ns = await asyncio.create_task(handle_request(), name="request-42")
        await eventually(lambda: monitor.blocks == 1)
        blocks_point = point_of(otel.metrics(), METRICS.LOOP_BLOCKS.name, "web")

    [span] = otel.blocked_spans()
    attributes = dict(span.attributes or {})
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == INSTRUMENTATION_NAME
    assert span.kind is trace.SpanKind.INTERNAL

    # What blocked: the function, where, and the stack around it.
    function = attributes[ATTR.CODE_FUNCTION]
    assert isinstance(function, str)
    assert function.endswith(".render_report_synchronously")
    lines, first = inspect.getsourcelines(render_report_synchronously)
    sleep_line = first + next(i for i, line in enumerate(lines) if "time.sleep" in line)
    assert attributes[ATTR.CODE_LINE_NUMBER] == sleep_line
    assert str(attributes[ATTR.CODE_FILE_PATH]).endswith("test_loop_monitor.py")
    stack = str(attributes[ATTR.CODE_STACKTRACE])
    assert stack.startswith("Stack (most recent call first):\n")
    frames = [line for line in stack.splitlines() if line.startswith("  File ")]
    assert frames[0].endswith("in " + function)  # innermost first
    assert "handle_request" in frames[1]
    assert "time.sleep(seconds)" in stack  # source lines
    assert len(frames) <= 20

    # Who: the running task, and a link to the request's span (the block is a root of its own).
    assert attributes[ATTR.LOOP_TASK] == "request-42"
    assert attributes[ATTR.LOOP_NAME] == "web"
    assert attributes[ATTR.MODE] == "async"
    assert span.parent is None
    [link] = span.links
    assert (link.context.trace_id, link.context.span_id) == (request.trace_id, request.span_id)

    # When: back-dated to the sampler's missed deadline, at most one interval after the block began.
    assert span.start_time is not None
    assert span.end_time is not None
    duration = (span.end_time - span.start_time) / 1e9
    assert 0.3 - interval - 0.005 <= duration <= 0.32
    assert attributes[ATTR.LOOP_BLOCKED] == pytest.approx(duration, abs=1e-6)
    assert started_ns - 2_000_000 <= span.start_time <= started_ns + (interval + 0.005) * 1e9
    assert ended_ns - 2_000_000 <= span.end_time <= ended_ns + 20_000_000

    assert blocks_point.value == 1
    assert monitor.blocks == 1


async def test_the_blocking_function_is_the_callers_code_not_the_standard_library(otel: Providers) -> None:
    async with otel.monitor(interval=0.01, block_threshold=0.05) as monitor:
        await next_sample(monitor)
        wait_for_legacy_client(0.2)
        await eventually(lambda: monitor.blocks == 1)
    [span] = otel.blocked_spans()
    attributes = dict(span.attributes or {})
    assert str(attributes[ATTR.CODE_FUNCTION]).endswith(".wait_for_legacy_client")
    stack = str(attributes[ATTR.CODE_STACKTRACE])
    frames = [line for line in stack.splitlines() if line.startswith("  File ")]
    assert frames[0].endswith("in threading.Condition.wait")  # the innermost frame is still shown
    assert frames[1].endswith("in threading.Event.wait")


async def test_block_in_a_plain_callback_has_no_task_but_links_its_context(otel: Providers) -> None:
    tracer = otel.tracer_provider.get_tracer("tests.app")
    loop = asyncio.get_running_loop()
    async with otel.monitor(interval=0.01, block_threshold=0.05) as monitor:
        await next_sample(monitor)
        done: asyncio.Future[None] = loop.create_future()

        def job_callback() -> None:
            render_report_synchronously(0.2)
            done.set_result(None)

        with tracer.start_as_current_span("job") as job:
            # call_soon copies the current context, the span included, into the handle.
            loop.call_soon(job_callback)
        await done
        await eventually(lambda: monitor.blocks == 1)
    [span] = otel.blocked_spans()
    attributes = dict(span.attributes or {})
    assert ATTR.LOOP_TASK not in attributes
    assert str(attributes[ATTR.CODE_FUNCTION]).endswith(".render_report_synchronously")
    [link] = span.links
    assert link.context.span_id == job.get_span_context().span_id


async def test_block_under_the_threshold_is_measured_but_not_reported(otel: Providers) -> None:
    async with otel.monitor(interval=0.005, block_threshold=0.2) as monitor:
        await next_sample(monitor)
        block_loop(0.06)
        await next_sample(monitor)
        await asyncio.sleep(0.25)  # the watchdog has looked since
    assert monitor.max_lag_s >= 0.05
    assert monitor.blocks == 0
    assert otel.blocked_spans() == []


async def test_block_just_past_the_threshold_is_reported(otel: Providers) -> None:
    # The watchdog wakes when the sampler's sleep is block_threshold overdue, not on a coarse poll.
    async with otel.monitor(interval=0.01, block_threshold=0.1) as monitor:
        await next_sample(monitor)
        render_report_synchronously(0.14)  # a lag of 130 to 140 ms
        await eventually(lambda: monitor.blocks == 1)
    [span] = otel.blocked_spans()
    blocked_s = (span.attributes or {})[ATTR.LOOP_BLOCKED]
    assert isinstance(blocked_s, float)
    assert 0.1 < blocked_s <= 0.15


async def test_block_that_ends_at_stop_is_reported_then(otel: Providers) -> None:
    async with otel.monitor(interval=0.01, block_threshold=0.05) as monitor:
        await next_sample(monitor)
        render_report_synchronously(0.2)
        stopped_ns = time.time_ns()
        # No await in between: the sampler never wakes from the sleep the block overran.
        await monitor.stop()
        assert monitor.blocks == 1  # reported before stop() returned
    [span] = otel.blocked_spans()
    assert span.start_time is not None
    assert span.end_time is not None
    assert 0.15 <= (span.end_time - span.start_time) / 1e9 <= 0.25
    assert stopped_ns - 2_000_000 <= span.end_time <= stopped_ns + 5_000_000
    assert str((span.attributes or {})[ATTR.CODE_FUNCTION]).endswith(".render_report_synchronously")


async def test_no_block_no_span_and_a_small_lag(otel: Providers) -> None:
    async with otel.monitor(interval=0.01, block_threshold=0.1) as monitor:
        await asyncio.sleep(0.3)
    assert monitor.samples >= 10
    assert monitor.max_lag_s < 0.05
    assert monitor.blocks == 0
    assert otel.blocked_spans() == []


# -- start and stop ---------------------------------------------------------------------


async def test_stop_is_prompt_and_leaves_no_thread_and_no_task(otel: Providers) -> None:
    assert watchdog_threads() == []
    # The sampler sleeps 1 s and the watchdog polls every 2.5 s: stop() must not wait for either.
    monitor = otel.monitor(interval=1.0, block_threshold=10.0, name="prompt")
    monitor.start()
    assert monitor.running
    assert watchdog_threads() == ["otel-cache-loop-watchdog-prompt"]
    assert other_tasks() == ["otel-cache-loop-monitor-prompt"]
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await monitor.stop()
    assert time.perf_counter() - started < 0.05
    assert not monitor.running
    assert watchdog_threads() == []
    assert other_tasks() == []


async def test_start_and_stop_are_idempotent_and_it_restarts(otel: Providers) -> None:
    monitor = otel.monitor(interval=0.005, name="twice")
    await monitor.stop()  # never started: a no-op
    monitor.start()
    await monitor.astart()
    assert watchdog_threads() == ["otel-cache-loop-watchdog-twice"]
    assert other_tasks() == ["otel-cache-loop-monitor-twice"]
    await monitor.stop()
    await monitor.stop()
    assert (watchdog_threads(), other_tasks()) == ([], [])

    samples = monitor.samples
    async with monitor:
        await eventually(lambda: monitor.samples > samples + 2)
        assert watchdog_threads() == ["otel-cache-loop-watchdog-twice"]
    assert (watchdog_threads(), other_tasks()) == ([], [])


async def test_without_watchdog_there_is_no_thread(otel: Providers) -> None:
    async with otel.monitor(interval=0.005, watchdog=False) as monitor:
        await eventually(lambda: monitor.samples >= 2)
        assert watchdog_threads() == []
        block_loop(0.1)
        await next_sample(monitor)
    assert monitor.blocks == 0
    assert otel.blocked_spans() == []


async def test_two_monitors_on_one_provider_both_report(otel: Providers) -> None:
    # The SDK keeps the first callbacks of an instrument created twice: the monitors share one set.
    first = otel.monitor(interval=0.005, name="one", watchdog=False)
    second = otel.monitor(interval=0.005, name="two", watchdog=False)
    async with first, second:
        await eventually(lambda: first.samples >= 2 and second.samples >= 2)
        metrics = otel.metrics()
        for name in ("one", "two"):
            assert point_of(metrics, METRICS.LOOP_LAG.name, name).count >= 2
            assert point_of(metrics, METRICS.LOOP_BLOCKS.name, name).value == 0
            point_of(metrics, METRICS.LOOP_LAG_MAX.name, name)
        await first.stop()
        gauge, _ = otel.metrics()[METRICS.LOOP_LAG_MAX.name]
        assert [dict(p.attributes or {})[ATTR.LOOP_NAME] for p in gauge.data.data_points] == ["two"]


def test_a_stopped_loop_is_not_a_blocked_loop(otel: Providers) -> None:
    # A loop driven by run_until_complete now and then: between two runs nothing is blocked.
    loop = asyncio.new_event_loop()
    monitor = otel.monitor(interval=0.01, block_threshold=0.05)
    try:

        async def start() -> None:
            monitor.start()
            await asyncio.sleep(0.03)

        loop.run_until_complete(start())
        time.sleep(0.3)  # the loop is not running; the watchdog is
        loop.run_until_complete(asyncio.sleep(0.03))
        loop.run_until_complete(monitor.stop())
    finally:
        loop.close()
    assert monitor.blocks == 0
    assert otel.blocked_spans() == []


def test_a_loop_waiting_in_select_is_blamed_on_select_not_on_its_caller() -> None:
    # Overdue while in the selector: no callback ran, the loop thread waited for the CPU or the
    # GIL. The innermost frame outside the standard library would be whoever called asyncio.run().
    def frame(function: str, internal: bool) -> _Frame:
        return _Frame(f"/{function}.py", 1, function, internal)

    frames = (
        frame("selectors.EpollSelector.select", True),
        frame("asyncio.base_events.BaseEventLoop._run_once", True),
        frame("myapp.main", False),
    )
    assert _culprit(frames) is frames[0]
    assert _culprit(frames[1:]) is frames[2]
    assert _culprit(frames[:2]) is frames[0]  # all internal: the innermost
    assert _culprit(()) is None


def test_start_needs_a_running_loop(otel: Providers) -> None:
    with pytest.raises(RuntimeError):
        otel.monitor().start()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": 0},
        {"interval": -1.0},
        {"interval": math.nan},
        {"interval": True},
        {"block_threshold": 0.0},
        {"stack_depth": 0},
    ],
)
def test_invalid_arguments_are_refused(otel: Providers, kwargs: dict[str, Any]) -> None:
    with pytest.raises(CacheConfigError):
        otel.monitor(**kwargs)
