"""OpenTelemetry for otel_cache: names, cache telemetry, the event-loop monitor, the instrumentor."""
