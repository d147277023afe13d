"""TTL validation and expiry times, shared by every level."""

from __future__ import annotations

import math

from otel_cache.errors import InvalidTTLError

__all__ = ["MAX_TTL", "NO_EXPIRY", "expiry_time", "resolve_ttl", "validate_ttl"]

NO_EXPIRY = math.inf
"""Pass as ``ttl`` to keep an entry until it is evicted, whatever the default TTL."""

MAX_TTL = 100 * 365 * 86_400.0
"""The longest finite TTL (100 years): beyond it Redis refuses PX and deadlines overflow."""


def validate_ttl(ttl: object, *, name: str = "ttl") -> float | None:
    """Return ``ttl`` as seconds (``None`` stays ``None``), or raise :class:`InvalidTTLError`.

    A TTL is a positive number of seconds up to :data:`MAX_TTL`, or ``math.inf``
    for "never expires".
    ``bool`` is refused although it is an ``int``: ``ttl=True`` is a bug.
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidTTLError(f"{name} must be a number of seconds or None, not {type(ttl).__name__}")
    seconds = float(ttl)
    if math.isnan(seconds) or seconds <= 0:
        raise InvalidTTLError(f"{name} must be positive, got {ttl!r}")
    if MAX_TTL < seconds < math.inf:
        raise InvalidTTLError(f"{name} must be at most {MAX_TTL:.0f} s (100 years) or math.inf, got {ttl!r}")
    return seconds


def resolve_ttl(ttl: object, default: float | None) -> float | None:
    """The effective TTL of a put: ``ttl`` if given, else ``default``; ``None`` means no expiry."""
    seconds = validate_ttl(ttl) if ttl is not None else default
    if seconds is None or seconds == NO_EXPIRY:
        return None
    return seconds


def expiry_time(ttl: float | None, now: float) -> float:
    """Monotonic deadline of an entry; ``0.0`` means "never" (cheap to test on the hit path)."""
    return now + ttl if ttl is not None else 0.0
