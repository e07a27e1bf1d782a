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

The modules: ``feed`` (upstream pumped into a queue, taken in batches), ``pool`` (the actors:
least loaded first, dead ones replaced by a spare), ``dispatch`` (batches out, outcomes back),
``wire`` (what travels) and ``worker`` (the worker side); this one holds the runner's life.

The stage's function and setup must be importable on the workers (module-level functions in a
module on ``sys.path``): functions from ``__main__`` are pickled by value, and whatever they
cache is rebuilt for every batch.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, final

from ...core.checks import check_int, check_seconds
from ...core.errors import PipelineError
from ...core.resource import AsyncResource
from ...flow.rate import Rate
from .dispatch import Dispatch, Outcome
from .feed import Feed
from .pool import ActorPool
from .wire import StageSpec

__all__ = ["DaskRunner"]


@final
class DaskRunner(AsyncResource):
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
    ) -> AsyncIterator[Outcome]:
        """Send ``upstream``'s items in batches; yield ``(item, ok, value or error, attempts,
        elapsed_s)`` per item as batches finish.

        Up to ``batches_per_worker`` batches per live actor are out at once; when a call
        fails (its worker died) its batch fails, and so do the others out to that worker.
        However the stage ends, the pump, the calls still out and a spare being made are
        cancelled and awaited; a cancellation of the caller propagates."""
        await self.start()
        pool = await self._pool(self._spec(stage))
        feed = Feed(upstream, self.batch_size, self.max_wait_s)
        dispatch = Dispatch(stage.name, pool, feed, value_of, self.batches_per_worker)
        try:
            while dispatch.open:
                outcomes, sent = await dispatch.step()
                self.tasks += sent
                for outcome in outcomes:
                    yield outcome
            await feed.finish()  # upstream's error, if it had one, is the stage's
        finally:
            await dispatch.aclose()

    async def _pool(self, spec: StageSpec) -> ActorPool:
        """One actor per worker, each set up (the stage's preflight before any item)."""
        from .worker import StageActor

        workers = await self._workers()
        try:
            actors = await asyncio.gather(*(self._actor(StageActor, spec, [w]) for w in workers))
        except Exception as exc:
            raise PipelineError(
                f"setup of stage {spec.name!r} failed on a worker: {type(exc).__name__}: {exc}"
            ) from exc
        return ActorPool(list(actors), lambda: self._actor(StageActor, spec, None))

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
