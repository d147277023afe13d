"""Integrations with web frameworks, one subpackage each, imported explicitly.

``otel_cache.integrations.fastapi``
    lifespan, dependencies, ``@cached`` endpoints and ``instrument_app`` for FastAPI
    (``pip install 'otel-cache[fastapi]'``).

Nothing is imported here: each integration needs its framework, which is optional.
"""
