"""What an adaptive limiter learns from an exception, and the checks its arguments share."""

from __future__ import annotations

from typing import NamedTuple

from ..core.checks import check_number, check_seconds
from ..core.transient import _status_of
from .retry_policy import retry_after_s

__all__ = ["AdaptiveOptions", "check_options", "throttle_of"]

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


class AdaptiveOptions(NamedTuple):
    """The checked settings of an adaptive rate, in-process or in Redis."""

    initial_per_s: float
    min_per_s: float
    max_per_s: float
    increase_per_s: float
    decrease: float
    burst: float
    max_retry_after_s: float
    slow_start: bool


def check_options(
    initial_per_s: float,
    min_per_s: float,
    max_per_s: float,
    increase_per_s: float,
    decrease: float,
    burst: float,
    max_retry_after_s: float,
    slow_start: bool,
) -> AdaptiveOptions:
    """Every setting checked (an error names its parameter): the rates positive with
    ``min_per_s <= initial_per_s <= max_per_s``, ``0 < decrease < 1``, ``burst >= 1``."""
    lo = check_number("min_per_s", min_per_s, above=0)
    hi = check_number("max_per_s", max_per_s, above=0)
    if hi < lo:
        raise ValueError(f"'max_per_s' must be >= min_per_s ({lo:g}), got {max_per_s!r}")
    first = check_number("initial_per_s", initial_per_s, minimum=lo, maximum=hi)
    if not isinstance(slow_start, bool):
        raise TypeError(f"'slow_start' must be a bool, got {type(slow_start).__name__}")
    return AdaptiveOptions(
        initial_per_s=first,
        min_per_s=lo,
        max_per_s=hi,
        increase_per_s=check_number("increase_per_s", increase_per_s, minimum=0),
        decrease=check_number("decrease", decrease, above=0, below=1),
        burst=check_number("burst", burst, minimum=1),
        max_retry_after_s=check_seconds("max_retry_after_s", max_retry_after_s),
        slow_start=slow_start,
    )
