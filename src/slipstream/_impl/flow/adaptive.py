"""A rate limiter that finds the server's rate by itself: AIMD on a token bucket.

``AdaptiveRate`` is a FIFO token bucket (the GCRA form of ``RateLimiter``) whose rate moves with
what the server answers, in the spirit of TCP congestion control and AWS's adaptive retry mode:

- **slow start**: until the first throttle, every unit that succeeds adds one unit per second,
  so the rate doubles with each second's worth of successes;
- **additive increase**: after that, every unit that succeeds adds ``increase_per_s / rate``,
  so a second's worth of successes adds ``increase_per_s``;
- **multiplicative decrease**: a throttle (an exception carrying HTTP 429 or 503, or a
  ``retry_after_s``) multiplies the rate by ``decrease``, once per round: a throttle of a
  request granted before the last decrease was sent at the old rate and does not cut again
  (TCP halves once per window, not once per lost packet);
- **Retry-After**: a throttle that says when pauses every caller until then (at most
  ``max_retry_after_s``); nothing increases while paused;
- the rate stays within ``[min_per_s, max_per_s]``, and increases only while the bucket is the
  bottleneck (a caller waited, or found it not full, in the last ``max(1 s, 2 / rate)``): a
  client sending slower than its rate learns nothing about the server from a success.

**What it converges to.** Against a server that admits L requests a second with a burst of b,
the rate is a sawtooth: it climbs at ``a = increase_per_s`` per second from ``decrease * P`` to
L, then past L while the server's burst absorbs the excess (``sqrt(2 b / a)`` seconds) up to
the peak ``P = L + sqrt(2 a b)``, where the first 429 cuts it. Successes follow ``min(rate,
L)``, so the goodput over a cycle is at least ``(1 + decrease) / 2`` of L (the bare AIMD
sawtooth, b = 0) and is
``G = (t_up * (L + decrease * P) / 2 + t_over * L) / (L * (t_up + t_over))`` with ``t_up = (L -
decrease * P) / a`` and ``t_over = sqrt(2 b / a)``. For L = 25/s, b = 5, a = 1, decrease = 0.7:
P = 28.2, a cycle of 8.5 s, G = 0.93, one throttle per ~200 successes (plus one per request
in flight when it lands). Slow start reaches L from ``initial_per_s`` in ``log2(L /
initial_per_s)`` seconds; an initial rate above L falls by ``decrease`` per round trip.

``ss.map`` / ``ss.stream`` report each attempt's outcome to ``feedback`` themselves; by hand,
``async with limiter:`` does it, or call ``limiter.feedback(exc_or_None)`` after ``acquire``.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import final

from ..core.checks import check_number
from ..core.clock import now as _now
from ..core.settings import testing_state as _testing
from .rate import _Waiter  # the same FIFO waiter as the fixed-rate bucket
from .throttle import check_options, throttle_of

__all__ = ["AdaptiveRate", "AdaptiveRateStatistics", "throttle_of"]

_EPS = 1e-9


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptiveRateStatistics:
    """A snapshot of an ``AdaptiveRate``: its current rate and what moved it."""

    rate_per_s: float
    slow_start: bool
    acquired: int
    units: float
    waiting: int
    waited_s: float
    available: float
    successes: int
    throttles: int
    decreases: int
    paused_s: float


@final
class AdaptiveRate:
    """A rate limiter that learns the server's rate from its answers (see the module).

    Example::

        limiter = ss.AdaptiveRate(initial_per_s=10)
        a = await ss.map(fetch, urls, rate=limiter, retry=ss.Retry(attempts=6))
        b = await ss.map(fetch, more_urls, rate=limiter)   # shares what the first one learnt
        per_key = limiter.for_key(api_key)                 # its own rate, same settings

    Args:
        initial_per_s: the rate to start at (slow start doubles it each second until the
            first throttle).
        min_per_s: the floor; no throttle takes the rate below it.
        max_per_s: the ceiling; no success takes the rate above it.
        increase_per_s: rate added per second's worth of successes, after slow start.
        decrease: factor applied to the rate on a throttle (0 < decrease < 1).
        burst: bucket size, the most units that may start at once after a quiet spell.
        max_retry_after_s: cap on a pause a server's ``Retry-After`` asks for.
        slow_start: double per second until the first throttle (default), or climb
            additively from the start.

    Raises:
        ValueError: a bound out of range, ``initial_per_s`` outside ``[min_per_s, max_per_s]``,
            or ``decrease`` not strictly between 0 and 1; each names its parameter.

    Not bound to an event loop; its waiters must share one loop at a time. Not thread-safe.
    """

    __slots__ = (
        "_acquired",
        "_capacity",
        "_children",
        "_decreases",
        "_epoch",
        "_granted",
        "_interval",
        "_limited_at",
        "_paused_until",
        "_rate",
        "_slow",
        "_successes",
        "_tat",
        "_throttles",
        "_timer",
        "_timer_loop",
        "_units",
        "_waited_s",
        "_waiters",
        "burst",
        "decrease",
        "increase_per_s",
        "initial_per_s",
        "max_per_s",
        "max_retry_after_s",
        "min_per_s",
        "slow_start",
    )

    def __init__(
        self,
        initial_per_s: float = 10.0,
        *,
        min_per_s: float = 0.5,
        max_per_s: float = 10_000.0,
        increase_per_s: float = 1.0,
        decrease: float = 0.7,
        burst: float = 1.0,
        max_retry_after_s: float = 60.0,
        slow_start: bool = True,
    ) -> None:
        o = check_options(
            initial_per_s,
            min_per_s,
            max_per_s,
            increase_per_s,
            decrease,
            burst,
            max_retry_after_s,
            slow_start,
        )
        first = o.initial_per_s
        self.initial_per_s, self.min_per_s, self.max_per_s = first, o.min_per_s, o.max_per_s
        self.increase_per_s, self.decrease, self.burst = o.increase_per_s, o.decrease, o.burst
        self.max_retry_after_s, self.slow_start = o.max_retry_after_s, o.slow_start
        self._rate = first
        self._interval = 1.0 / first
        self._capacity = self.burst
        self._slow = slow_start
        self._tat = -math.inf  # the bucket starts full
        self._paused_until = -math.inf
        self._limited_at = -math.inf
        self._epoch = 0  # decreases so far: a throttle of an older epoch does not cut again
        self._granted: ContextVar[tuple[int, float] | None] = ContextVar("granted", default=None)
        self._waiters: deque[_Waiter] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._children: dict[Hashable, AdaptiveRate] = {}
        self._acquired = self._successes = self._throttles = self._decreases = 0
        self._units = self._waited_s = 0.0

    @property
    def rate_per_s(self) -> float:
        """The current rate."""
        return self._rate

    def for_key(self, key: Hashable) -> AdaptiveRate:
        """The limiter of ``key`` (an API key, a host): same settings, its own rate, created
        on first use and kept."""
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = AdaptiveRate(
                self.initial_per_s,
                min_per_s=self.min_per_s,
                max_per_s=self.max_per_s,
                increase_per_s=self.increase_per_s,
                decrease=self.decrease,
                burst=self.burst,
                max_retry_after_s=self.max_retry_after_s,
                slow_start=self.slow_start,
            )
        return child

    # -- the bucket ---------------------------------------------------------------------------

    def _check_weight(self, weight: float) -> None:
        try:
            ok = 0 < weight <= self._capacity
        except TypeError:
            ok = False
        if not ok:
            check_number("weight", weight, above=0)
            raise ValueError(f"'weight' must be > 0 and <= burst ({self.burst:g}), got {weight!r}")

    def _ready_at(self, weight: float) -> float:
        return max(self._tat - (self._capacity - weight) * self._interval, self._paused_until)

    def _take(self, now: float, weight: float, waited: bool) -> None:
        if waited or self._tat > now + _EPS:
            self._limited_at = now  # waited, or found it not full: the bucket is the bottleneck
        self._tat = max(self._tat, now) + weight * self._interval
        self._acquired += 1
        self._units += weight
        self._granted.set((self._epoch, weight))

    async def acquire(self, weight: float = 1.0) -> float:
        """Wait for ``weight`` units at the current rate, take them, return the seconds waited.

        Raises:
            ValueError: ``weight`` is not positive or exceeds the burst.
        """
        self._check_weight(weight)
        if _testing.enabled:
            return 0.0
        now = _now()
        if not self._waiters and now + _EPS >= self._ready_at(weight):
            self._take(now, weight, False)
            return 0.0
        return await self._wait(now, weight)

    async def _wait(self, start: float, weight: float) -> float:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), weight)
        waiters = self._waiters
        while waiters and waiters[0].future.get_loop().is_closed():
            waiters.popleft()  # left behind by an event loop that closed
        waiters.append(waiter)
        if len(waiters) == 1 or self._timer_loop is not loop:
            self._rearm(loop)
        try:
            while True:
                await waiter.future
                now = loop.time()
                ready_at = self._ready_at(weight)
                if now + _EPS >= ready_at:
                    self._take(max(ready_at, now - 0.002), weight, True)
                    break
                waiter.future = loop.create_future()  # woken early (the rate fell): again
                self._rearm(loop)
        except BaseException:
            waiter.cancelled = True
            if waiters and waiters[0] is waiter and not loop.is_closed():
                waiters.popleft()
                self._rearm(loop)
            raise
        waiters.popleft()
        self._rearm(loop)
        waited = now - start
        self._waited_s += waited
        return waited

    def _rearm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the head waiter if its units are there, else set one timer for it."""
        if self._timer is not None:
            owner = self._timer_loop
            if owner is not None and not owner.is_closed():
                self._timer.cancel()
            self._timer = None
        waiters = self._waiters
        while waiters and (waiters[0].cancelled or waiters[0].future.get_loop().is_closed()):
            waiters.popleft()
        if not waiters:
            return
        head = waiters[0]
        ready_at = self._ready_at(head.weight)
        if loop.time() + _EPS >= ready_at:
            if not head.future.done():
                head.future.set_result(None)
        else:
            self._timer = loop.call_at(ready_at, self._rearm, loop)
            self._timer_loop = loop

    def _set_rate(self, rate: float, now: float) -> None:
        """Move to ``rate``, keeping the units owed (not the seconds) in the bucket."""
        if self._tat > now:
            self._tat = now + (self._tat - now) * (self._rate / rate)
        self._rate = rate
        self._interval = 1.0 / rate
        loop = self._timer_loop
        if self._timer is not None and loop is not None and not loop.is_closed():
            self._rearm(loop)  # the head's due time moved

    # -- feedback -----------------------------------------------------------------------------

    def feedback(self, error: BaseException | None) -> None:
        """Report how the call after this task's last ``acquire`` went: None for a success,
        else its exception. A throttle (429/503, ``retry_after_s``) cuts the rate and honours
        ``Retry-After``; other errors change nothing. ``ss.map`` calls this itself."""
        granted = self._granted.get()
        if granted is not None:
            self._granted.set(None)  # one report per grant
        if error is None:
            self._on_success(granted)
            return
        throttled, delay = throttle_of(error)
        if throttled:
            self._on_throttle(granted, delay)

    def _on_success(self, granted: tuple[int, float] | None) -> None:
        self._successes += 1
        now = _now()
        if now < self._paused_until:
            return
        if granted is not None and granted[0] != self._epoch:
            return  # sent at the rate before the last cut
        if now - self._limited_at > max(1.0, 2.0 * self._interval):
            return  # not sending at the rate: a success says nothing about a higher one
        units = 1.0 if granted is None else granted[1]
        step = units if self._slow else self.increase_per_s * units / self._rate
        new = min(self.max_per_s, self._rate + step)
        if new != self._rate:
            self._set_rate(new, now)

    def _on_throttle(self, granted: tuple[int, float] | None, delay: float | None) -> None:
        self._throttles += 1
        now = _now()
        if delay is not None and delay > 0:
            until = now + min(delay, self.max_retry_after_s)
            if until > self._paused_until:
                self._paused_until = until
                loop = self._timer_loop
                if self._timer is not None and loop is not None and not loop.is_closed():
                    self._rearm(loop)
        if granted is not None and granted[0] != self._epoch:
            return  # sent before the last cut: that cut already answered it
        self._epoch += 1
        self._decreases += 1
        self._slow = False
        self._set_rate(max(self.min_per_s, self._rate * self.decrease), now)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, Exception):
            self.feedback(exc)

    def statistics(self) -> AdaptiveRateStatistics:
        """The current rate, counters since creation, the units in the bucket now (never
        negative) and the pause left."""
        now = _now()
        return AdaptiveRateStatistics(
            rate_per_s=self._rate,
            slow_start=self._slow,
            acquired=self._acquired,
            units=self._units,
            waiting=sum(
                1 for w in self._waiters if not w.cancelled and not w.future.get_loop().is_closed()
            ),
            waited_s=self._waited_s,
            available=self._capacity - max(0.0, self._tat - now) / self._interval,
            successes=self._successes,
            throttles=self._throttles,
            decreases=self._decreases,
            paused_s=max(0.0, self._paused_until - now),
        )

    def __repr__(self) -> str:
        return (
            f"<AdaptiveRate rate_per_s={self._rate:.3g} min_per_s={self.min_per_s:g} "
            f"max_per_s={self.max_per_s:g} throttles={self._throttles} "
            f"acquired={self._acquired}>"
        )
