"""The dispatch loop of a Dask stage: batches out to the actor pool, outcomes back.

Each ``step`` fills the window (up to ``batches_per_worker`` batches per live actor, taken from
the ``Feed``), then waits for a call to end. Items that cannot be pickled fail alone before
their batch goes. A failed call means its worker died: its batch fails (one of its items may
be what killed the worker: running it again elsewhere could kill another), the other batches
out to that worker fail with it now, rather than after Dask's 30 s connect timeout to a dead
address, and later batches go to the live actors and to a spare.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ...core.errors import PipelineError
from .feed import Feed
from .pool import ActorPool, cancel_and_wait
from .wire import Batch, pack, unpicklable

__all__ = ["Dispatch", "Outcome"]

# Per item: (item, ok, value or error, attempts, elapsed_s), what DaskRunner.run_stage yields.
Outcome = tuple[Any, bool, Any, int, float]


class Dispatch:
    """One stage's calls in flight, and the outcomes of those that ended."""

    __slots__ = ("_dropped", "_in_flight", "_name", "_per_actor", "_value_of", "feed", "pool")

    def __init__(
        self,
        name: str,
        pool: ActorPool,
        feed: Feed,
        value_of: Callable[[Any], Any],
        batches_per_actor: int,
    ) -> None:
        self._name = name
        self.pool = pool
        self.feed = feed
        self._value_of = value_of
        self._per_actor = batches_per_actor
        self._in_flight: dict[asyncio.Task[list[Any]], tuple[int, list[Any]]] = {}
        self._dropped: list[asyncio.Task[list[Any]]] = []  # cancelled with their dead worker

    @property
    def open(self) -> bool:
        """Batches are out, or items may still come."""
        return bool(self._in_flight) or not self.feed.exhausted

    async def step(self) -> tuple[list[Outcome], int]:
        """Fill the window, then wait for a call to end: the outcomes that are known now, and
        how many batches were sent."""
        pool = self.pool
        pool.adopt_spare()
        if pool.lost and not self._in_flight:
            raise PipelineError(f"stage {self._name!r}: every Dask worker was lost")
        out: list[Outcome] = []
        sent = 0
        while pool.live and len(self._in_flight) < self._per_actor * pool.live:
            batch = await self.feed.batch(busy=bool(self._in_flight))
            if not batch:
                break
            sent += self._send(batch, out)
            if out:
                break  # items that failed alone are reported now, not after a call lands
        if not out:
            out = await self._landed()
        return out, sent

    def _send(self, batch: list[Any], out: list[Outcome]) -> int:
        """Send ``batch`` to the least busy actor (1), items that cannot be pickled failing
        alone into ``out`` (0 when none is left)."""
        packed, bad = pack([self._value_of(i) for i in batch])
        if bad:
            what = "this item's value or source item"
            out.extend(
                (batch[i], False, unpicklable(self._name, what, why), 0, 0.0)
                for i, why in bad.items()
            )
            batch = [item for i, item in enumerate(batch) if i not in bad]
            if not batch:
                return 0
        index, actor = self.pool.pick()
        self._in_flight[asyncio.create_task(_call(actor, packed))] = (index, batch)
        return 1

    async def _landed(self) -> list[Outcome]:
        """Wait for a call to end (or a spare to be ready): the outcomes of what ended."""
        in_flight, pool = self._in_flight, self.pool
        waiting: set[asyncio.Future[Any]] = set(in_flight)
        if pool.spare is not None:
            waiting.add(pool.spare)
        if not waiting:
            return []
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        out: list[Outcome] = []
        for task in done:
            if task not in in_flight:
                continue  # the spare: taken in at the next step
            index, batch = in_flight.pop(task)
            pool.release(index)
            error = task.exception()
            if error is None:
                results = task.result()
                out.extend((item, *result) for item, result in zip(batch, results, strict=True))
            else:
                lost = [batch, *self._drop(index, done)]
                out.extend((item, False, error, 1, 0.0) for items in lost for item in items)
                pool.mark_dead(index)
        return out

    def _drop(self, index: int, done: set[Any]) -> list[list[Any]]:
        """Cancel the calls still out to actor ``index`` (its worker died): their batches."""
        lost: list[list[Any]] = []
        for task, (j, batch) in list(self._in_flight.items()):
            if j == index and task not in done:
                del self._in_flight[task]
                self.pool.release(j)
                task.cancel()
                self._dropped.append(task)  # awaited in aclose
                lost.append(batch)
        return lost

    async def aclose(self) -> None:
        """Cancel and await the pump, the calls still out and a spare being made; the
        caller's cancellation, if it comes meanwhile, propagates."""
        await cancel_and_wait([self.feed.task, *self._in_flight, *self._dropped])
        await self.pool.aclose()


async def _call(actor: Any, batch: Batch) -> list[Any]:
    """One batch on one actor: its outcomes, ``(ok, value or error, attempts, elapsed_s)``."""
    result: Batch = await actor.run(batch)
    return result.unpack()
