"""The live sync-vs-async demo: one graph-traversal service written in both designs, and its load.

Its own distribution (``demo/pyproject.toml``: ``pip install -e ./demo`` from a clone),
not part of the library's wheel; ``otel-cache demo`` (:mod:`otel_cache_demo.cli`) runs it
all. Two services, one load generator::

    python -m otel_cache_demo.service --mode sync  --port 8001     # ADR-014's legacy design
    python -m otel_cache_demo.service --mode async --port 8002     # ADR-014's design
    python -m otel_cache_demo.loadgen --url http://127.0.0.1:8001 --concurrency 32 --duration 30
    python -m otel_cache_demo.loadgen --url http://127.0.0.1:8002 --concurrency 32 --duration 30

==================  ============================================================================
module              what it holds
==================  ============================================================================
``graph``           the domain: a seeded 5,000-node service graph, ``TraversalQuery``, the
                    traversal a cache miss pays for (pure)
``catalogue``       the queries clients ask (most popular first) and the Zipf request stream
                    (pure, deterministic)
``lookups``         how each design answers a query through the managers: ``SyncLookup``,
                    ``AsyncLookup``
``schema``          the GraphQL API (strawberry), the ADR's *before* and *after* resolvers
``telemetry``       the service's OpenTelemetry SDK: Prometheus, and OTLP when asked
``service``         ``create_app(mode)`` and ``python -m otel_cache_demo.service``
``loadgen``         ``run_load(url, LoadSpec(...))`` and ``python -m otel_cache_demo.loadgen``
``delay_proxy``     a TCP proxy that adds a round trip between the services and Redis
``runner``          ``run_demo(options, view)``: both services, alternating rounds, the figures
``live``            the live terminal view, the plain-lines view and the summary table
``report``          the report folder: markdown, PNG charts, JSON
``cli``             ``otel-cache demo``'s options
==================  ============================================================================

Nothing is imported here: ``import otel_cache_demo.loadgen`` does not pull in FastAPI.
"""

__all__: list[str] = []
