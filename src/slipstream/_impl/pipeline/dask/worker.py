"""The worker side of ``ss.DaskRunner`` (imported on Dask workers; needs ``distributed``)."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import threading
from typing import Any

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from ...core.errors import RemoteError
from ...flow.rate import Limiter, RateLimiter
from ..stage import Item, _current
from .wire import Batch, StageSpec, pack, unpicklable

PLUGIN = "slipstream-event-loop"


class EventLoopPlugin(WorkerPlugin):
    """A worker plugin: one private event loop thread per worker process."""

    name = PLUGIN
    idempotent = True

    def setup(self, worker: Any = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.contexts: dict[str, asyncio.Future[Any]] = {}
        self.limiters: dict[str, Limiter] = {}
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="slipstream-worker-loop", daemon=True
        )
        self.thread.start()

    def teardown(self, worker: Any = None) -> None:
        loop = self.loop

        async def close() -> None:
            from ...clients.registry import default_registry

            await default_registry().aclose()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self.thread.join(timeout=10)
        loop.close()

    async def context(self, spec: StageSpec) -> Any:
        """The setup's result for this stage, computed once per worker (single flight)."""
        flight = self.contexts.get(spec.key)
        if flight is None:
            flight = self.loop.create_future()
            self.contexts[spec.key] = flight
            try:
                value = spec.setup() if spec.setup is not None else None
                if asyncio.iscoroutine(value):
                    value = await value
                flight.set_result(value)
            except Exception as exc:
                del self.contexts[spec.key]  # the next batch tries again
                flight.set_exception(exc)
                flight.exception()  # retrieved: no "never retrieved" warning
                raise
        return await asyncio.shield(flight)

    async def run(self, spec: StageSpec, payloads: list[tuple[Item, Any]]) -> list[tuple[Any, ...]]:
        """Run one batch of ``(identity, value)`` payloads; an outcome per payload."""
        from ...flow.map import map as ss_map

        ctx = await self.context(spec)
        fn = spec.fn
        limiter = None
        if spec.rate is not None:
            limiter = self.limiters.get(spec.key)
            if limiter is None:
                limiter = self.limiters[spec.key] = RateLimiter(spec.rate)

        async def call(payload: tuple[Item, Any]) -> Any:
            item, value = payload
            token = _current.set(item)  # ss.current_item() on the worker, as in a local stage
            try:
                out = fn(value, ctx) if spec.setup is not None else fn(value)
                return await out if asyncio.iscoroutine(out) else out
            finally:
                _current.reset(token)

        results = await ss_map(
            call,
            payloads,
            concurrency=spec.concurrency,
            retry=spec.retry,
            rate=limiter,
            timeout_s=spec.timeout_s,
        )
        return [
            (
                o.error is None,
                o.value if o.error is None else _portable(o.error),
                o.attempts,
                o.elapsed_s,
            )
            for o in results
        ]


def _portable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        detail = getattr(exc, "detail", "")
        return RemoteError(type(exc).__name__, str(exc), str(detail) if detail else "")


def _plugin() -> EventLoopPlugin:
    plugin = get_worker().plugins[PLUGIN]
    assert isinstance(plugin, EventLoopPlugin)
    return plugin


class StageActor:
    """One per worker and stage: runs batches on the worker's private loop (a Dask actor)."""

    def __init__(self, spec: StageSpec) -> None:
        self.spec = spec

    async def prepare(self) -> bool:
        """Run the stage's setup on this worker (the preflight before any item)."""
        plugin = _plugin()
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(plugin.context(self.spec), plugin.loop)
        )
        return True

    async def run(self, batch: Batch) -> Batch:
        # an async method runs on the worker's own loop: it only waits here, the work runs on
        # the private loop, so a blocking user function cannot stall the worker's heartbeats
        plugin = _plugin()
        payloads = batch.unpack()
        future = asyncio.run_coroutine_threadsafe(plugin.run(self.spec, payloads), plugin.loop)
        outcomes = await asyncio.wrap_future(future)
        packed, bad = pack(outcomes)
        if not bad:
            return packed
        for i, exc in bad.items():  # an output that cannot travel back fails its item alone
            _, _, attempts, elapsed = outcomes[i]
            error = _portable(unpicklable(self.spec.name, "this item's output", exc))
            outcomes[i] = (False, error, attempts, elapsed)
        return pack(outcomes)[0]


def creations() -> int:
    from ...clients.registry import default_registry

    plugin = _plugin()

    async def count() -> int:
        return sum(s.creations for s in default_registry().statistics().values())

    return asyncio.run_coroutine_threadsafe(count(), plugin.loop).result()
