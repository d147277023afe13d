"""``EventLoopMonitor``: event-loop lag as a histogram, and a span for every long block.

    async with EventLoopMonitor(interval=0.05, block_threshold=0.1, name="api"):
        ...   # serve requests

    monitor = EventLoopMonitor(name="api")
    monitor.start()          # from inside the running loop (or: await monitor.astart())
    ...
    await monitor.stop()     # cancels the sampler, joins the watchdog; no task, no thread left

Two parts, one per thread::

    loop thread                                   watchdog thread (daemon)
    -----------                                   ------------------------
    sampler task, forever:                        asleep until deadline + threshold:
      beat = (i, deadline = now + interval)  -->    read beat; now - deadline > threshold?
      await asyncio.sleep(interval)                   yes, first time for beat i: capture the
      lag = now - deadline      (>= 0)                loop thread's stack, its running task,
      histogram.record(lag)                           the task's current span  -> pending
      lag > threshold: stall = (i, now)  ------->   beat moved on past i (the loop recovered):
                                                      emit `event_loop.blocked`, back-dated
                                                      from deadline to the stall's end

**The sampler** measures sleep overshoot: how late ``asyncio.sleep(interval)`` woke
up. A block of ``D`` seconds that starts ``x`` seconds into the sampler's sleep
(``0 <= x <= interval``) is measured as ``D - (interval - x)``; the measurement is a
lower bound of the block and at most ``interval`` short of it, so ``interval`` is the
monitor's resolution. Every sample goes to the ``otel_cache.event_loop.lag`` histogram
(buckets ``LAG_BUCKETS``); ``otel_cache.event_loop.lag.max`` is an observable gauge of
the longest lag since the previous collection (each collection resets it, so with two
readers each sees its own share), or of the lag in progress if the loop is blocked
right now: the gauge is read from the reader's thread and keeps working while the loop
is stuck.

**The watchdog** notices a block while it is happening, from its own thread, so it can
see what the loop thread is doing: ``sys._current_frames()`` gives the loop thread's
stack, ``asyncio.current_task(loop)`` the task it is running, and that task's context
the span that was current in it (the request being served). When the loop recovers it
emits one ``event_loop.blocked`` span covering the block (from the sampler's missed
deadline to when it woke up; ``otel_cache.event_loop.blocked_s`` holds the same
duration), with:

- ``code.function.name``, ``code.file.path``, ``code.line.number``: the innermost frame
  that is not in the standard library (asyncio, selectors, json, ...) nor in this
  module, i.e. the code that called whatever blocked: ``myapp.reports.render`` rather
  than ``time.sleep`` or ``json.encoder.iterencode``; if every frame is in the standard
  library, the innermost frame. ``selectors.EpollSelector.select`` (or another
  selector's) means no callback was running: the loop waited for the CPU (an
  overloaded machine) or for the GIL (another thread's long hold);
- ``code.stacktrace``: the innermost ``stack_depth`` frames, most recent call first, in
  :mod:`faulthandler`'s layout;
- ``otel_cache.event_loop.task``: the running task's name (absent for a plain callback);
- a link to the span that was current in that task, so Jaeger leads from the block to
  the request that caused it. The span itself starts a trace of its own.

``otel_cache.event_loop.blocks`` counts the spans emitted. A block is reported when the
sampler measures it past ``block_threshold`` and the watchdog saw it in progress: the
watchdog sleeps until the sampler's current sleep is ``block_threshold`` overdue, so it
sees every such block unless its own thread wakes late. A block inside C code that
holds the GIL (a long regex, some C extensions) keeps the watchdog from running; it is
measured by the sampler but gets no span. If :meth:`EventLoopMonitor.stop` runs before
the sampler wakes from a block, the span ends when ``stop`` was called.

**Cost while nothing blocks**: ``1 / interval`` sampler wake-ups a second and about
``1 / (block_threshold + interval / 2)`` watchdog wake-ups a second (the watchdog
sleeps until the sampler's current sleep is ``block_threshold`` overdue, not on a fixed
poll). ``python -m benchmarks.loop_monitor`` measures both; on a 2-vCPU VM a sample
costs 100-130 µs of CPU (60-70 of them any asyncio timer's wake-up, most of the rest
the SDK's histogram record, which takes 10 µs in a tight loop but 50-80 µs on the cold
caches a 20 Hz sampler meets) and a watchdog wake-up 30-50 µs: 0.25-0.3 % of one core
with the defaults (20 + 8 wake-ups a second), 1.2-1.5 % with ``interval=0.01,
block_threshold=0.02``.

Every point and span carries ``otel_cache.mode`` (``mode``) and
``otel_cache.event_loop.name`` (``name``): give each monitored loop its own name.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import linecache
import logging
import os
import sys
import sysconfig
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import FrameType, TracebackType

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation
from opentelemetry.trace import Link, SpanContext, SpanKind, TracerProvider
from opentelemetry.util.types import AttributeValue

from otel_cache._version import __version__
from otel_cache.errors import CacheConfigError
from otel_cache.telemetry.names import ATTR, INSTRUMENTATION_NAME, LAG_BUCKETS, METRICS, SCHEMA_URL, SPAN

__all__ = ["EventLoopMonitor"]

logger = logging.getLogger("otel_cache.telemetry")

_clock = time.perf_counter  # one clock for both threads: system-wide and monotonic


class EventLoopMonitor:
    """Measures event-loop lag and reports blocks of the loop as back-dated spans.

    Args:
        interval: seconds the sampler sleeps between two measurements; also the
            resolution of the lag measured (a block is measured at most this much short).
        block_threshold: a loop unresponsive for longer than this is a block: the
            watchdog captures what the loop thread is running and emits a span.
        name: the loop's name, on every point and span (``otel_cache.event_loop.name``)
            and in the names of the sampler task and the watchdog thread.
        mode: the ``otel_cache.mode`` attribute.
        meter_provider: where the instruments are created (default: the global one).
        tracer_provider: where the ``event_loop.blocked`` spans go (default: the global one).
        watchdog: False for the lag histogram only (no thread, no spans).
        stack_depth: frames kept in ``code.stacktrace``, innermost first.

    Raises:
        CacheConfigError: a non-positive ``interval``, ``block_threshold`` or ``stack_depth``.

    Start it from the loop it watches and stop it from that loop. The plain-number
    properties (``samples``, ``last_lag_s``, ``max_lag_s``, ``blocks``) read without
    an OpenTelemetry reader.
    """

    def __init__(
        self,
        *,
        interval: float = 0.05,
        block_threshold: float = 0.1,
        name: str = "default",
        mode: str = "async",
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        watchdog: bool = True,
        stack_depth: int = 20,
    ) -> None:
        for arg, value in (("interval", interval), ("block_threshold", block_threshold)):
            # `not value > 0` also refuses NaN.
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise CacheConfigError(f"EventLoopMonitor: {arg} must be a positive number of seconds")
        if isinstance(stack_depth, bool) or not isinstance(stack_depth, int) or stack_depth < 1:
            raise CacheConfigError("EventLoopMonitor: stack_depth must be an int >= 1")
        self._interval = float(interval)
        self._threshold = float(block_threshold)
        self._name = name
        self._watchdog = watchdog
        self._stack_depth = stack_depth
        self._attributes: dict[str, AttributeValue] = {ATTR.MODE: mode, ATTR.LOOP_NAME: name}
        self._instruments = _instruments_for(meter_provider)
        self._tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
        )

        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._watchdog_done: asyncio.Future[None] | None = None
        self._stopped_at: float | None = None
        # Written by the loop thread, read by the watchdog: each is one attribute store
        # of an immutable value, so a reader sees an old or a new value, never half.
        self._beat: tuple[int, float] = (-1, 0.0)  # (sleep index, its deadline)
        self._stall: tuple[int, float] | None = None  # (sleep index, woke) of the last sleep > threshold
        self._samples = 0
        self._last_lag = 0.0
        self._max_lag = 0.0
        self._window_max = 0.0
        self._window_lock = threading.Lock()  # the reader's thread reads-and-resets the window
        self._blocks = 0  # written by the watchdog only

    # -- numbers ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def block_threshold(self) -> float:
        return self._threshold

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`stop` (or until the sampler task is cancelled)."""
        return self._task is not None and not self._task.done()

    @property
    def samples(self) -> int:
        """Lag measurements taken (each one a histogram point)."""
        return self._samples

    @property
    def last_lag_s(self) -> float:
        """The latest lag measured, in seconds."""
        return self._last_lag

    @property
    def max_lag_s(self) -> float:
        """The longest lag measured since the monitor was made (never reset)."""
        return self._max_lag

    @property
    def blocks(self) -> int:
        """Blocks reported by the watchdog (``event_loop.blocked`` spans emitted)."""
        return self._blocks

    @property
    def watchdog_thread_name(self) -> str:
        return f"otel-cache-loop-watchdog-{self._name}"

    @property
    def sampler_task_name(self) -> str:
        return f"otel-cache-loop-monitor-{self._name}"

    # -- start and stop ----------------------------------------------------------

    def start(self) -> None:
        """Start the sampler task (and the watchdog thread); a no-op if running.

        Raises:
            RuntimeError: no running event loop in this thread, or the monitor is
                running on another loop.
        """
        loop = asyncio.get_running_loop()
        if self.running:
            if self._loop is not loop:
                raise RuntimeError("EventLoopMonitor is already running on another event loop")
            return
        self._loop = loop
        self._stopped_at = None
        self._beat = (-1, _clock() + self._interval)
        self._stall = None
        # An empty context: the sampler must not keep the caller's span current forever.
        self._task = task = loop.create_task(
            self._sample(), name=self.sampler_task_name, context=contextvars.Context()
        )
        self._instruments.add(self)
        if self._watchdog:
            # A fresh event per thread: a thread left by a cancelled sampler ends on its own.
            self._stop_event = stop = threading.Event()
            self._watchdog_done = done = loop.create_future()
            self._thread = threading.Thread(
                target=self._watch,
                args=(stop, done, loop, task, threading.get_ident()),
                name=self.watchdog_thread_name,
                daemon=True,
            )
            self._thread.start()

    async def astart(self) -> None:
        """:meth:`start`, for callers that prefer to await."""
        self.start()

    async def stop(self) -> None:
        """Stop the sampler and the watchdog and wait for both; a no-op if not running.

        A block seen by the watchdog and not reported yet is reported now.
        """
        task, thread, watchdog_done = self._task, self._thread, self._watchdog_done
        if task is None:
            return
        same_loop = asyncio.get_running_loop() is self._loop
        if not task.done() and not same_loop:
            raise RuntimeError("EventLoopMonitor.stop() must run in the loop it monitors")
        self._task = self._thread = self._watchdog_done = None
        self._stopped_at = _clock()
        self._stop_event.set()
        self._instruments.discard(self)
        if not task.done():
            task.cancel()
            # asyncio.wait, not `await task`: a CancelledError here is our caller's, not the task's.
            await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover - defensive
            logger.error("event-loop monitor %r: sampler failed", self._name, exc_info=task.exception())
        if thread is not None:
            if same_loop and watchdog_done is not None:
                # The watchdog wakes at once, but it may be exporting a span: wait for its
                # signal rather than in thread.join(), which would block the loop meanwhile.
                await watchdog_done
            thread.join()

    async def __aenter__(self) -> EventLoopMonitor:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- the loop thread -----------------------------------------------------------

    async def _sample(self) -> None:
        interval, threshold = self._interval, self._threshold
        record, attributes = self._instruments.lag.record, self._attributes
        index = 0
        while True:
            deadline = _clock() + interval
            self._beat = (index, deadline)
            await asyncio.sleep(interval)
            woke = _clock()
            # asyncio may run a timer up to clock_resolution early.
            lag = max(woke - deadline, 0.0)
            if lag > threshold:
                self._stall = (index, woke)
            index += 1
            self._samples += 1
            self._last_lag = lag
            if lag > self._max_lag:
                self._max_lag = lag
            with self._window_lock:
                if lag > self._window_max:
                    self._window_max = lag
            try:
                record(lag, attributes)
            except Exception:  # pragma: no cover - the SDK does not raise; a broken one must not stop us
                logger.exception("event-loop monitor %r: recording the lag failed", self._name)

    # -- the reader's thread ------------------------------------------------------------

    def _collect_max(self) -> float:
        """The longest lag since the last call, or the lag in progress if that is longer."""
        with self._window_lock:
            value, self._window_max = self._window_max, 0.0
        in_progress = _clock() - self._beat[1]
        return max(value, in_progress) if self._task is not None else value

    # -- the watchdog thread ---------------------------------------------------------------

    def _watch(
        self,
        stop: threading.Event,
        done: asyncio.Future[None],
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Task[None],
        thread_id: int,
    ) -> None:
        try:
            self._watch_until_stopped(stop, loop, task, thread_id)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_set_done, done)

    def _watch_until_stopped(
        self, stop: threading.Event, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None], thread_id: int
    ) -> None:
        pending: _Block | None = None
        threshold = self._threshold
        poll = threshold / 4
        wait = self._beat[1] + threshold - _clock()
        try:
            while not stop.wait(max(wait, 0.0)):
                # The sampler cancelled without stop() (asyncio.run's shutdown): the beat
                # is frozen, and a loop still shutting down must not look blocked.
                if task.done() or loop.is_closed():
                    break
                try:
                    pending = self._check(pending, loop, thread_id)
                except Exception:  # the watchdog must not die
                    logger.exception("event-loop monitor %r: watchdog check failed", self._name)
                    pending = None
                # Asleep until the sampler's current sleep is `threshold` overdue, the first
                # moment a block could be one: a wake-up per threshold + interval / 2 on
                # average rather than a fixed poll. In a block, or overdue without one (a
                # loop that is not running), poll for the end.
                wait = self._beat[1] + threshold - _clock() if pending is None else poll
                if wait <= 0:
                    wait = poll
        finally:
            if pending is not None:
                stall = self._stall
                if stall is not None and stall[0] == pending.index:
                    end = stall[1]
                else:  # stopped before the sampler woke up: the block ended before stop()
                    end = self._stopped_at if self._stopped_at is not None else _clock()
                try:
                    self._report(pending, end)
                except Exception:
                    logger.exception("event-loop monitor %r: reporting a block failed", self._name)

    def _check(
        self, pending: _Block | None, loop: asyncio.AbstractEventLoop, thread_id: int
    ) -> _Block | None:
        index, deadline = self._beat
        if pending is not None:
            if index == pending.index:
                return pending  # still blocked
            stall = self._stall
            if stall is not None and stall[0] == pending.index:
                self._report(pending, stall[1])
            # Otherwise the sampler measured it at or under the threshold (it ended just as
            # we saw it): not a block.
            return None
        if not loop.is_running() or _clock() - deadline <= self._threshold:
            return None
        block = self._capture(index, deadline, loop, thread_id)
        if self._beat[0] != index:
            return None  # the loop moved on while we looked: the stack is not the block's
        return block

    def _capture(
        self, index: int, deadline: float, loop: asyncio.AbstractEventLoop, thread_id: int
    ) -> _Block:
        frame = sys._current_frames().get(thread_id)
        try:
            frames = _frames(frame, self._stack_depth)
            try:
                task = asyncio.current_task(loop)  # asyncio's per-loop record: any thread may read it
            except RuntimeError:  # pragma: no cover - a loop asyncio does not know
                task = None
            ctx = _task_context(task) if task is not None else None
            if ctx is None:  # Python 3.11's C tasks hide their context; a plain callback has no task
                ctx = _running_handle_context(frame)
        finally:
            del frame  # a frame keeps its locals alive
        request = _span_context_in(ctx) if ctx is not None else None
        return _Block(index, deadline, frames, task.get_name() if task is not None else None, request)

    def _report(self, block: _Block, end: float) -> None:
        blocked_s = max(end - block.deadline, 0.0)
        culprit = _culprit(block.frames)
        attributes: dict[str, AttributeValue] = {
            **self._attributes,
            ATTR.LOOP_BLOCKED: blocked_s,
            ATTR.CODE_STACKTRACE: _format_stack(block.frames),
        }
        if culprit is not None:
            attributes[ATTR.CODE_FUNCTION] = culprit.function
            attributes[ATTR.CODE_FILE_PATH] = culprit.filename
            attributes[ATTR.CODE_LINE_NUMBER] = culprit.lineno
        if block.task_name is not None:
            attributes[ATTR.LOOP_TASK] = block.task_name
        links = [Link(block.request)] if block.request is not None else []
        # perf_counter -> wall clock, anchored now (no drift from an anchor taken at start).
        now, now_ns = _clock(), time.time_ns()
        span = self._tracer.start_span(
            SPAN.LOOP_BLOCKED,
            context=otel_context.Context(),  # a root: the request is linked, not the parent
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=now_ns - round((now - block.deadline) * 1e9),
        )
        span.end(end_time=now_ns - round((now - end) * 1e9))
        self._blocks += 1
        logger.warning(
            "event loop %r blocked for %.3f s in %s (task: %s)",
            self._name,
            blocked_s,
            culprit.function if culprit is not None else "?",
            block.task_name or "none",
        )


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():  # stop() was cancelled while it waited
        future.set_result(None)


# -- what the watchdog captured ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    filename: str
    lineno: int
    function: str  # module.qualname
    internal: bool  # standard library or this module


@dataclass(frozen=True, slots=True)
class _Block:
    index: int  # the sampler's sleep that overran
    deadline: float  # when that sleep should have ended: the span's start
    frames: tuple[_Frame, ...]  # innermost first
    task_name: str | None
    request: SpanContext | None  # the span current in the running task


def _frames(frame: FrameType | None, depth: int) -> tuple[_Frame, ...]:
    """The innermost ``depth`` frames of a stack, innermost first."""
    frames: list[_Frame] = []
    while frame is not None and len(frames) < depth:
        code = frame.f_code
        module = frame.f_globals.get("__name__")
        qualname = code.co_qualname
        function = f"{module}.{qualname}" if isinstance(module, str) and module else qualname
        lineno = frame.f_lineno
        lineno = lineno if lineno is not None else 0
        frames.append(_Frame(code.co_filename, lineno, function, _is_internal(code.co_filename)))
        frame = frame.f_back
    return tuple(frames)


def _culprit(frames: tuple[_Frame, ...]) -> _Frame | None:
    """The innermost frame outside the standard library and this module, else the innermost.

    A loop thread caught in its selector's ``select`` was not running a callback: the
    OS did not run it (CPU starved) or another thread held the GIL. ``select`` itself is
    then the answer, not the code that started the loop.
    """
    if frames and frames[0].function.startswith("selectors.") and frames[0].function.endswith(".select"):
        return frames[0]
    return next((frame for frame in frames if not frame.internal), frames[0] if frames else None)


def _format_stack(frames: tuple[_Frame, ...]) -> str:
    """``faulthandler``'s layout, with the source line under each frame."""
    lines = ["Stack (most recent call first):"]
    for frame in frames:
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.function}')
        source = linecache.getline(frame.filename, frame.lineno).strip()
        if source:
            lines.append(f"    {source}")
    return "\n".join(lines)


@functools.cache
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.normcase(os.path.abspath(paths[key])) for key in ("stdlib", "platstdlib") if key in paths}
    return tuple(path + os.sep for path in dirs)


@functools.cache
def _is_internal(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return True
    path = os.path.normcase(os.path.abspath(filename))
    if path == os.path.normcase(os.path.abspath(__file__)):
        return True
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return path.startswith(_stdlib_dirs())


def _task_context(task: asyncio.Task[object]) -> contextvars.Context | None:
    """The context ``task`` runs in (Python 3.12+, or a pure-Python task)."""
    get_context = getattr(task, "get_context", None)
    ctx = get_context() if get_context is not None else getattr(task, "_context", None)
    return ctx if isinstance(ctx, contextvars.Context) else None


_HANDLE_RUN = getattr(getattr(asyncio.events.Handle, "_run", None), "__code__", None)


def _running_handle_context(frame: FrameType | None) -> contextvars.Context | None:
    """The context of the callback the loop is running, from its ``Handle._run`` frame.

    A task's steps run in handles that carry the task's context, so this finds the
    request's context where the task does not expose it (Python 3.11's C tasks), and
    that of a plain ``call_soon`` callback too. Not with uvloop (its handles are not
    Python code).
    """
    while frame is not None:
        if frame.f_code is _HANDLE_RUN:
            # f_locals of a frame running in another thread: a snapshot, read only.
            ctx = getattr(frame.f_locals.get("self"), "_context", None)
            return ctx if isinstance(ctx, contextvars.Context) else None
        frame = frame.f_back
    return None


def _span_context_in(ctx: contextvars.Context) -> SpanContext | None:
    """The span current in ``ctx``, read from another thread without entering it."""
    current = _otel_context_in(ctx)
    if current is None:
        return None
    span_context = trace.get_current_span(current).get_span_context()
    return span_context if span_context.is_valid else None


def _otel_context_in(ctx: contextvars.Context) -> otel_context.Context | None:
    # OpenTelemetry keeps its context in one ContextVar (named "current_context") of the
    # default runtime context; a contextvars.Context is a read-only mapping of such vars.
    var = getattr(getattr(otel_context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    if isinstance(var, contextvars.ContextVar):
        value = ctx.get(var)
        return value if isinstance(value, otel_context.Context) else None
    for key, value in ctx.items():  # another runtime context: look for it by name
        if key.name == "current_context" and isinstance(value, otel_context.Context):
            return value
    return None


# -- instruments, one set per meter provider ----------------------------------------------


class _LoopInstruments:
    """The three instruments and the monitors they report, for one meter provider.

    The SDK returns the existing instrument when one is created twice and drops the
    second one's callbacks, so every monitor on a provider shares one set, and the
    observable callbacks walk the monitors that are running.
    """

    def __init__(self, meter: Meter) -> None:
        self._monitors: weakref.WeakSet[EventLoopMonitor] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.lag: Histogram = meter.create_histogram(
            METRICS.LOOP_LAG.name,
            unit=METRICS.LOOP_LAG.unit,
            description=METRICS.LOOP_LAG.description,
            explicit_bucket_boundaries_advisory=list(LAG_BUCKETS),
        )
        meter.create_observable_gauge(
            METRICS.LOOP_LAG_MAX.name,
            callbacks=[self._observe_max_lag],
            unit=METRICS.LOOP_LAG_MAX.unit,
            description=METRICS.LOOP_LAG_MAX.description,
        )
        meter.create_observable_counter(
            METRICS.LOOP_BLOCKS.name,
            callbacks=[self._observe_blocks],
            unit=METRICS.LOOP_BLOCKS.unit,
            description=METRICS.LOOP_BLOCKS.description,
        )

    def add(self, monitor: EventLoopMonitor) -> None:
        with self._lock:
            self._monitors.add(monitor)

    def discard(self, monitor: EventLoopMonitor) -> None:
        with self._lock:
            self._monitors.discard(monitor)

    def _running(self) -> list[EventLoopMonitor]:
        with self._lock:
            return list(self._monitors)

    def _observe_max_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(monitor._collect_max(), monitor._attributes) for monitor in self._running()]

    def _observe_blocks(self, options: CallbackOptions) -> Iterator[Observation]:
        for monitor in self._running():
            yield Observation(monitor.blocks, monitor._attributes)


_registry_lock = threading.Lock()
_registry: weakref.WeakKeyDictionary[object, _LoopInstruments] = weakref.WeakKeyDictionary()


def _instruments_for(meter_provider: MeterProvider | None) -> _LoopInstruments:
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    with _registry_lock:
        instruments = _registry.get(provider)
        if instruments is None:
            meter = metrics.get_meter(
                INSTRUMENTATION_NAME, __version__, meter_provider=provider, schema_url=SCHEMA_URL
            )
            instruments = _registry[provider] = _LoopInstruments(meter)
        return instruments
