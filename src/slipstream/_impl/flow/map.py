"""``ss.map`` and ``ss.stream``: a bounded concurrent map that loses nothing.

Data flow: a fixed set of ``concurrency`` worker tasks pull items from the input (sync or async
iterable, possibly endless), each item goes through limiter -> breaker -> call (with timeout) ->
retry loop, and becomes exactly one ``Outcome``. ``map`` writes outcomes into a list in input
order; ``stream`` hands them to the consumer as they complete (or in order), and its workers stop
pulling while ``concurrency + buffer`` items are taken but not yet consumed (backpressure).

Why workers rather than a task per item (aiometer, gather+semaphore): no task is created per
item, so the per-item cost is one ``next()``, two clock reads and the call itself, and memory is
bounded by the number of workers, not the input size.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterable, Sized
from concurrent.futures import Executor
from types import TracebackType
from typing import Any, Generic, TypedDict, TypeVar, Unpack, final, overload

from ..core.checks import check_int, check_seconds
from ..core.errors import CircuitOpen, InputError, ItemCancelled
from ..core.outcome import Outcome, Summary
from ..core.results import Results
from ..core.settings import env_float, env_int
from ..core.threads import default_executor
from .breaker import CircuitBreaker
from .rate import Limiter, Rate, RateLimiter
from .retry import Retry, RetryBudget

__all__ = ["Stream", "map", "stream"]

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


def _own_cancellation() -> bool:
    """True when the running task (a worker) is being cancelled: the map's caller was cancelled
    or the stream was closed. A ``CancelledError`` raised while this is False came from inside
    the item's call (it awaited something another task cancelled): that item's failure."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _check_positive_int(name: str, value: object, *, minimum: int) -> int:
    return check_int(name, value, minimum=minimum)


class _Engine(Generic[T, R]):
    """The shared machinery of ``map`` and ``stream``; one per call."""

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
        # -- validation, at call time, naming the parameter -------------------------------------
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
        concurrency = _check_positive_int("concurrency", concurrency, minimum=1)
        if rate is None or isinstance(rate, Rate):
            self._limiter: Limiter | None = RateLimiter(rate) if rate is not None else None
        elif isinstance(rate, Limiter):
            self._limiter = rate
        else:
            raise TypeError(
                f"'rate' must be a Rate or a limiter with 'acquire', got {type(rate).__name__}"
                "\nHINT: rate=ss.Rate(per_second=10), or rate=shared_limiter"
            )
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
        self._bar: Any = None
        self._plain = self._limiter is None and retry is None and breaker is None and not timeout_s
        self._total = len(items) if isinstance(items, Sized) else None
        self._workers_n = concurrency if self._total is None else min(concurrency, self._total)
        if buffer is None:
            buffer = concurrency
        buffer = _check_positive_int("buffer", buffer, minimum=0)
        # None: collect everything (map); else the most items taken but not yet consumed.
        self._ahead: int | None = None if collect else concurrency + buffer
        self._ordered = ordered

        # -- state ---------------------------------------------------------------------------
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._live_workers = 0
        self._pull_lock: asyncio.Lock | None = None
        self._exhausted = False
        self._input_error: BaseException | None = None
        self._fatal: BaseException | None = None
        self._taken = 0
        self._consumed = 0
        self._slots: list[Outcome[T, R] | None] = []
        self._ready: deque[Outcome[T, R]] = deque()
        self._pending: dict[int, Outcome[T, R]] = {}
        self._next_out = 0
        self._consumer: asyncio.Future[None] | None = None
        self._space_waiters: deque[asyncio.Future[None]] = deque()
        self._started_at = 0.0
        self._finished_at: float | None = None
        # counters for the summary
        self._done = 0
        self._failed = 0
        self._retries = 0
        self._retried = 0
        self._rejected = 0
        self._rate_wait_s = 0.0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._started_at = loop.time()
        if self._aiter is not None:
            self._pull_lock = asyncio.Lock()
        if self._want_bar:
            from ..observe.progress import ProgressBar

            self._bar = ProgressBar()
            self._bar.update(0, self._total)
        self._live_workers = self._workers_n
        self._workers = [loop.create_task(self._worker()) for _ in range(self._workers_n)]
        if not self._workers:
            self._finish()

    def cancel_workers(self) -> None:
        for task in self._workers:
            task.cancel()

    async def close(self) -> None:
        """Cancel what runs and wait for it, so no task outlives the map or stream."""
        self.cancel_workers()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _finish(self) -> None:
        assert self._loop is not None
        self._finished_at = self._loop.time()
        self._close_bar()
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        consumer = self._consumer
        if consumer is not None and not consumer.done():
            consumer.set_result(None)

    def _set_exhausted(self) -> None:
        self._exhausted = True
        while self._space_waiters:
            waiter = self._space_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # -- workers --------------------------------------------------------------------------------

    async def _worker(self) -> None:
        try:
            await self._work()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError) and self._fatal is None:
                self._fatal = exc
                self._wake_consumer()
            raise
        finally:
            self._live_workers -= 1
            if self._live_workers == 0:
                self._finish()

    async def _work(self) -> None:
        loop = self._loop
        assert loop is not None
        time = loop.time
        fn: Any = self._fn
        if self._sync_fn:
            fn = self._call_in_thread
        nxt = self._iter.__next__ if self._iter is not None else None
        ahead = self._ahead
        collect = ahead is None
        plain = self._plain
        deliver = self._deliver
        while not self._exhausted:
            if not collect and self._taken - self._consumed >= ahead:  # type: ignore[operator]
                waiter = loop.create_future()
                self._space_waiters.append(waiter)
                await waiter
                continue
            try:
                if nxt is not None:
                    item = nxt()
                else:
                    assert self._pull_lock is not None
                    async with self._pull_lock:
                        if self._exhausted:
                            return
                        item = await self._aiter.__anext__()
            except (StopIteration, StopAsyncIteration):
                self._set_exhausted()
                return
            except Exception as exc:
                self._input_error = exc
                self._set_exhausted()
                return
            index = self._taken
            self._taken = index + 1
            if collect:
                self._slots.append(None)
            if plain:
                start = time()
                try:
                    value = await fn(item)
                except Exception as exc:
                    deliver(Outcome(item, index, None, exc, 1, time() - start))
                except asyncio.CancelledError as exc:
                    if _own_cancellation():
                        raise
                    deliver(Outcome(item, index, None, ItemCancelled(exc), 1, time() - start))
                else:
                    deliver(Outcome(item, index, value, None, 1, time() - start))
            else:
                deliver(await self._attempt(item, index, fn))

    async def _call_in_thread(self, item: T) -> Any:
        assert self._loop is not None
        ctx = contextvars.copy_context()
        executor = self._executor if self._executor is not None else default_executor()
        value = await self._loop.run_in_executor(executor, ctx.run, self._fn, item)
        if inspect.isawaitable(value):  # a sync callable that returned an awaitable
            value = await value
        return value

    async def _attempt(self, item: T, index: int, fn: Any) -> Outcome[T, R]:
        """One item through limiter -> breaker -> call (timeout) -> retry, to one outcome."""
        assert self._loop is not None
        time = self._loop.time
        limiter, breaker, retry, timeout_s = (
            self._limiter,
            self._breaker,
            self._retry,
            self._timeout_s,
        )
        start = time()
        attempts = 0
        budget = self._budget
        if budget is not None:
            budget.deposit()
        while True:
            try:
                if limiter is not None:
                    weight = self._weight(item) if self._weight is not None else 1.0
                    waited = await limiter.acquire(weight)
                    self._rate_wait_s += waited  # after the await: no lost update
                ticket = breaker.admit() if breaker is not None else 0
            except CircuitOpen as exc:
                self._rejected += 1
                return Outcome(item, index, None, exc, attempts, time() - start)
            except Exception as exc:  # a bad weight, a limiter backend that is down
                return Outcome(item, index, None, exc, attempts, time() - start)
            attempts += 1
            deadline = None
            try:
                if timeout_s:
                    async with asyncio.timeout(timeout_s) as deadline:
                        value = await fn(item)
                else:
                    value = await fn(item)
            except Exception as exc:
                if breaker is not None:
                    breaker.record_failure(ticket, exc)
                if deadline is not None and deadline.expired():
                    exc.add_note(f"slipstream: the call exceeded timeout_s={timeout_s:g}")
                wait = (
                    retry.delay(exc, attempts, time() - start, budget)
                    if retry is not None
                    else None
                )
                if wait is None:
                    return Outcome(item, index, None, exc, attempts, time() - start)
                self._retries += 1
                if attempts == 1:
                    self._retried += 1
                await asyncio.sleep(wait)
                continue
            except BaseException as exc:
                if breaker is not None:
                    breaker.release(ticket)
                if isinstance(exc, asyncio.CancelledError) and not _own_cancellation():
                    error = ItemCancelled(exc)
                    return Outcome(item, index, None, error, attempts, time() - start)
                raise
            if breaker is not None:
                breaker.record_success(ticket)
            return Outcome(item, index, value, None, attempts, time() - start)

    def _deliver(self, outcome: Outcome[T, R]) -> None:
        self._done += 1
        if outcome.error is not None:
            self._failed += 1
        if self._ahead is None:
            self._slots[outcome.index] = outcome
        elif self._ordered:
            self._pending[outcome.index] = outcome
            while self._next_out in self._pending:
                self._ready.append(self._pending.pop(self._next_out))
                self._next_out += 1
            self._wake_consumer()
        else:
            self._ready.append(outcome)
            self._wake_consumer()
        if self._on_progress is not None:
            self._on_progress(self._done, self._total)
        if self._bar is not None:
            self._bar.update(self._done, self._total)

    # -- consuming --------------------------------------------------------------------------

    async def next_outcome(self) -> Outcome[T, R]:
        """The next outcome for a stream consumer; StopAsyncIteration at the end."""
        while True:
            if self._ready:
                outcome = self._ready.popleft()
                self._consumed += 1
                if self._space_waiters:
                    waiter = self._space_waiters.popleft()
                    if not waiter.done():
                        waiter.set_result(None)
                return outcome
            if self._fatal is not None:
                fatal, self._fatal = self._fatal, None
                await self.close()
                raise fatal
            if self._finished_at is not None:
                if self._input_error is not None:
                    cause, self._input_error = self._input_error, None
                    raise InputError(cause) from cause
                raise StopAsyncIteration
            assert self._loop is not None
            self._consumer = self._loop.create_future()
            try:
                await self._consumer
            except asyncio.CancelledError:
                self.cancel_workers()  # an abandoned `async for` must not leave work running
                raise

    async def run_to_end(self) -> Results[T, R]:
        """Run every item (for ``map``) and return the outcomes in input order."""
        self.start()
        try:
            if self._workers:
                await asyncio.gather(*self._workers)
        except BaseException:
            await asyncio.shield(self.close())
            raise
        outcomes: list[Outcome[T, R]] = self._slots  # type: ignore[assignment]  # all filled
        if self._input_error is not None:
            raise InputError(self._input_error, outcomes) from self._input_error
        return Results(outcomes, self.summary())

    def summary(self) -> Summary:
        """Totals so far (final once the map or stream has ended)."""
        end = self._finished_at
        if end is None:
            end = self._loop.time() if self._loop is not None else self._started_at
        return Summary(
            total=self._done,
            ok=self._done - self._failed,
            failed=self._failed,
            retried=self._retried,
            retries=self._retries,
            rejected=self._rejected,
            rate_wait_s=self._rate_wait_s,
            elapsed_s=end - self._started_at,
        )


@final
class Stream(Generic[T, R]):
    """The async iterator that ``ss.stream`` returns.

    Iterate it with ``async for``. Use ``async with ss.stream(...) as s:`` (or ``await
    s.aclose()``) to stop early: in-flight calls are cancelled and awaited, so no task leaks.
    Breaking out of a bare ``async for`` cancels the workers when the stream is collected.
    """

    __slots__ = ("_closed", "_engine", "_started")

    def __init__(self, engine: _Engine[T, R]) -> None:
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

    async def __aenter__(self) -> Stream[T, R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

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
    engine: _Engine[T, R] = _Engine(
        fn,
        items,
        concurrency=concurrency,
        rate=rate,
        weight=weight,
        retry=retry,
        breaker=breaker,
        timeout_s=timeout_s,
        on_progress=on_progress,
        progress=progress,
        executor=executor,
        collect=False,
        buffer=buffer,
        ordered=ordered,
    )
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
    engine: _Engine[T, R] = _Engine(
        fn,
        items,
        concurrency=concurrency,
        rate=rate,
        weight=weight,
        retry=retry,
        breaker=breaker,
        timeout_s=timeout_s,
        on_progress=on_progress,
        progress=progress,
        executor=executor,
        collect=True,
    )
    # A plain function returning the coroutine, so that bad arguments raise at call time.
    return engine.run_to_end()
