"""``ss.DaskRunner``: run a pipeline stage on Dask distributed workers, in batches.

Measured on 2 cores (``../shared/notes-distributed.md`` and ``bench_pipeline``): one Dask task
costs 0.3-1.6 ms, so one item per task is 35-175x plain asyncio; ``async def`` tasks run on the
worker's communication loop, where a blocking call stalls its heartbeats; and a per-process
cache survives only in an importable module. So:

- items travel in batches (``batch_size``) to one actor per worker: actor calls go from the
  client to the worker directly, where a task per batch would cost the scheduler about 3 ms
  (measured in bench_pipeline: 69 us an item with a task per batch, 21 with actors);
- a worker plugin gives every worker process a private event loop in a thread; a batch runs there
  as one ``ss.map`` with ``concurrency_per_worker`` calls in flight, the stage's retry policy,
  timeout and a per-worker share of its rate;
- the stage's ``setup`` runs once per worker process (first on every worker before any item, so a
  failing setup stops the run before work starts) and its clients come from that process's
  ``ss.default_registry()``: created once per worker, reused by every batch;
- outcomes come back per item, so failures, skips, retries, the sink and the checkpoint behave as
  in a local run. An exception that cannot be pickled comes back as ``RemoteError`` with its type,
  message and ``detail``.

The stage's function and setup must be importable on the workers (module-level functions in a
module on ``sys.path``): functions from ``__main__`` are pickled by value, and whatever they
cache is rebuilt for every batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from ...core.checks import check_int, check_seconds
from ...core.errors import PipelineError
from ...flow.rate import Rate
from .wire import Batch, StageSpec, pack, unpicklable

__all__ = ["DaskRunner"]


class DaskRunner:
    """Run pipeline stages on Dask distributed (``Stage(..., runner=runner)``).

    Args:
        address: a scheduler address (``"tcp://host:8786"``), or None for a ``LocalCluster``
            bound to 127.0.0.1 (no dashboard, no outside connection).
        batch_size: items per Dask task (100 amortises Dask's per-task cost to about 40 us
            an item).
        concurrency_per_worker: calls in flight per worker process.
        n_workers, threads_per_worker: the local cluster's shape (ignored with ``address``).
        max_wait_s: how long a partial batch waits for more items before it is sent.
        batches_per_worker: batches sent to a worker at once (one runs while the next
            travels).

    Use ``async with ss.DaskRunner() as runner:``; a pipeline also starts a runner it is given
    and closes it after the run if it started it. Needs ``pip install 'slipstream[dask]'``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        batch_size: int = 100,
        concurrency_per_worker: int = 32,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        max_wait_s: float = 0.01,
        batches_per_worker: int = 2,
    ) -> None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
        concurrency_per_worker = check_int(
            "concurrency_per_worker", concurrency_per_worker, minimum=1
        )
        n_workers = check_int("n_workers", n_workers, minimum=1)
        threads_per_worker = check_int("threads_per_worker", threads_per_worker, minimum=1)
        batches_per_worker = check_int("batches_per_worker", batches_per_worker, minimum=1)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"'address' must be a string or None, got {type(address).__name__}")
        max_wait_s = check_seconds("max_wait_s", max_wait_s, allow_zero=True)
        self.address = address
        self.batch_size = batch_size
        self.concurrency_per_worker = concurrency_per_worker
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.max_wait_s = max_wait_s
        self.batches_per_worker = batches_per_worker
        self.client: Any = None
        self._cluster: Any = None
        self.tasks = 0

    def __repr__(self) -> str:
        where = self.address or f"LocalCluster({self.n_workers} workers)"
        return f"DaskRunner({where}, batch_size={self.batch_size})"

    @property
    def started(self) -> bool:
        return self.client is not None

    async def start(self) -> None:
        if self.client is not None:
            return
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - the extra is installed in dev
            raise ImportError(
                "DaskRunner needs distributed\nHINT: pip install 'slipstream[dask]'"
            ) from None
        if self.address is None:
            self._cluster = await LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.n_workers,
                threads_per_worker=self.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                asynchronous=True,
            )
            self.client = await Client(self._cluster, asynchronous=True)  # type: ignore[no-untyped-call]
        else:
            self.client = await Client(self.address, asynchronous=True)  # type: ignore[no-untyped-call]
        from .worker import PLUGIN, EventLoopPlugin

        await self.client.register_plugin(EventLoopPlugin(), name=PLUGIN)
        self.n_workers = len(await self._workers())

    async def _workers(self) -> list[str]:
        """The workers' addresses, asked of the scheduler (the client's cached view lags)."""
        nthreads = self.client.nthreads()
        if inspect.isawaitable(nthreads):
            nthreads = await nthreads
        return sorted(nthreads)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self._cluster is not None:
            await self._cluster.close()
            self._cluster = None

    async def __aenter__(self) -> DaskRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def creations_per_worker(self) -> dict[str, int]:
        """Clients each worker's registry has created (one per client kind is the goal)."""
        from .worker import creations

        assert self.client is not None
        workers = await self._workers()
        futures = [
            self.client.submit(creations, workers=[w], allow_other_workers=False, pure=False)
            for w in workers
        ]
        return dict(zip(workers, await self.client.gather(futures), strict=True))

    def _spec(self, stage: Any) -> StageSpec:
        rate = stage.rate
        if rate is not None and not isinstance(rate, Rate):
            raise TypeError(
                f"stage {stage.name!r}: a DaskRunner stage takes a Rate (shared out among the "
                "workers), not a limiter object, which cannot cross processes"
            )
        if rate is not None:
            share = self.n_workers
            rate = Rate(per_second=rate.per_second / share, burst=max(1.0, rate.burst / share))
        return StageSpec(
            key=f"{stage.name}-{uuid.uuid4().hex}",
            name=stage.name,
            fn=stage.fn,
            setup=stage.setup,
            retry=stage.retry,
            rate=rate,
            timeout_s=stage.timeout_s,
            concurrency=self.concurrency_per_worker,
        )

    async def run_stage(
        self, stage: Any, upstream: AsyncIterator[Any], value_of: Callable[[Any], Any]
    ) -> AsyncIterator[tuple[Any, bool, Any, int, float]]:
        """Send ``upstream``'s items in batches; yield ``(item, ok, value or error, attempts,
        elapsed_s)`` per item as batches finish."""
        from .worker import StageActor

        await self.start()
        spec = self._spec(stage)
        workers = await self._workers()
        # one actor per worker: batches go straight to it, not through the scheduler (a task
        # costs the scheduler about 3 ms here; an actor call 0.3 ms)
        try:
            actors: list[Any] = list(
                await asyncio.gather(*(self._actor(StageActor, spec, [w]) for w in workers))
            )
        except Exception as exc:
            raise PipelineError(
                f"setup of stage {stage.name!r} failed on a worker: {type(exc).__name__}: {exc}"
            ) from exc
        replacements = len(workers)  # a dead worker's actor is replaced, up to this many times
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.batch_size * 2)
        end = object()

        async def pump() -> None:
            try:
                async for item in upstream:
                    await queue.put(item)
            except asyncio.CancelledError:
                raise  # the consumer is gone: nobody waits for the end (the queue may be full)
            except BaseException:
                await queue.put(end)  # the consumer drains, sees the end, then gets the error
                raise
            await queue.put(end)

        async def call(actor: Any, batch: Batch) -> list[Any]:
            result: Batch = await actor.run(batch)
            return result.unpack()

        loop = asyncio.get_running_loop()
        pumper = loop.create_task(pump())
        in_flight: dict[asyncio.Task[list[Any]], tuple[int, list[Any]]] = {}
        load = [0] * len(actors)
        dead: set[int] = set()
        spare: asyncio.Task[Any] | None = None  # a replacement actor being made
        exhausted = False
        try:
            while in_flight or not exhausted:
                if spare is not None and spare.done():
                    if not spare.cancelled() and spare.exception() is None:
                        actors.append(spare.result())
                        load.append(0)
                    spare = None
                live = len(actors) - len(dead)
                if not live and spare is None and not in_flight:
                    raise PipelineError(f"stage {stage.name!r}: every Dask worker was lost")
                while not exhausted and live and len(in_flight) < self.batches_per_worker * live:
                    batch, exhausted = await self._batch(queue, end, bool(in_flight))
                    if not batch:
                        break
                    packed, bad = pack([value_of(i) for i in batch])
                    if bad:  # those items fail alone; the others go
                        for i, why in bad.items():
                            what = "this item's value or source item"
                            yield batch[i], False, unpicklable(stage.name, what, why), 0, 0.0
                        batch = [item for i, item in enumerate(batch) if i not in bad]
                        if not batch:
                            continue
                    index = min(  # the least busy live worker
                        (i for i in range(len(actors)) if i not in dead), key=load.__getitem__
                    )
                    load[index] += 1
                    task = loop.create_task(call(actors[index], packed))
                    self.tasks += 1
                    in_flight[task] = (index, batch)
                waiting: set[asyncio.Task[Any]] = set(in_flight)
                if spare is not None:
                    waiting.add(spare)
                if not waiting:
                    continue
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task not in in_flight:
                        continue  # the spare: taken in at the top of the loop
                    index, batch = in_flight.pop(task)
                    load[index] -= 1
                    error = task.exception()
                    if error is not None:  # the call itself failed: its worker died
                        # the batch fails (one of its items may be what killed the worker:
                        # running it again elsewhere could kill another); later batches go to
                        # the live actors and to a replacement, if the cluster has a worker
                        for item in batch:
                            yield item, False, error, 1, 0.0
                        # the other batches sent to that worker fail with it now, rather than
                        # after Dask's 30 s connect timeout to a dead address
                        for other, (j, lost) in list(in_flight.items()):
                            if j == index and other not in done:
                                other.cancel()
                                del in_flight[other]
                                load[j] -= 1
                                for item in lost:
                                    yield item, False, error, 1, 0.0
                        if index not in dead:
                            dead.add(index)
                            if replacements > 0 and spare is None:
                                replacements -= 1
                                spare = loop.create_task(self._actor(StageActor, spec, None))
                        continue
                    for item, (ok, value, attempts, elapsed) in zip(
                        batch, task.result(), strict=True
                    ):
                        yield item, ok, value, attempts, elapsed
        finally:
            pumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumper
            for task in in_flight:
                task.cancel()
            if in_flight:  # awaited, so no call outlives the stage
                await asyncio.gather(*in_flight, return_exceptions=True)
            if spare is not None:
                spare.cancel()
                with contextlib.suppress(BaseException):
                    await spare
            del actors  # releases the actors on the workers

    async def _actor(self, cls: Any, spec: StageSpec, workers: list[str] | None) -> Any:
        """An actor for ``spec`` (on ``workers``, or where the scheduler likes), set up."""
        actor = await self.client.submit(
            cls,
            spec,
            actor=True,
            workers=workers,
            allow_other_workers=workers is None,
            pure=False,
        )
        await actor.prepare()
        return actor

    async def _batch(
        self, queue: asyncio.Queue[Any], end: object, busy: bool
    ) -> tuple[list[Any], bool]:
        """Up to ``batch_size`` items: wait for the first (unless batches are in flight and
        none is ready), then up to ``max_wait_s`` for the rest."""
        batch: list[Any] = []
        if busy and queue.empty():
            return batch, False
        first = await queue.get()
        if first is end:
            return batch, True
        batch.append(first)
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.batch_size:
            if queue.empty():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = queue.get_nowait()
            if item is end:
                return batch, True
            batch.append(item)
        return batch, False
