import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


class BatchProcessor:
    def __init__(self, max_concurrency: int = 20, batch_size: int = 100) -> None:
        self.batch_size = batch_size
        self.semaphore = asyncio.Semaphore(max_concurrency)

    async def _process_with_limit(self, processor: Callable[[T], Awaitable[U]], item: T) -> U:
        async with self.semaphore:
            return await processor(item)

    async def process_batch(self, items: list[T], processor: Callable[[T], Awaitable[U]]) -> list[U]:
        results: list[U] = []
        for chunk in self._chunked(items, self.batch_size):
            tasks = [self._process_with_limit(processor, item) for item in chunk]
            chunk_results = await asyncio.gather(*tasks, return_exceptions=True)  # ok: SLP302 bounded by the semaphore
            results.extend(r for r in chunk_results if not isinstance(r, Exception))
        return results

    @staticmethod
    def _chunked(iterable, size):
        it = iter(iterable)
        while chunk := list(islice(it, size)):
            yield chunk


async def map_stream(stream: AsyncIterator[T], processor: Callable[[T], Awaitable[U]]) -> AsyncIterator[U]:
    queue: asyncio.Queue = asyncio.Queue(maxsize=100)

    async def producer() -> None:
        async for item in stream:
            await queue.put(item)
        await queue.put(None)

    producer_task = asyncio.create_task(producer())  # ok: SLP502 awaited below
    while True:
        item = await queue.get()
        if item is None:
            break
        yield await processor(item)
    await producer_task
