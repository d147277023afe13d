"""The pure core: no awaits, no I/O, no telemetry, no threading.

Where state is shared between threads (``TierCore``, ``Coherence``), the shells inject the lock.
"""
