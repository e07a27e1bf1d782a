"""Rate limits with a stated guarantee.

**The guarantee.** On the limiter's clock, in any window of T seconds at most
``floor(T * rate) + burst`` units are granted. A caller starts in the same loop step in which its
units are granted, so starts obey the same bound, up to ``slack_s``: a waiter woken late by the
event loop (epoll rounds timeouts up to whole milliseconds; a busy loop adds more) is granted as
of its due time, at most ``slack_s`` in the past, so timer lateness does not eat the rate.
On start times the bound is therefore ``floor((T + slack_s) * rate) + burst``. The default slack,
``min(2 ms, 0.5 / rate)``, is under one interval, so for whole-second windows at whole-number
rates this is exactly ``floor(T * rate) + burst``. ``slack_s=0`` makes the bound exact on start
times for every window, at the cost of the timer's lateness (about 4% of 100/s here).

``RateLimiter`` is a token bucket (capacity ``burst``, refilled at ``rate`` units per second)
kept as one number, the time at which the bucket is full again (GCRA form). Waiters queue in
FIFO order; only the head of the queue may take tokens, so a heavy request is not starved by
light ones behind it. Compare:

- aiolimiter's leaky bucket admits a whole bucket at the start of a window and another as it
  drains: ``AsyncLimiter(100, 1)`` lets about 199 starts into one second.
- a "shared last-timestamp" limiter (sleep until last start + interval, then record the start)
  lets every caller that reads the timestamp before the first one writes it through at once.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol, final, runtime_checkable

from ..core.checks import check_number, check_seconds
from ..core.clock import now as _now
from ..core.settings import testing_state as _testing

__all__ = ["Limiter", "Rate", "RateLimiter", "RateLimiterStatistics"]

# Float tolerance when comparing a bucket level with a weight: 1e-9 of a unit.
_EPS = 1e-9


@final
class Rate:
    """A rate: ``Rate(per_second=10)``, ``Rate(per_minute=600, burst=20)``.

    Args:
        per_second: units per second (give this or ``per_minute``).
        per_minute: units per minute.
        burst: bucket size, the most units that may start at once after a quiet spell. Must be
            at least the largest weight ever acquired. Default 1: starts are evenly spaced.

    Raises:
        ValueError: a non-positive or non-finite rate or burst, or both rates given.
    """

    __slots__ = ("burst", "per_second")

    per_second: float
    burst: float

    def __init__(
        self,
        per_second: float | None = None,
        *,
        per_minute: float | None = None,
        burst: float = 1,
    ) -> None:
        if (per_second is None) == (per_minute is None):
            raise ValueError(
                "give exactly one of 'per_second' and 'per_minute'"
                "\nHINT: ss.Rate(per_second=10) or ss.Rate(per_minute=600)"
            )
        name, value = (
            ("per_second", per_second) if per_second is not None else ("per_minute", per_minute)
        )
        value = check_number(name, value, above=0)
        self.per_second = value if per_second is not None else value / 60.0
        self.burst = check_number("burst", burst, minimum=1)

    def __repr__(self) -> str:
        return f"Rate(per_second={self.per_second:g}, burst={self.burst:g})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rate):
            return NotImplemented
        return (self.per_second, self.burst) == (other.per_second, other.burst)

    def __hash__(self) -> int:
        return hash((self.per_second, self.burst))

    def max_starts(self, window_s: float) -> float:
        """The guarantee: the most units that may start in any window of ``window_s`` seconds."""
        return math.floor(window_s * self.per_second + _EPS) + self.burst


def check_weight(weight: float, rate: Rate) -> None:
    """Raise unless ``0 < weight <= rate.burst``: a request heavier than the bucket could never
    start, so it is refused at once rather than left waiting forever."""
    try:
        ok = 0 < weight <= rate.burst
    except TypeError:  # not a number: the validator names it
        ok = False
    if not ok:
        check_number("weight", weight, above=0)
        raise ValueError(
            f"'weight' must be > 0 and <= burst ({rate.burst:g}), got {weight!r}"
            f"\nHINT: ss.Rate(per_second={rate.per_second:g}, burst={weight:g})"
        )


@runtime_checkable
class Limiter(Protocol):
    """What ``ss.map`` needs from a limiter: an awaitable acquire returning seconds waited."""

    async def acquire(self, weight: float = 1.0) -> float: ...


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimiterStatistics:
    """A snapshot of a ``RateLimiter``."""

    rate: Rate
    acquired: int
    units: float
    waiting: int
    waited_s: float
    available: float


class _Waiter:
    __slots__ = ("cancelled", "future", "weight")

    def __init__(self, future: asyncio.Future[None], weight: float) -> None:
        self.future = future
        self.weight = weight
        self.cancelled = False


@final
class RateLimiter:
    """A FIFO token-bucket limiter that may be shared by many maps and tasks.

    Example::

        limiter = ss.RateLimiter(ss.Rate(per_second=5))
        async with limiter:            # one unit
            await call()
        await limiter.acquire(weight=812)   # e.g. tokens of an LLM request (needs burst >= 812)

    Args:
        rate: the rate and burst.
        slack_s: timer lateness forgiven to a woken waiter (default ``min(2 ms, 0.5 / rate)``;
            see the guarantee in the module's docstring).

    It is not bound to an event loop at construction. Waiters must share one loop at a time;
    waiters left queued by a loop that closed (a module-level limiter across ``asyncio.run``
    calls) are dropped when the next loop's first waiter arrives, so they never hold it up.
    """

    __slots__ = (
        "_acquired",
        "_capacity",
        "_interval",
        "_rate",
        "_slack_s",
        "_tat",
        "_timer",
        "_timer_loop",
        "_units",
        "_waited_s",
        "_waiters",
    )

    def __init__(self, rate: Rate, *, slack_s: float | None = None) -> None:
        if not isinstance(rate, Rate):
            raise TypeError(
                f"'rate' must be a slipstream.Rate, got {type(rate).__name__}"
                "\nHINT: ss.RateLimiter(ss.Rate(per_second=10))"
            )
        if slack_s is None:
            slack_s = min(0.002, 0.5 / rate.per_second)
        slack_s = check_seconds("slack_s", slack_s, allow_zero=True, maximum=1)
        self._rate = rate
        self._slack_s = float(slack_s)
        self._interval = 1.0 / rate.per_second
        self._capacity = rate.burst
        self._tat = -math.inf  # the bucket starts full
        self._waiters: deque[_Waiter] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._acquired = 0
        self._units = 0.0
        self._waited_s = 0.0

    @property
    def rate(self) -> Rate:
        return self._rate

    def _ready_at(self, weight: float) -> float:
        """The earliest time at which ``weight`` units are in the bucket."""
        return self._tat - (self._capacity - weight) * self._interval

    def _take(self, now: float, weight: float) -> None:
        self._tat = max(self._tat, now) + weight * self._interval
        self._acquired += 1
        self._units += weight

    async def acquire(self, weight: float = 1.0) -> float:
        """Wait for ``weight`` units, take them, and return the seconds spent waiting.

        Raises:
            ValueError: ``weight`` is not positive or exceeds the burst (it could never start).
        """
        check_weight(weight, self._rate)
        if _testing.enabled:
            return 0.0
        now = _now()
        if not self._waiters and now + _EPS * self._interval >= self._ready_at(weight):
            self._take(now, weight)
            return 0.0
        return await self._wait(now, weight)

    def try_acquire(self, weight: float = 1.0) -> float:
        """Take ``weight`` units if they are there now, without waiting: admission control for
        a server answering 429. Returns 0.0 when taken, else the seconds until they could be
        (a ``Retry-After``); nothing is taken then. Waiters queued in ``acquire`` go first.

        Raises:
            ValueError: ``weight`` is not positive or exceeds the burst.
        """
        check_weight(weight, self._rate)
        now = _now()
        ready_at = self._ready_at(weight)
        if not self._waiters and now + _EPS * self._interval >= ready_at:
            self._take(now, weight)
            return 0.0
        return max(ready_at - now, self._interval * weight)

    async def _wait(self, start: float, weight: float) -> float:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), weight)
        stale_head = self._drop_dead_head(loop)
        self._waiters.append(waiter)
        if len(self._waiters) == 1 or stale_head:
            self._wake_head(loop)
        try:
            while True:
                await waiter.future
                # We are the head and were told the tokens are there: take them in this step,
                # the same step in which our caller starts.
                now = loop.time()
                ready_at = self._ready_at(weight)
                if now + _EPS * self._interval >= ready_at:
                    # Granted as of its due time, forgiving at most slack_s of timer lateness.
                    self._take(max(ready_at, now - self._slack_s), weight)
                    break
                waiter.future = loop.create_future()  # woken a hair early: wait again
                self._timer = loop.call_at(self._ready_at(weight), self._wake_head, loop)
                self._timer_loop = loop
        except BaseException:
            self._abandon(waiter, loop)
            raise
        self._waiters.popleft()
        self._wake_head(loop)
        waited = now - start
        self._waited_s += waited
        return waited

    def _abandon(self, waiter: _Waiter, loop: asyncio.AbstractEventLoop) -> None:
        """A waiter was cancelled: drop it, and hand the head's turn on if it was the head."""
        waiter.cancelled = True
        if loop.is_closed():  # collected after its loop closed: nothing to hand on from there
            return
        if self._waiters and self._waiters[0] is waiter:
            self._waiters.popleft()
            if self._timer is not None:
                self._timer.cancel()
            self._wake_head(loop)

    def _drop_dead_head(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Drop queued waiters whose event loop closed (an ``asyncio.run`` ended with them
        queued: nothing will ever wake them); True when the head was one of them, or the head's
        timer belongs to another loop, so the new head must be woken from this loop."""
        waiters = self._waiters
        dropped = False
        while waiters and (waiters[0].cancelled or waiters[0].future.get_loop().is_closed()):
            waiters.popleft()
            dropped = True
        if dropped:
            # the dead loop may hold the only references to the others: drop them all
            live = [w for w in waiters if not w.future.get_loop().is_closed()]
            if len(live) != len(waiters):
                self._waiters = waiters = deque(live)
        timer_elsewhere = self._timer is not None and self._timer_loop is not loop
        if dropped or timer_elsewhere:
            owner = self._timer_loop
            if self._timer is not None and owner is not None and not owner.is_closed():
                self._timer.cancel()
            self._timer = None
            return True
        return False

    def _wake_head(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the head waiter now if its tokens are there, else set one timer for it."""
        self._timer = None
        waiters = self._waiters
        while waiters and (waiters[0].cancelled or waiters[0].future.get_loop().is_closed()):
            waiters.popleft()  # cancelled, or left behind by a loop that closed
        if not waiters:
            return
        head = waiters[0]
        ready_at = self._ready_at(head.weight)
        if loop.time() + _EPS * self._interval >= ready_at:
            if not head.future.done():
                head.future.set_result(None)
        else:
            self._timer = loop.call_at(ready_at, self._wake_head, loop)
            self._timer_loop = loop

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def statistics(self) -> RateLimiterStatistics:
        """Counters since creation and the units available now."""
        level = self._capacity - max(0.0, self._tat - _now()) / self._interval
        return RateLimiterStatistics(
            rate=self._rate,
            acquired=self._acquired,
            units=self._units,
            waiting=sum(
                1 for w in self._waiters if not w.cancelled and not w.future.get_loop().is_closed()
            ),
            waited_s=self._waited_s,
            available=max(0.0, level),
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<RateLimiter {self._rate!r} available={s.available:.2f} waiting={s.waiting} "
            f"acquired={s.acquired}>"
        )
