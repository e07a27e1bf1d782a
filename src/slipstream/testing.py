"""Helpers for testing code that uses slipstream: virtual time and a switch for waits.

- ``run(main(), virtual_clock=True)`` runs a coroutine on an event loop whose clock jumps
  forward whenever every task is waiting on a timer, so an hour of backoff and rate limiting
  takes milliseconds and is exactly reproducible (like trio's ``MockClock(autojump_threshold=0)``).
- ``set_testing(True, attempts=1)`` / ``with no_waits():`` turn rate-limit waits and retry
  backoff off and cap retry attempts, process-wide, for tests of code that uses slipstream (as
  stamina's ``set_testing``).
- ``FakeClock`` is a manual monotonic clock for sync primitives (``CircuitBreaker(clock=...)``).
- ``async with loop_never_blocked(0.05):`` fails a test whose code blocks the event loop longer
  than 50 ms, naming the blocking line.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar, final

from ._impl.core import clock as _clock
from ._impl.core.checks import check_int, check_seconds
from ._impl.core.settings import testing_state

__all__ = [
    "FakeClock",
    "VirtualClockLoop",
    "loop_never_blocked",
    "no_waits",
    "run",
    "set_testing",
]

_T = TypeVar("_T")


def set_testing(enabled: bool, *, attempts: int = 1) -> None:
    """Turn test mode on or off: no rate-limit waits, zero backoff, at most ``attempts`` tries."""
    attempts = check_int("attempts", attempts, minimum=1)
    testing_state.enabled = bool(enabled)
    testing_state.attempts = attempts


@contextmanager
def no_waits(*, attempts: int = 1) -> Iterator[None]:
    """Test mode for the duration of a ``with`` block, restoring the previous mode after."""
    previous = (testing_state.enabled, testing_state.attempts)
    set_testing(True, attempts=attempts)
    try:
        yield
    finally:
        testing_state.enabled, testing_state.attempts = previous


@final
class FakeClock:
    """A monotonic clock that moves only when told: ``clock.advance(2.5)``."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        seconds = check_seconds("seconds", seconds, allow_zero=True)
        self._now += seconds


class _JumpingSelector(selectors.DefaultSelector):
    """Polls without blocking; when nothing is ready and the loop would sleep until a timer,
    moves the loop's virtual clock to that timer instead."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        events: list[tuple[Any, int]] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer pending: only I/O or a thread can wake us
            return super().select(None)
        self._loop.advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: ``time()`` starts at 0 and jumps to the next timer
    whenever no callback is ready and no I/O is pending. Real I/O still works; work in threads
    takes no virtual time while a timer is pending."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds


def run(
    main: Coroutine[Any, Any, _T], *, virtual_clock: bool = False, debug: bool | None = None
) -> _T:
    """``asyncio.run`` with an optional virtual clock (which also drives cache expiry)."""
    if not virtual_clock:
        with asyncio.Runner(debug=debug) as runner:
            return runner.run(main)
    with asyncio.Runner(debug=debug, loop_factory=VirtualClockLoop) as runner:
        previous = _clock.clock
        _clock.clock = runner.get_loop().time  # the cache's expiry clock follows the loop
        try:
            return runner.run(main)
        finally:
            _clock.clock = previous


@asynccontextmanager
async def loop_never_blocked(max_s: float = 0.05) -> AsyncIterator[Any]:
    """Fail (``AssertionError``) if the event loop is blocked longer than ``max_s`` inside the
    block; the message names the blocking line of your code (and the library call it was
    inside) or, when busy threads starved the loop, those threads. Real time: keep it short."""
    from ._impl.loop.watch import BlockReport, LoopWatch

    max_s = check_seconds("max_s", max_s)
    reports: list[BlockReport] = []
    watch = LoopWatch(slow_s=max_s, interval_s=max_s / 4, on_block=reports.append)
    async with watch:
        yield watch
    lag = watch.statistics().lag_max_s
    if reports or lag > max_s:
        where = f": {reports[0]}" if reports else ""
        raise AssertionError(
            f"the event loop was blocked for {lag * 1000:.0f} ms (limit {max_s * 1000:.0f} ms)"
            f"{where}"
        )
