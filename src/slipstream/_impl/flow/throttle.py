"""What an adaptive limiter learns from an exception, and the checks its arguments share."""

from __future__ import annotations

from ..core.checks import check_number
from ..core.transient import _status_of
from .retry_policy import retry_after_s

__all__ = ["check_bounds", "throttle_of"]

_THROTTLE_STATUS = frozenset({429, 503})


def throttle_of(exc: BaseException | None) -> tuple[bool, float | None]:
    """Whether ``exc`` says "too fast" (HTTP 429 or 503, or an explicit ``retry_after_s``
    attribute), and the delay the server asked for (``Retry-After``), if any."""
    if exc is None:
        return False, None
    explicit = getattr(exc, "retry_after_s", None)
    has_explicit = isinstance(explicit, int | float) and not isinstance(explicit, bool)
    if has_explicit or _status_of(exc) in _THROTTLE_STATUS:
        return True, retry_after_s(exc)
    return False, None


def check_bounds(
    initial_per_s: float, min_per_s: float, max_per_s: float
) -> tuple[float, float, float]:
    """The three rates, checked: positive, ``min_per_s <= initial_per_s <= max_per_s``."""
    lo = check_number("min_per_s", min_per_s, above=0)
    hi = check_number("max_per_s", max_per_s, above=0)
    if hi < lo:
        raise ValueError(f"'max_per_s' must be >= min_per_s ({lo:g}), got {max_per_s!r}")
    first = check_number("initial_per_s", initial_per_s, minimum=lo, maximum=hi)
    return first, lo, hi
