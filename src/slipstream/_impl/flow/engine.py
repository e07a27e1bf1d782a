"""The engine behind ``ss.map`` and ``ss.stream``: workers, ordering, backpressure, totals.

A fixed set of ``concurrency`` worker tasks pull items from the input (sync or async iterable,
possibly endless); each item goes through limiter -> breaker -> call (with timeout) -> retry
loop, and becomes exactly one ``Outcome``. A limiter with a ``feedback`` hook (``AdaptiveRate``)
hears how each attempt went (None or its exception), so it can learn the server's rate. For
``map`` outcomes go into a list in input order; for ``stream`` into a queue the consumer drains
as they complete (or in order), and workers stop pulling while ``concurrency + buffer`` items
are taken but not yet consumed (backpressure).

Why workers rather than a task per item (aiometer, gather+semaphore): no task is created per
item, so the per-item cost is one ``next()``, two clock reads and the call itself, and memory is
bounded by the number of workers, not the input size.

**The clock.** The engine reads the running loop's clock as a bound method (``loop.time``;
``time.monotonic`` itself when that method is asyncio's own, which only calls it), not
``core.clock.now()``: the plain worker loop reads it twice per item, and ``now()`` costs
~660 ns against ~150 ns for the bound method (measured in the event loop, CPython 3.11), which
would add ~1 us to the ~1.4 us each item costs. Inside the loop the two are the same clock,
so a virtual-time loop drives the engine all the same.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections import deque
from time import monotonic as _monotonic
from typing import Any, TypeVar

from ..core.errors import CircuitOpen, InputError, ItemCancelled
from ..core.outcome import Outcome, Summary
from ..core.results import Results
from ..core.threads import default_executor
from .options import RunOptions

__all__ = ["Engine"]

T = TypeVar("T")
R = TypeVar("R")


def _clock_of(loop: asyncio.AbstractEventLoop) -> Any:
    """The loop's clock as the cheapest callable: ``time.monotonic`` itself when the loop's
    ``time`` is asyncio's own (which only returns it: a Python frame less per read, two reads
    an item), else the loop's bound method (a virtual clock, uvloop's)."""
    if getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time:
        return _monotonic
    return loop.time


def _wake(waiters: deque[asyncio.Future[None]], n: int) -> int:
    """Wake up to ``n`` of ``waiters`` (first come, first woken; the cancelled skipped): how
    many were woken."""
    woken = 0
    while woken < n and waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            woken += 1
    return woken


def _own_cancellation() -> bool:
    """True when the running task (a worker) is being cancelled: the map's caller was cancelled
    or the stream was closed. A ``CancelledError`` raised while this is False came from inside
    the item's call (it awaited something another task cancelled): that item's failure."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


class Engine(RunOptions[T, R]):
    """The shared machinery of ``map`` and ``stream``; one per call. The options are checked
    by ``RunOptions`` (at call time); this adds the state of the run."""

    __slots__ = (
        "_bar",
        "_chunked",
        "_clock",
        "_consumed",
        "_consumer",
        "_done",
        "_exhausted",
        "_failed",
        "_fatal",
        "_finished_at",
        "_inbox",
        "_input_error",
        "_live_workers",
        "_loop",
        "_next_out",
        "_pending",
        "_pull_lock",
        "_pull_waiters",
        "_pulling",
        "_rate_wait_s",
        "_ready",
        "_rejected",
        "_retried",
        "_retries",
        "_sent",
        "_slots",
        "_space_waiters",
        "_started_at",
        "_taken",
        "_top_up_due",
        "_workers",
    )

    def __init__(self, **given: Any) -> None:
        super().__init__(**given)
        self._bar: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: Any = None  # the loop's clock, once it runs (_clock_of)
        self._workers: list[asyncio.Task[None]] = []
        self._live_workers = 0
        self._pull_lock: asyncio.Lock | None = None
        # chunked input (a pipeline's stages): the async input yields lists of items, which
        # wait in ``_inbox``; one worker at a time pulls (``_pulling``), the others wait in
        # ``_pull_waiters`` and take from the inbox without a lock
        self._chunked = False
        self._inbox: deque[T] = deque()
        self._pulling = False
        self._sent = False
        self._top_up_due = False  # a _top_up is scheduled (call_soon)
        self._pull_waiters: deque[asyncio.Future[None]] = deque()
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
        self._clock = _clock_of(loop)
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
        self._wake_pullers(len(self._pull_waiters))

    def _wake_pullers(self, n: int) -> None:
        _wake(self._pull_waiters, n)

    def _schedule_top_up(self) -> None:
        if not self._top_up_due:
            self._top_up_due = True
            assert self._loop is not None
            self._loop.call_soon(self._top_up)

    def _top_up(self) -> None:
        """Wake as many waiting workers as there is work for, one loop step after room or
        items appeared: a worker whose calls never suspend has used them all by then (waking
        the others would only make them wait again: a task switch an item), and one whose
        call suspended has left them for the others."""
        self._top_up_due = False
        if self._exhausted:
            return
        ahead = self._ahead
        room = len(self._space_waiters) if ahead is None else ahead - (self._taken - self._consumed)
        if room <= 0:
            return
        inbox = self._inbox
        woken = _wake(self._space_waiters, room)
        # a worker for each item in the inbox, and one more to pull the next list while they
        # call (unless one pulls already, or the room is taken): no worker sits idle while the
        # input may have items
        wanted = len(inbox)
        if not self._pulling and room - woken > wanted:
            wanted += 1
        self._wake_pullers(min(wanted, room - woken))

    async def _take_chunked(self) -> tuple[bool | None, Any]:
        """The next item of a chunked input: (True, item); (False, None) at its end (or when
        it raised: ``_input_error``); (None, None) when the worker waited and must check the
        room again (another may have used it meanwhile). Items wait in the inbox; when it is
        empty one worker pulls the next chunk while the others wait for it, and after a pull
        as many waiters wake as there are items, plus one to pull again, so no worker idles
        while the input has items and no pull waits for a worker busy with its call."""
        inbox = self._inbox
        while not inbox:
            if self._exhausted:
                return False, None
            ahead = self._ahead
            space = 1 if ahead is None else ahead - (self._taken - self._consumed)
            if space <= 0:
                return None, None  # no room: the caller waits for it
            if self._pulling:
                assert self._loop is not None
                waiter = self._loop.create_future()
                self._pull_waiters.append(waiter)
                await waiter
                return None, None  # the room may be gone by now: the caller checks again
            self._pulling = True
            try:
                # the input is told how many items this stage may still hold (asend), so what
                # waits in the inbox counts toward concurrency + buffer like what is taken
                if self._sent:
                    chunk = await self._aiter.asend(space)
                else:  # a just-started async generator takes no value: the pipeline's
                    self._sent = True  # yield an empty list first, then get the number
                    chunk = await self._aiter.__anext__()
            except StopAsyncIteration:
                self._set_exhausted()
                return False, None
            except Exception as exc:
                self._input_error = exc
                self._set_exhausted()
                return False, None
            except BaseException:
                self._wake_pullers(1)  # cancelled while pulling: another worker pulls
                raise
            finally:
                self._pulling = False
            inbox.extend(chunk)
            self._schedule_top_up()  # the others, once this worker's turn ends
        return True, inbox.popleft()

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
        time = self._clock
        fn: Any = self._fn
        if self._sync_fn:
            fn = self._call_in_thread
        nxt = self._iter.__next__ if self._iter is not None else None
        ahead = self._ahead
        collect = ahead is None
        plain = self._plain
        deliver = self._deliver
        inbox = self._inbox
        ready = self._ready
        quick = (
            not collect and not self._ordered and self._on_progress is None and self._bar is None
        )
        breaker = self._breaker
        refuse_first = breaker is not None and self._limiter is None and self._budget is None
        while not self._exhausted:
            if not collect and self._taken - self._consumed >= ahead:  # type: ignore[operator]
                waiter = loop.create_future()
                self._space_waiters.append(waiter)
                await waiter
                continue
            try:
                if nxt is not None:
                    item = nxt()
                elif self._chunked:
                    if inbox:  # the common case inline: no coroutine per item
                        item = inbox.popleft()
                    else:
                        got, item = await self._take_chunked()
                        if got is None:
                            continue  # it waited: check the room again
                        if not got:
                            return
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
                    outcome = Outcome(item, index, value, None, 1, time() - start)
                    if quick:  # _deliver's unordered-stream success, inline: the hot path
                        self._done += 1
                        ready.append(outcome)
                        consumer = self._consumer
                        if consumer is not None and not consumer.done():
                            consumer.set_result(None)
                    else:
                        deliver(outcome)
            elif refuse_first:
                # a breaker and nothing before it (no limiter, no retry budget): an open one
                # refuses here, without a coroutine for the item
                ticket = breaker.try_admit()  # type: ignore[union-attr]
                if isinstance(ticket, CircuitOpen):
                    self._rejected += 1
                    deliver(Outcome(item, index, None, ticket, 0, 0.0))
                else:
                    deliver(await self._attempt(item, index, fn, ticket))
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

    async def _attempt(
        self, item: T, index: int, fn: Any, admitted: int | None = None
    ) -> Outcome[T, R]:
        """One item through limiter -> breaker -> call (timeout) -> retry, to one outcome.
        ``admitted``: the breaker's ticket for the first attempt, taken by the caller."""
        assert self._loop is not None
        time = self._clock
        limiter, breaker, retry, timeout_s, feedback = (
            self._limiter,
            self._breaker,
            self._retry,
            self._timeout_s,
            self._feedback,
        )
        start = time()
        attempts = 0
        budget = self._budget
        if budget is not None:
            budget.deposit()
        while True:
            try:
                if admitted is not None:  # the first attempt, admitted by the caller
                    ticket: int | CircuitOpen = admitted
                    admitted = None
                else:
                    if limiter is not None:
                        weight = self._weight(item) if self._weight is not None else 1.0
                        waited = await limiter.acquire(weight)
                        self._rate_wait_s += waited  # after the await: no lost update
                    ticket = breaker.try_admit() if breaker is not None else 0
            except CircuitOpen as exc:  # a limiter that guards its backend with a breaker
                self._rejected += 1
                return Outcome(item, index, None, exc, attempts, time() - start)
            except Exception as exc:  # a bad weight, a limiter backend that is down
                return Outcome(item, index, None, exc, attempts, time() - start)
            if isinstance(ticket, CircuitOpen):  # refused: returned, not raised
                self._rejected += 1
                return Outcome(item, index, None, ticket, attempts, time() - start)
            attempts += 1
            deadline = None
            try:
                if timeout_s:
                    async with asyncio.timeout(timeout_s) as deadline:
                        value = await fn(item)
                else:
                    value = await fn(item)
            except Exception as exc:
                if feedback is not None:
                    feedback(exc)  # before the retry's delay: a Retry-After pauses everyone
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
            if feedback is not None:
                feedback(None)
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
            consumer = self._consumer  # _wake_consumer, inline: the per-item path
            if consumer is not None and not consumer.done():
                consumer.set_result(None)
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
                if self._chunked and self._pull_waiters and not self._pulling:
                    self._schedule_top_up()  # a worker waiting to pull: nobody else wakes it
                elif self._space_waiters:
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

    async def next_outcomes(self, limit: int | None = None) -> list[Outcome[T, R]]:
        """Every outcome ready now (at most ``limit``), at least one (waiting for it);
        StopAsyncIteration at the end. What ``next_outcome`` does, for a batch: a pipeline's
        stage hands them on in one step."""
        if not self._ready:
            first = await self.next_outcome()
            if not self._ready or limit == 1:
                return [first]
            batch = [first]
        else:
            batch = []
        ready = self._ready
        n = len(ready)
        if limit is not None:
            n = min(n, limit - len(batch))
        if n == len(ready):
            batch.extend(ready)
            ready.clear()
        else:
            pop = ready.popleft
            for _ in range(n):
                batch.append(pop())
        self._consumed += n
        if self._chunked:
            self._schedule_top_up()
        else:
            _wake(self._space_waiters, n)
        return batch

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
