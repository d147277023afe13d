"""Benchmarks for otel-cache; not part of the installed package.

``python -m benchmarks.l1`` runs the L1 micro-benchmark (see ``docs/benchmarks.md``).
"""
