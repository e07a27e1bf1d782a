"""Deployment knobs read from the environment, and the testing switch.

Explicit arguments always win over the environment. Every knob is read at call time, so a
process can change it (tests do) without re-importing anything.

=============================  =======================================  ===========
variable                       meaning                                  default
=============================  =======================================  ===========
SLIPSTREAM_MAX_CONCURRENCY     ``concurrency`` of map/stream            16
SLIPSTREAM_MAX_THREADS         threads for sync functions               32
SLIPSTREAM_TIMEOUT_S           per-call timeout of map/stream           none
SLIPSTREAM_RETRY_ATTEMPTS      attempts when ``retry`` is not given     1 (no retry)
SLIPSTREAM_MAX_PROCESSES       ``offload(kind="process")`` workers      CPU count
SLIPSTREAM_CPU_THREADS         ``offload(kind="cpu")`` threads at once   1
SLIPSTREAM_<NAME>_POOL_SIZE    ``PoolSettings.from_env(NAME)``; also    per pool
                               ``_MAX_OVERFLOW``, ``_RECYCLE_S``,
                               ``_TIMEOUT_S``, ``_PRE_PING``
=============================  =======================================  ===========
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["env_float", "env_int", "testing_state"]


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    """Read a positive integer knob, raising ``ValueError`` naming the variable when malformed."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"environment variable {name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str) -> float | None:
    """Read an optional positive float knob."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"environment variable {name} must be > 0, got {value}")
    return value


@dataclass(slots=True)
class _TestingState:
    """Process-wide switch flipped by ``slipstream.testing``; read on hot paths, so plain fields."""

    enabled: bool = False
    attempts: int = 1


testing_state = _TestingState()
