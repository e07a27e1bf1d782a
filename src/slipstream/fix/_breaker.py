"""A circuit breaker that fails fast while a dependency is down and probes it one call at a time.

States: **closed** (calls pass; failures are counted), **open** (calls fail at once with
``CircuitOpen`` for ``reset_timeout_s``), **half-open** (exactly one probe call is admitted; its
success closes the circuit, its failure re-opens it; everyone else fails fast meanwhile).

It trips on ``failure_threshold`` consecutive failures, or, when ``failure_rate`` is set, when at
least ``min_calls`` calls in the last ``window_s`` seconds failed at that rate or worse.

Unlike pybreaker it holds no lock across the protected call (only around a few field updates),
and unlike purgatory it admits one probe, not every concurrent caller, when half-open. Time comes
from a monotonic clock (the running loop's, or ``clock=``).
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from .._exceptions import CircuitOpen
from .._settings import now as _default_clock
from ._retry import ExceptionFilter, _matcher

__all__ = ["BreakerState", "BreakerStatistics", "CircuitBreaker"]

logger = logging.getLogger("slipstream.breaker")
P = ParamSpec("P")
T = TypeVar("T")
_BUCKETS = 10


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerStatistics:
    """A snapshot of a ``CircuitBreaker``."""

    name: str
    state: BreakerState
    consecutive_failures: int
    window_calls: int
    window_failures: int
    successes: int
    failures: int
    rejected: int
    times_opened: int


StateCallback = Callable[["CircuitBreaker", BreakerState, BreakerState], None]


class CircuitBreaker:
    """Fail fast while a dependency is failing; probe it with one call at a time to recover.

    Args:
        name: shown in errors and logs.
        failure_threshold: consecutive failures that open the circuit.
        failure_rate: optional failure fraction (0-1] over ``window_s`` that opens the circuit,
            once ``min_calls`` calls are in the window.
        window_s: length of the failure-rate window.
        min_calls: calls needed in the window before the rate is judged.
        reset_timeout_s: how long the circuit stays open before one probe is admitted.
        counts: which exceptions count as failures (type, tuple or predicate; default all).
            Others are the caller's own errors: they count as the dependency answering.
        on_state_change: ``callback(breaker, old, new)``, called outside any lock.
        clock: monotonic seconds; default the running loop's clock, else ``time.monotonic``.
        log_transitions: log state changes (open at warning, others at info).

    Use ``async with breaker:``, ``await breaker.call(fn, ...)``, ``breaker.call_sync(fn, ...)``,
    ``@breaker`` on a sync or async function, or pass ``breaker=`` to ``ss.map``.
    """

    def __init__(
        self,
        name: str = "breaker",
        *,
        failure_threshold: int = 5,
        failure_rate: float | None = None,
        window_s: float = 60.0,
        min_calls: int = 20,
        reset_timeout_s: float = 30.0,
        counts: ExceptionFilter = Exception,
        on_state_change: StateCallback | None = None,
        clock: Callable[[], float] | None = None,
        log_transitions: bool = True,
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int):
            raise TypeError("'failure_threshold' must be an int")
        if failure_threshold < 1:
            raise ValueError(f"'failure_threshold' must be >= 1, got {failure_threshold}")
        if failure_rate is not None and not (0 < failure_rate <= 1):
            raise ValueError(f"'failure_rate' must be in (0, 1], got {failure_rate!r}")
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"'window_s' must be > 0, got {window_s!r}")
        if min_calls < 1:
            raise ValueError(f"'min_calls' must be >= 1, got {min_calls}")
        if not (reset_timeout_s >= 0 and math.isfinite(reset_timeout_s)):
            raise ValueError(f"'reset_timeout_s' must be >= 0, got {reset_timeout_s!r}")
        if on_state_change is not None and not callable(on_state_change):
            raise TypeError("'on_state_change' must be callable")
        self.name = name
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.window_s = float(window_s)
        self.min_calls = min_calls
        self.reset_timeout_s = float(reset_timeout_s)
        self._counts = _matcher(counts)
        self._on_state_change = on_state_change
        self._log = log_transitions
        self._clock = clock if clock is not None else _default_clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._consecutive = 0
        self._bucket_s = self.window_s / _BUCKETS
        self._bucket_ids = [-1] * _BUCKETS
        self._bucket_calls = [0] * _BUCKETS
        self._bucket_failures = [0] * _BUCKETS
        self._successes = 0
        self._failures = 0
        self._rejected = 0
        self._times_opened = 0

    @property
    def state(self) -> BreakerState:
        """The state now (an open circuit whose timeout passed reports half-open)."""
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout_s
        ):
            return BreakerState.HALF_OPEN
        return self._state

    # -- the three calls a caller makes around each protected call ----------------------------

    def admit(self) -> None:
        """Let one call through or raise ``CircuitOpen``. Pair with ``record_*`` or ``release``."""
        state = self._state
        if state is BreakerState.CLOSED:
            return
        changed = None
        with self._lock:
            state = self._state
            if state is BreakerState.OPEN:
                remaining = self._opened_at + self.reset_timeout_s - self._clock()
                if remaining > 0:
                    self._rejected += 1
                    raise CircuitOpen(self.name, remaining)
                changed = self._set(BreakerState.HALF_OPEN)
                self._probe_in_flight = True
            elif state is BreakerState.HALF_OPEN:
                if self._probe_in_flight:
                    self._rejected += 1
                    raise CircuitOpen(self.name, 0.0)
                self._probe_in_flight = True
        self._notify(changed)

    def record_success(self) -> None:
        """The admitted call succeeded (or failed with an error that does not count)."""
        with self._lock:
            self._successes += 1
            self._consecutive = 0
            self._add_to_window(failed=False)
            changed = None
            if self._state is BreakerState.HALF_OPEN:
                self._probe_in_flight = False
                changed = self._set(BreakerState.CLOSED)
                self._clear_window()
        self._notify(changed)

    def record_failure(self, exc: BaseException) -> None:
        """The admitted call raised ``exc``; it counts against the circuit if ``counts`` says so."""
        if not self._counts(exc):
            self.record_success()
            return
        changed = None
        with self._lock:
            self._failures += 1
            self._consecutive += 1
            self._add_to_window(failed=True)
            if self._state is BreakerState.HALF_OPEN:
                self._probe_in_flight = False
                changed = self._open()
            elif self._state is BreakerState.CLOSED and self._should_trip():
                changed = self._open()
        self._notify(changed)

    def release(self) -> None:
        """The admitted call ended without an answer (cancelled): free the probe slot."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._probe_in_flight = False

    # -- internals --------------------------------------------------------------------------

    def _should_trip(self) -> bool:
        if self._consecutive >= self.failure_threshold:
            return True
        if self.failure_rate is None:
            return False
        calls, failures = self._window_counts()
        return calls >= self.min_calls and failures >= self.failure_rate * calls

    def _open(self) -> tuple[BreakerState, BreakerState] | None:
        self._opened_at = self._clock()
        self._times_opened += 1
        return self._set(BreakerState.OPEN)

    def _set(self, new: BreakerState) -> tuple[BreakerState, BreakerState] | None:
        old, self._state = self._state, new
        return (old, new) if old is not new else None

    def _notify(self, changed: tuple[BreakerState, BreakerState] | None) -> None:
        if changed is None:
            return
        old, new = changed
        if self._log:
            log = logger.warning if new is BreakerState.OPEN else logger.info
            log("circuit %r: %s -> %s", self.name, old.value, new.value)
        if self._on_state_change is not None:
            self._on_state_change(self, old, new)

    def _add_to_window(self, *, failed: bool) -> None:
        if self.failure_rate is None:
            return
        bucket = int(self._clock() // self._bucket_s)
        slot = bucket % _BUCKETS
        if self._bucket_ids[slot] != bucket:
            self._bucket_ids[slot] = bucket
            self._bucket_calls[slot] = 0
            self._bucket_failures[slot] = 0
        self._bucket_calls[slot] += 1
        self._bucket_failures[slot] += failed

    def _window_counts(self) -> tuple[int, int]:
        oldest = int(self._clock() // self._bucket_s) - _BUCKETS + 1
        calls = failures = 0
        for i in range(_BUCKETS):
            if self._bucket_ids[i] >= oldest:
                calls += self._bucket_calls[i]
                failures += self._bucket_failures[i]
        return calls, failures

    def _clear_window(self) -> None:
        self._bucket_ids = [-1] * _BUCKETS

    # -- ways to use it ---------------------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` under the breaker."""
        self.admit()
        try:
            value = await fn(*args, **kwargs)
        except Exception as exc:
            self.record_failure(exc)
            raise
        except BaseException:
            self.release()
            raise
        self.record_success()
        return value

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` under the breaker (thread-safe)."""
        self.admit()
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            self.record_failure(exc)
            raise
        except BaseException:
            self.release()
            raise
        self.record_success()
        return value

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Use the breaker as a decorator on a sync or async function."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call(fn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]  # same signature, awaited

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call_sync(fn, *args, **kwargs)

        return sync_wrapper

    async def __aenter__(self) -> CircuitBreaker:
        self.admit()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.record_success()
        elif isinstance(exc, Exception):
            self.record_failure(exc)
        else:
            self.release()

    def statistics(self) -> BreakerStatistics:
        """Counters since creation and the state now."""
        with self._lock:
            calls, failures = self._window_counts()
            return BreakerStatistics(
                name=self.name,
                state=self.state,
                consecutive_failures=self._consecutive,
                window_calls=calls,
                window_failures=failures,
                successes=self._successes,
                failures=self._failures,
                rejected=self._rejected,
                times_opened=self._times_opened,
            )

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.name!r} state={self.state.value} "
            f"consecutive_failures={self._consecutive} opened={self._times_opened}>"
        )
