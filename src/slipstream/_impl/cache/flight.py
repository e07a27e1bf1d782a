"""Single flight: concurrent misses of one key run one computation, and share its outcome.

One table of ``Flight`` records, keyed by the cache's full key, serves both worlds; a flight's
outcome is an ``asyncio.Task`` for async callers and a ``concurrent.futures.Future`` for
threads. The first caller of a key starts the computation and counts a miss; the others find
its flight, count a join and wait for the same outcome.

A ``Cache`` keeps one table for async callers and one for threads. They never share flights:
a sync caller on the event loop's thread that waited for an async flight would block the very
loop that must finish it.

Async flights add two rules. A waiter that is cancelled leaves the computation running for the
others; when the last waiter leaves, the computation is cancelled and its flight leaves the
table at once (not in the task's done-callback a loop step later), so a caller arriving in
between starts afresh instead of joining a cancelled load. A flight from an event loop that
closed mid-flight is ignored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Hashable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from .stats import Counters

__all__ = ["Flight", "SingleFlight"]

logger = logging.getLogger("slipstream.cache")
O = TypeVar("O", asyncio.Task[Any], Future[Any])  # noqa: E741  # the outcome's type


class Flight(Generic[O]):
    """One computation in progress for a key, and how many callers wait for it."""

    __slots__ = ("abandoned", "background", "outcome", "waiters")

    def __init__(self, outcome: O, background: bool) -> None:
        self.outcome: O = outcome
        self.waiters = 0
        self.background = background  # a stale-while-revalidate refresh: no caller waits
        self.abandoned = False  # every waiter left and the computation was cancelled


class SingleFlight(Generic[O]):
    """The flights of one cache, by key: ``run`` for async callers, ``run_sync`` for threads
    (each table is used by one of the two)."""

    __slots__ = ("_counters", "_table")

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._table: dict[Hashable, Flight[O]] = {}

    def __len__(self) -> int:
        return len(self._table)

    def _started(self, key: Hashable, flight: Flight[O]) -> None:
        if not flight.background:
            self._counters.misses += 1
        self._table[key] = flight

    def _joined(self) -> None:
        self._counters.joins += 1  # a caller that waits (a background start never does)

    def _forget(self, key: Hashable, flight: Flight[O]) -> None:
        """Take ``flight`` out of the table if it is still the key's."""
        if self._table.get(key) is flight:
            del self._table[key]

    # -- async ------------------------------------------------------------------------------

    async def run(
        self: SingleFlight[asyncio.Task[Any]],
        key: Hashable,
        start: Callable[[], Coroutine[Any, Any, Any]],
        *,
        background: bool = False,
    ) -> Any:
        """The outcome of ``start()`` for ``key``: started now (a miss) or joined (a join).
        With ``background``, start it if none runs and return None at once, uncounted."""
        loop = asyncio.get_running_loop()
        flight = self._table.get(key)
        if flight is not None and (flight.abandoned or flight.outcome.get_loop() is not loop):
            flight = None  # being cancelled, or from an event loop that closed mid-flight
        if flight is None:
            task = loop.create_task(start())
            flight = Flight(task, background)
            self._started(key, flight)
            task.add_done_callback(functools.partial(self._task_done, key, flight))
        elif not background:
            self._joined()
        if background:
            return None
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.outcome)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.outcome.done() and not flight.background:
                flight.abandoned = True  # nobody needs the result
                self._forget(key, flight)
                flight.outcome.cancel()

    def _task_done(
        self: SingleFlight[asyncio.Task[Any]],
        key: Hashable,
        flight: Flight[asyncio.Task[Any]],
        task: asyncio.Task[Any],
    ) -> None:
        self._forget(key, flight)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so no "never retrieved" warning
        if exc is not None and flight.background:
            logger.warning("background refresh of %r failed: %r", key, exc)

    async def cancel_all(self: SingleFlight[asyncio.Task[Any]]) -> None:
        """Cancel every computation in flight and wait until they have ended."""
        tasks = [flight.outcome for flight in self._table.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- threads ----------------------------------------------------------------------------

    def run_sync(self: SingleFlight[Future[Any]], key: Hashable, compute: Callable[[], Any]) -> Any:
        """The outcome of ``compute()`` for ``key``: computed in this thread (a miss), or
        waited for while another thread computes it (a join)."""
        flight = self._table.get(key)
        if flight is None:
            candidate: Flight[Future[Any]] = Flight(Future(), background=False)
            flight = self._table.setdefault(key, candidate)  # atomic: one thread wins
            if flight is candidate:
                self._started(key, flight)
                return self._compute(key, flight, compute)
        self._joined()
        flight.waiters += 1
        try:
            return flight.outcome.result()  # the owner's value, or its exception raised here
        finally:
            flight.waiters -= 1

    def _compute(
        self: SingleFlight[Future[Any]],
        key: Hashable,
        flight: Flight[Future[Any]],
        compute: Callable[[], Any],
    ) -> Any:
        try:
            value = compute()
        except BaseException as exc:
            self._forget(key, flight)
            flight.outcome.set_exception(exc)
            raise
        self._forget(key, flight)
        flight.outcome.set_result(value)
        return value
