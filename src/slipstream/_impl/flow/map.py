"""``ss.map`` and ``ss.stream``: a bounded concurrent map that loses nothing.

Every item becomes exactly one ``Outcome``. ``map`` returns them all in input order; ``stream``
hands them to the consumer as they complete (or in order) and takes at most ``concurrency +
buffer`` items ahead of it, so an endless input runs in bounded memory. The arguments are
checked at call time (``options.RunOptions``); the workers are ``engine.Engine``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar, Unpack, final, overload

from ..core.checks import check_int
from ..core.outcome import Outcome, Summary
from ..core.resource import AsyncResource
from ..core.results import Results
from .breaker import CircuitBreaker
from .engine import Engine
from .options import MapOptions, ProgressCallback, StreamOptions
from .rate import Limiter, Rate
from .retry_policy import Retry

__all__ = ["Stream", "map", "stream", "stream_chunks"]

T = TypeVar("T")
R = TypeVar("R")


@final
class Stream(AsyncResource, Generic[T, R]):
    """The async iterator that ``ss.stream`` returns.

    Iterate it with ``async for``. Use ``async with ss.stream(...) as s:`` (or ``await
    s.aclose()``) to stop early: in-flight calls are cancelled and awaited, so no task leaks.
    Breaking out of a bare ``async for`` cancels the workers when the stream is collected.
    """

    __slots__ = ("_closed", "_engine", "_started")

    def __init__(self, engine: Engine[T, R]) -> None:
        self._engine = engine
        self._started = False
        self._closed = False

    def __aiter__(self) -> Stream[T, R]:
        return self

    async def __anext__(self) -> Outcome[T, R]:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            self._engine.start()
        return await self._engine.next_outcome()

    async def aclose(self) -> None:
        """Stop: cancel in-flight calls and wait for them; idempotent."""
        if not self._closed:
            self._closed = True
            if self._started:
                await self._engine.close()

    async def next_batch(self, limit: int | None = None) -> list[Outcome[T, R]]:
        """Every outcome ready now (at most ``limit``), at least one (waiting for the first);
        raises ``StopAsyncIteration`` at the end, as ``__anext__`` does. One step for what a
        busy stream has completed since the last call.

        Raises:
            TypeError, ValueError: ``limit`` is not None or an int >= 1.
        """
        if limit is not None:
            check_int("limit", limit, minimum=1)
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            self._engine.start()
        return await self._engine.next_outcomes(limit)

    def summary(self) -> Summary:
        """Totals so far: ok, failed, retries, rate-limit wait, elapsed."""
        return self._engine.summary()

    def __del__(self) -> None:
        if self._started and not self._closed:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                self._engine.cancel_workers()

    def __repr__(self) -> str:
        return f"<Stream {self._engine.summary()}>"


@overload
def stream(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    **options: Unpack[StreamOptions],
) -> Stream[T, R]: ...
@overload
def stream(
    fn: Callable[[T], R],
    items: Iterable[T] | AsyncIterable[T],
    **options: Unpack[StreamOptions],
) -> Stream[T, R]: ...
def stream(
    fn: Callable[[T], Awaitable[R]] | Callable[[T], R],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int | None = None,
    ordered: bool = False,
    buffer: int | None = None,
    rate: Rate | Limiter | None = None,
    weight: Callable[[T], float] | None = None,
    retry: Retry | None = None,
    breaker: CircuitBreaker | None = None,
    timeout_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    progress: bool = False,
    executor: Executor | None = None,
) -> Stream[T, R]:
    """Run ``fn`` over ``items`` with bounded concurrency and yield one ``Outcome`` per item.

    Outcomes come as they complete, or in input order with ``ordered=True``. At most
    ``concurrency + buffer`` items are taken ahead of what the consumer has received, so an
    endless input runs in bounded memory. Arguments are those of ``map``, plus:

    Args:
        ordered: yield in input order (a slow item holds back later ones, within the bound).
        buffer: extra items taken ahead of the consumer beyond ``concurrency`` (default equal to
            ``concurrency``).

    Example::

        async with ss.stream(fetch, urls, concurrency=20) as outcomes:
            async for o in outcomes:
                print(o.item, o.value if o.ok else o.error)

    Raises:
        TypeError, ValueError: at call time, for a bad argument (named in the message).
        InputError: at the end of the iteration, if the input iterable raised.
    """
    # every parameter is an option of the run, checked by name there: hand them all on as given
    engine: Engine[T, R] = Engine(**locals(), collect=False)
    return Stream(engine)


@overload
def map(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    **options: Unpack[MapOptions],
) -> Coroutine[Any, Any, Results[T, R]]: ...
@overload
def map(
    fn: Callable[[T], R],
    items: Iterable[T] | AsyncIterable[T],
    **options: Unpack[MapOptions],
) -> Coroutine[Any, Any, Results[T, R]]: ...
def map(  # the public name is fixed: ss.map
    fn: Callable[[T], Awaitable[R]] | Callable[[T], R],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int | None = None,
    rate: Rate | Limiter | None = None,
    weight: Callable[[T], float] | None = None,
    retry: Retry | None = None,
    breaker: CircuitBreaker | None = None,
    timeout_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    progress: bool = False,
    executor: Executor | None = None,
) -> Coroutine[Any, Any, Results[T, R]]:
    """Run ``fn`` over every item with bounded concurrency; return one ``Outcome`` per item.

    Args:
        fn: an async function, or a sync one (run in a bounded thread pool, never on the loop).
        items: any iterable or async iterable.
        concurrency: most calls in flight (default ``SLIPSTREAM_MAX_CONCURRENCY`` or 16).
        rate: a ``Rate`` (a private limiter) or a shared limiter (``RateLimiter``,
            ``RedisRateLimiter``); every attempt acquires from it.
        weight: units each item takes from the rate limit (default 1), e.g. its LLM tokens.
        retry: a ``Retry`` policy (default: ``SLIPSTREAM_RETRY_ATTEMPTS``, else no retry).
        breaker: a ``CircuitBreaker``; refused items fail fast with ``CircuitOpen``.
        timeout_s: per-call timeout (default ``SLIPSTREAM_TIMEOUT_S``, else none); a timed-out
            call raises ``TimeoutError``, which the default retry policy retries.
        on_progress: ``callback(done, total)`` after each outcome (total None if unknown).
        progress: show a rich progress bar (extra ``rich``).
        executor: where sync functions run (default: slipstream's bounded thread pool).

    Returns:
        An awaitable of ``Results``: outcomes in input order, ``.values()``, ``.failures``,
        ``.summary``, ``.raise_failures()``.

    Raises:
        TypeError, ValueError: at call time, for a bad argument (named in the message).
        InputError: the input iterable raised; ``.outcomes`` holds every taken item's outcome.

    Example::

        results = await ss.map(fetch, urls, concurrency=20, rate=ss.Rate(per_second=50),
                               retry=ss.Retry(attempts=4))
        pages = results.values()     # or inspect results.failures
    """
    # every parameter is an option of the run, checked by name there: hand them all on as given
    engine: Engine[T, R] = Engine(**locals(), collect=True)
    # A plain function returning the coroutine, so that bad arguments raise at call time.
    return engine.run_to_end()


def stream_chunks(
    fn: Callable[[T], Awaitable[R]],
    chunks: AsyncIterable[list[T]],
    **options: Any,
) -> Stream[T, R]:
    """``stream(fn, ...)`` over an async generator that yields *lists* of items (a pipeline's
    stages hand items on in batches): the workers take from one inbox without a lock, one of
    them pulling the next list when it is empty. After the first list, each pull sends the
    generator (``asend``) how many items the stream may still take, and the generator yields
    at most that many, so the inbox counts toward ``concurrency + buffer``. Options are
    ``stream``'s."""
    given: dict[str, Any] = {
        "concurrency": None,
        "rate": None,
        "weight": None,
        "retry": None,
        "breaker": None,
        "timeout_s": None,
        "on_progress": None,
        "progress": False,
        "executor": None,
    }
    given.update(options)
    engine: Engine[T, R] = Engine(fn=fn, items=chunks, collect=False, **given)
    engine._chunked = True
    return Stream(engine)
