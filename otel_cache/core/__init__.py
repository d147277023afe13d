"""The pure core: no locks, no awaits, no I/O, no telemetry."""
