"""A circuit breaker that fails fast while a dependency is down and probes it one call at a time.

States: **closed** (calls pass; failures are counted), **open** (calls fail at once with
``CircuitOpen`` for ``reset_timeout_s``), **half-open** (exactly one probe call is admitted; its
success closes the circuit, its failure re-opens it; everyone else fails fast meanwhile).

It trips on ``failure_threshold`` consecutive failures, or, when ``failure_rate`` is set, when at
least ``min_calls`` calls in the last ``window_s`` seconds failed at that rate or worse.

It holds no lock across the call (pybreaker does) and admits one probe when half-open, not every
caller (purgatory does). Time: the running loop's monotonic clock, or ``clock=``.

**Only the probe decides the half-open state.** Each admission's ticket is the breaker's
generation then (it grows at every state change and probe admitted). A stale ticket's result (a
call admitted before the circuit opened, a released probe) is counted but changes no state, so
at most one probe is ever in flight. A refusal is a new ``CircuitOpen`` each time, never shared.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, final

from ..core.callables import kind_of
from ..core.checks import check_callable, check_fraction, check_int, check_seconds
from ..core.clock import now as _default_clock
from ..core.errors import CircuitOpen
from .filters import ExceptionFilter, matcher

__all__ = ["BreakerState", "BreakerStatistics", "CircuitBreaker"]

logger = logging.getLogger("slipstream.breaker")
P = ParamSpec("P")
T = TypeVar("T")
_BUCKETS = 10


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def _refusal(name: str, retry_after_s: float) -> CircuitOpen:
    """``CircuitOpen(name, retry_after_s)`` without its ``super().__init__`` call (most of its
    ~450 ns): the same args and fields; tests/flow/test_breaker_reject.py keeps them equal."""
    exc = BaseException.__new__(CircuitOpen, name, retry_after_s)
    exc.name = name
    exc.retry_after_s = retry_after_s
    return exc


# Read on every admission: a module global costs ~15 ns, a member off the enum class ~75 ns.
_CLOSED, _OPEN = BreakerState.CLOSED, BreakerState.OPEN


@final
@dataclass(frozen=True, slots=True, kw_only=True)
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


@final
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
        failure_threshold = check_int("failure_threshold", failure_threshold, minimum=1)
        failure_rate = check_fraction("failure_rate", failure_rate, allow_none=True)
        window_s = check_seconds("window_s", window_s)
        min_calls = check_int("min_calls", min_calls, minimum=1)
        reset_timeout_s = check_seconds("reset_timeout_s", reset_timeout_s, allow_zero=True)
        check_callable("on_state_change", on_state_change, allow_none=True)
        check_callable("clock", clock, allow_none=True)
        if not isinstance(name, str):
            raise TypeError(f"'name' must be a str, got {type(name).__name__}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.window_s = float(window_s)
        self.min_calls = min_calls
        self.reset_timeout_s = float(reset_timeout_s)
        self._counts = matcher(counts)
        self._on_state_change = on_state_change
        self._log = log_transitions
        self._clock = clock if clock is not None else _default_clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._gen = 0  # grows at every state change and every probe admitted: see the docstring
        self._probe = -1  # the ticket of the probe in flight
        self._tickets: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
            f"slipstream-breaker-{id(self)}", default=()
        )  # for `async with breaker:` (one stack per task)
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

    def admit(self) -> int:
        """Let one call through or raise ``CircuitOpen``. Returns the call's ticket: pass it to
        exactly one of ``record_success``, ``record_failure`` or ``release``."""
        if self._state is _CLOSED:
            return self._gen
        ticket = self.try_admit()
        if isinstance(ticket, CircuitOpen):
            raise ticket
        return ticket

    def try_admit(self) -> int | CircuitOpen:
        """``admit`` returning its refusal: the ticket, or a new, unraised ``CircuitOpen`` (no
        traceback) with its own ``retry_after_s``. For ``ss.map``, which makes it the outcome:
        no raise/catch, and one item's error is never another's (notes, tracebacks)."""
        if self._state is _CLOSED:
            return self._gen
        changed = None
        with self._lock:
            state = self._state
            if state is _CLOSED:  # closed by another thread meanwhile
                return self._gen
            if state is _OPEN:
                remaining = self._opened_at + self.reset_timeout_s - self._clock()
                if remaining > 0:
                    self._rejected += 1
                    return _refusal(self.name, remaining)
                changed = self._set(BreakerState.HALF_OPEN)
            elif self._probe_in_flight:
                self._rejected += 1
                return _refusal(self.name, 0.0)
            self._gen += 1
            self._probe = ticket = self._gen
            self._probe_in_flight = True
        self._notify(changed)
        return ticket

    def _is_probe(self, ticket: int) -> bool:
        return self._probe_in_flight and ticket == self._probe

    def record_success(self, ticket: int) -> None:
        """The call admitted with ``ticket`` succeeded (or raised an error that does not
        count). Only a current ticket changes the state."""
        changed = None
        with self._lock:
            self._successes += 1
            if self._state is BreakerState.CLOSED:
                if ticket == self._gen:
                    self._consecutive = 0
                    self._add_to_window(failed=False)
            elif self._state is BreakerState.HALF_OPEN and self._is_probe(ticket):
                self._probe_in_flight = False
                self._consecutive = 0
                changed = self._set(BreakerState.CLOSED)
                self._bucket_ids = [-1] * _BUCKETS  # clear the failure-rate window
        self._notify(changed)

    def record_failure(self, ticket: int, exc: BaseException) -> None:
        """The call admitted with ``ticket`` raised ``exc``; it counts against the circuit if
        ``counts`` says so and the ticket is current."""
        if not self._counts(exc):
            self.record_success(ticket)
            return
        changed = None
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.CLOSED:
                if ticket == self._gen:
                    self._consecutive += 1
                    self._add_to_window(failed=True)
                    if self._should_trip():
                        changed = self._open()
            elif self._state is BreakerState.HALF_OPEN and self._is_probe(ticket):
                self._probe_in_flight = False
                self._consecutive += 1
                changed = self._open()
        self._notify(changed)

    def _settle(self, ticket: int, exc: BaseException | None) -> None:
        """End ``ticket``'s call by what it raised: None ok, Exception failure, else release."""
        if exc is None:
            self.record_success(ticket)
        elif isinstance(exc, Exception):
            self.record_failure(ticket, exc)
        else:
            self.release(ticket)

    def release(self, ticket: int) -> None:
        """``ticket``'s call ended unanswered (cancelled): if it was the probe, free the slot."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN and self._is_probe(ticket):
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
        if old is new:
            return None
        self._gen += 1  # every ticket of the old state is stale from here on
        return old, new

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

    # -- ways to use it ---------------------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` under the breaker."""
        ticket = self.admit()
        try:
            value = await fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        self.record_success(ticket)
        return value

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` under the breaker (thread-safe)."""
        ticket = self.admit()
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        self.record_success(ticket)
        return value

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Use the breaker as a decorator on a sync or async function.

        Raises:
            TypeError: ``fn`` is a (async) generator function: nothing to guard in its call.
        """
        check_callable("fn", fn)
        kind = kind_of(fn)
        if kind in ("generator", "async_generator"):
            raise TypeError(
                f"a circuit breaker cannot decorate the {kind.replace('_', ' ')} function "
                f"{getattr(fn, '__qualname__', fn)!r}: calling it returns before its body runs, "
                "so no call would be guarded"
                "\nHINT: guard the iteration instead: 'async with breaker: async for x in "
                "gen(): ...', or decorate the function that opens the stream"
            )
        if kind == "async":
            afn: Any = fn

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call(afn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]  # same signature, awaited

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call_sync(fn, *args, **kwargs)

        return sync_wrapper

    async def __aenter__(self) -> CircuitBreaker:
        ticket = self.admit()
        self._tickets.set((*self._tickets.get(), ticket))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack = self._tickets.get()
        ticket, rest = stack[-1], stack[:-1]
        self._tickets.set(rest)
        exc = exc_info[1]
        self._settle(ticket, exc if isinstance(exc, BaseException) else None)

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
