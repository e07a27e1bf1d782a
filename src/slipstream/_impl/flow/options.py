"""The options of ``ss.map`` and ``ss.stream``: validated at call time, resolved once.

``RunOptions`` takes what a call was given, checks each argument (an error names its
parameter), fills the defaults from the environment (``SLIPSTREAM_MAX_CONCURRENCY``,
``SLIPSTREAM_RETRY_ATTEMPTS``, ``SLIPSTREAM_TIMEOUT_S``) and keeps the result in the form the
workers read: a limiter rather than a ``Rate``, the items as an iterator, whether the call is
"plain" (no limiter, retry, breaker or timeout: the fast path). The engine that runs the call
extends it with its state, so the workers read every option as one attribute of ``self``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sized
from concurrent.futures import Executor
from typing import Any, Generic, TypedDict, TypeVar

from ..core.checks import check_int, check_seconds
from ..core.settings import env_float, env_int
from .breaker import CircuitBreaker
from .rate import Limiter, Rate, RateLimiter
from .retry_policy import Retry, RetryBudget

__all__ = ["MapOptions", "ProgressCallback", "RunOptions", "StreamOptions"]

T = TypeVar("T")
R = TypeVar("R")

ProgressCallback = Callable[[int, "int | None"], object]
_DEFAULT_CONCURRENCY = 16


class MapOptions(TypedDict, total=False):
    """The keyword options of ``map`` (``stream`` adds ``ordered`` and ``buffer``)."""

    concurrency: int | None
    rate: Rate | Limiter | None
    weight: Callable[[Any], float] | None
    retry: Retry | None
    breaker: CircuitBreaker | None
    timeout_s: float | None
    on_progress: ProgressCallback | None
    progress: bool
    executor: Executor | None


class StreamOptions(MapOptions, total=False):
    ordered: bool
    buffer: int | None


def _is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # an object with an async __call__
    )


class RunOptions(Generic[T, R]):
    """One ``map`` or ``stream`` call's arguments, checked and resolved (see the module)."""

    __slots__ = (
        "_ahead",
        "_aiter",
        "_breaker",
        "_budget",
        "_executor",
        "_feedback",
        "_fn",
        "_iter",
        "_limiter",
        "_on_progress",
        "_ordered",
        "_plain",
        "_retry",
        "_sync_fn",
        "_timeout_s",
        "_total",
        "_want_bar",
        "_weight",
        "_workers_n",
    )

    def __init__(
        self,
        fn: Callable[[T], Awaitable[R]] | Callable[[T], R],
        items: Iterable[T] | AsyncIterable[T],
        *,
        concurrency: int | None,
        rate: Rate | Limiter | None,
        weight: Callable[[T], float] | None,
        retry: Retry | None,
        breaker: CircuitBreaker | None,
        timeout_s: float | None,
        on_progress: ProgressCallback | None,
        progress: bool,
        executor: Executor | None,
        collect: bool,
        buffer: int | None = None,
        ordered: bool = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"'fn' must be callable, got {type(fn).__name__}")
        if isinstance(items, AsyncIterable):
            self._aiter: Any = items.__aiter__()
            self._iter: Any = None
        elif isinstance(items, Iterable):
            self._iter = iter(items)
            self._aiter = None
        else:
            raise TypeError(
                f"'items' must be an iterable or async iterable, got {type(items).__name__}"
            )
        if concurrency is None:
            concurrency = env_int("SLIPSTREAM_MAX_CONCURRENCY", _DEFAULT_CONCURRENCY)
        concurrency = check_int("concurrency", concurrency, minimum=1)
        self._limiter, self._feedback = resolve_limiter(rate)
        if weight is not None and not callable(weight):
            raise TypeError(f"'weight' must be callable, got {type(weight).__name__}")
        if retry is None:
            attempts = env_int("SLIPSTREAM_RETRY_ATTEMPTS", 1)
            retry = Retry(attempts=attempts) if attempts > 1 else None
        elif not isinstance(retry, Retry):
            raise TypeError(
                f"'retry' must be a Retry, got {type(retry).__name__}"
                "\nHINT: retry=ss.Retry(attempts=3)"
            )
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise TypeError(f"'breaker' must be a CircuitBreaker, got {type(breaker).__name__}")
        if timeout_s is None:
            timeout_s = env_float("SLIPSTREAM_TIMEOUT_S")
        else:
            timeout_s = check_seconds("timeout_s", timeout_s, allow_inf=True)
        if on_progress is not None and not callable(on_progress):
            raise TypeError(f"'on_progress' must be callable, got {type(on_progress).__name__}")
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(f"'executor' must be a concurrent.futures.Executor, got {executor!r}")

        self._fn = fn
        self._sync_fn = not _is_async_callable(fn)
        self._executor = executor
        self._weight = weight
        self._retry = retry
        # Each run gets a retry budget unless the policy shares one: retries stay a fraction
        # of the calls, so a failing dependency sees ~1.2x its traffic, not attempts-x.
        self._budget = None if retry is None else (retry.budget or RetryBudget())
        self._breaker = breaker
        self._timeout_s = timeout_s
        self._on_progress = on_progress
        self._want_bar = progress
        self._plain = self._limiter is None and retry is None and breaker is None and not timeout_s
        self._total = len(items) if isinstance(items, Sized) else None
        self._workers_n = concurrency if self._total is None else min(concurrency, self._total)
        if buffer is None:
            buffer = concurrency
        buffer = check_int("buffer", buffer, minimum=0)
        # None: collect everything (map); else the most items taken but not yet consumed.
        self._ahead: int | None = None if collect else concurrency + buffer
        self._ordered = ordered


Feedback = Callable[[BaseException | None], object]


def resolve_limiter(rate: Rate | Limiter | None) -> tuple[Limiter | None, Feedback | None]:
    """The limiter a ``rate=`` stands for (a ``Rate`` becomes this call's own ``RateLimiter``)
    and its ``feedback(error | None)`` hook if it learns from outcomes (``AdaptiveRate``):
    resolved once, so a limiter without the hook costs one ``is not None`` check an attempt.

    Raises:
        TypeError: ``rate`` is neither a ``Rate`` nor a limiter with ``acquire``.
    """
    if rate is None:
        return None, None
    if isinstance(rate, Rate):
        return RateLimiter(rate), None
    if not isinstance(rate, Limiter):
        raise TypeError(
            f"'rate' must be a Rate or a limiter with 'acquire', got {type(rate).__name__}"
            "\nHINT: rate=ss.Rate(per_second=10), or rate=shared_limiter"
        )
    feedback = getattr(rate, "feedback", None)
    return rate, feedback if callable(feedback) else None
