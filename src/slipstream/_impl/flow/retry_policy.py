"""The retry policy: exponential backoff with full jitter, bounded by attempts, a deadline and a
budget.

``Retry`` is sans-IO: ``delay(exc, attempts, elapsed_s)`` answers with the seconds to wait or
None (give up), and never sleeps, so ``ss.map``, ``ss.retry`` and the writers each drive it with
their own clock and sleep. Differences from the peers, on purpose:

- bounded by default (3 attempts, 60 s deadline); tenacity retries forever unless told not to;
- the default ``on=`` retries only what is transient (connection errors, timeouts, HTTP 408,
  425, 429, 500, 502, 503, 504), so a bug is not hammered three times;
- a server's ``Retry-After`` (seconds or an HTTP date) is honoured, capped and jittered upward;
- a shared ``RetryBudget`` caps retries at a fraction of calls, so retries cannot multiply an
  outage. A retry that waits for a server's ``Retry-After`` (within ``max_retry_after_s``) does
  not spend the budget: the server said when it wants the call again, so the retry is paced by
  the server, not a failure storm; it still counts toward ``attempts`` and ``deadline_s``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import final

from ..core.checks import check_instance, check_int, check_number, check_seconds
from ..core.clock import now as _now
from ..core.settings import testing_state as _testing
from ..core.transient import is_transient
from .filters import ExceptionFilter, matcher

__all__ = ["Retry", "RetryBudget", "retry_after_s"]


def retry_after_s(exc: BaseException) -> float | None:
    """The delay a server asked for: ``exc.retry_after_s`` or a ``Retry-After`` header
    (delta-seconds or HTTP date) on ``exc.response``; None when absent or unparseable."""
    explicit = getattr(exc, "retry_after_s", None)
    if isinstance(explicit, int | float) and not isinstance(explicit, bool):
        return max(0.0, float(explicit))
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        raw = headers.get("Retry-After") or headers.get("retry-after")
    except Exception:  # an exotic headers object; a hint is not worth failing for
        return None
    if not raw:
        return None
    raw = str(raw).strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        # an HTTP date is wall-clock time: only the wall clock measures how far off it is
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@final
class RetryBudget:
    """Caps retries at ``ratio`` of calls plus ``min_per_s`` retries a second, shared by its users.

    The balance starts at one second's worth (``min_per_s``), grows by ``min_per_s`` per second
    and by ``ratio`` for every first attempt, is capped at ``max_balance``, and each retry spends
    one token. So a dependency that fails hard sees about ``1 + ratio`` times its normal traffic
    (plus the small per-second floor that lets low-traffic callers retry at all), not
    ``attempts`` times it (Finagle's retry budget, without its sliding window). Thread-safe.
    """

    __slots__ = (
        "_denied",
        "_last",
        "_lock",
        "_spent",
        "_tokens",
        "max_balance",
        "min_per_s",
        "ratio",
    )

    def __init__(
        self, *, ratio: float = 0.2, min_per_s: float = 10.0, max_balance: float = 1000.0
    ) -> None:
        ratio = check_number("ratio", ratio, minimum=0, maximum=10)
        min_per_s = check_number("min_per_s", min_per_s, minimum=0, allow_inf=True)
        max_balance = check_number("max_balance", max_balance, minimum=1, allow_inf=True)
        self.ratio = float(ratio)
        self.min_per_s = float(min_per_s)
        self.max_balance = float(max_balance)
        self._tokens = min(self.min_per_s, self.max_balance)
        self._last: float | None = None
        self._spent = 0
        self._denied = 0
        self._lock = threading.Lock()

    @classmethod
    def unlimited(cls) -> RetryBudget:
        """A budget that never refuses (to opt a map out of its default budget)."""
        return cls(ratio=0.0, min_per_s=math.inf, max_balance=math.inf)

    def _refill(self) -> None:
        now = _now()
        if self._last is not None and now > self._last and self.min_per_s:
            self._tokens = min(self.max_balance, self._tokens + (now - self._last) * self.min_per_s)
        self._last = now

    def deposit(self) -> None:
        """Record one first attempt."""
        with self._lock:
            self._refill()
            self._tokens = min(self.max_balance, self._tokens + self.ratio)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is exhausted."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self._spent += 1
                return True
            self._denied += 1
            return False

    @property
    def spent(self) -> int:
        return self._spent

    @property
    def denied(self) -> int:
        return self._denied

    def __repr__(self) -> str:
        return (
            f"<RetryBudget ratio={self.ratio:g} min_per_s={self.min_per_s:g} "
            f"tokens={self._tokens:.2f} spent={self._spent} denied={self._denied}>"
        )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """A retry policy. Immutable; share it freely (its ``budget`` is the one shared counter).

    Args:
        attempts: most calls in all, first included (>= 1).
        on: what to retry: an exception type, a tuple of types, or a predicate. Default
            ``is_transient``.
        deadline_s: no retry starts after this many seconds since the first attempt; None for
            no deadline.
        initial_s, max_backoff_s, multiplier: backoff ``min(max_backoff_s, initial_s *
            multiplier**(n-1))`` before retry n, with full jitter (uniform from 0 to that).
        jitter: full jitter on (default) or off.
        max_retry_after_s: cap on a server's ``Retry-After``; the wait is the server's delay
            plus up to 10% jitter.
        budget: a shared ``RetryBudget``. None: ``ss.map``/``ss.stream`` give each run its
            own ``RetryBudget()`` (20% of items plus 10 a second), the decorator none. Use
            ``RetryBudget.unlimited()`` to opt out. A retry that waits for a server's
            ``Retry-After`` (not capped by ``max_retry_after_s``) spends nothing from it, but
            counts toward ``attempts`` and ``deadline_s``.

    Example::

        policy = ss.Retry(attempts=5, on=httpx.HTTPError, deadline_s=30)
        results = await ss.map(fetch, urls, retry=policy)
    """

    attempts: int = 3
    on: ExceptionFilter = is_transient
    deadline_s: float | None = 60.0
    initial_s: float = 0.1
    max_backoff_s: float = 10.0
    multiplier: float = 2.0
    jitter: bool = True
    max_retry_after_s: float = 60.0
    budget: RetryBudget | None = None
    _match: Callable[[BaseException], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int("attempts", self.attempts, minimum=1)
        for name in ("initial_s", "max_backoff_s", "max_retry_after_s"):
            object.__setattr__(
                self, name, check_seconds(name, getattr(self, name), allow_zero=True)
            )
        object.__setattr__(
            self, "multiplier", check_number("multiplier", self.multiplier, minimum=1)
        )
        object.__setattr__(
            self, "deadline_s", check_seconds("deadline_s", self.deadline_s, allow_none=True)
        )
        if not isinstance(self.jitter, bool):
            raise TypeError(f"'jitter' must be a bool, got {type(self.jitter).__name__}")
        if self.budget is not None:
            check_instance("budget", self.budget, RetryBudget, "a RetryBudget or None")
        object.__setattr__(self, "_match", matcher(self.on))

    def backoff_s(self, attempt: int) -> float:
        """The un-jittered delay before retry number ``attempt`` (1-based)."""
        return min(self.max_backoff_s, self.initial_s * self.multiplier ** min(attempt - 1, 64))

    def delay(
        self,
        exc: BaseException,
        attempts: int,
        elapsed_s: float,
        budget: RetryBudget | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and re-raise ``exc``.

        Args:
            exc: what the last attempt raised.
            attempts: attempts made so far (>= 1).
            elapsed_s: seconds since the first attempt started.
            budget: the budget to spend from (default: the policy's own, if any).
        """
        if budget is None:
            budget = self.budget
        if not self._match(exc):
            return None
        limit = min(self.attempts, _testing.attempts) if _testing.enabled else self.attempts
        if attempts >= limit:
            exc.add_note(f"slipstream: gave up after {attempts} attempt(s) (attempts={limit})")
            return None
        server = retry_after_s(exc)
        if server is not None:
            base = min(server, self.max_retry_after_s)
            wait = base + random.uniform(0.0, 0.1 * base) if self.jitter else base
        else:
            base = self.backoff_s(attempts)
            wait = random.uniform(0.0, base) if self.jitter else base
        if _testing.enabled:
            wait = 0.0
        if self.deadline_s is not None and elapsed_s + wait > self.deadline_s:
            exc.add_note(
                f"slipstream: gave up after {attempts} attempt(s): the next would start past "
                f"deadline_s={self.deadline_s:g}"
            )
            return None
        # The server said when: its pacing, not a storm, so the budget is not spent (a capped
        # Retry-After is our choice, not the server's, and spends as usual).
        paced = server is not None and server <= self.max_retry_after_s
        if budget is not None and not paced and not budget.try_spend():
            exc.add_note(f"slipstream: gave up after {attempts} attempt(s): retry budget spent")
            return None
        return wait
