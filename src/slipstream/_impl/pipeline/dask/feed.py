"""A Dask stage's input: items pumped from upstream into a bounded queue, taken in batches.

The pump is a task of its own, so the stage above keeps producing while batches are out on the
workers. ``batch`` waits for the first item (unless batches are in flight and none is ready),
then up to ``max_wait_s`` on the clock seam for the rest of a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ...core.clock import now

__all__ = ["Feed"]

_END = object()  # what the pump queues after upstream's last item (or its error)


class Feed:
    """Upstream's items, ``batch_size`` at a time. Start it in a running loop; ``task`` is the
    pump (awaited by ``finish``, cancelled by the stage when it stops early)."""

    __slots__ = ("_batch_size", "_max_wait_s", "_queue", "exhausted", "task")

    def __init__(self, upstream: AsyncIterator[Any], batch_size: int, max_wait_s: float) -> None:
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=batch_size * 2)
        self.exhausted = False  # the end was taken: no batch follows
        self.task = asyncio.get_running_loop().create_task(self._pump(upstream))

    async def _pump(self, upstream: AsyncIterator[Any]) -> None:
        try:
            async for item in upstream:
                await self._queue.put(item)
        except asyncio.CancelledError:
            raise  # the consumer is gone: nobody waits for the end (the queue may be full)
        except BaseException:
            await self._queue.put(_END)  # the consumer drains, sees the end, then the error
            raise
        await self._queue.put(_END)

    async def finish(self) -> None:
        """After the end was taken: wait for the pump, raising upstream's error if it had one."""
        await self.task

    async def batch(self, busy: bool) -> list[Any]:
        """Up to ``batch_size`` items: none without waiting when ``busy`` (batches are in
        flight) and nothing is queued; none either once the end is reached (``exhausted``)."""
        queue = self._queue
        batch: list[Any] = []
        if self.exhausted or (busy and queue.empty()):
            return batch
        first = await queue.get()
        if first is _END:
            self.exhausted = True
            return batch
        batch.append(first)
        deadline = now() + self._max_wait_s
        while len(batch) < self._batch_size:
            if queue.empty():
                remaining = deadline - now()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = queue.get_nowait()
            if item is _END:
                self.exhausted = True
                break
            batch.append(item)
        return batch
