"""DaskRunner's dispatch on the virtual clock: an in-process stand-in for the Dask client hands
out actors, so batching, the actor pool, lost workers and cancellation are tested exactly and
without a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.pipeline.dask.wire import Batch, StageSpec, pack

pytest.importorskip("distributed")

Run = Callable[[Coroutine[Any, Any, Any]], Any]
Outcome = tuple[Any, bool, Any, int, float]


class WorkerDied(OSError):
    """What an actor call raises when its worker process is gone."""


class FakeActor:
    """Runs a batch in this process: doubles each value after ``latency_s``; with ``dies``,
    the call fails as if the worker had died."""

    def __init__(self, name: str, *, latency_s: float, dies: bool) -> None:
        self.name = name
        self.latency_s = latency_s
        self.dies = dies
        self.calls: list[tuple[float, list[int]]] = []  # (when it started, the items)
        self.running = 0

    async def prepare(self) -> bool:
        return True

    async def run(self, batch: Batch) -> Batch:
        payloads = batch.unpack()
        self.calls.append((asyncio.get_running_loop().time(), [item for item, _ in payloads]))
        self.running += 1
        try:
            await asyncio.sleep(self.latency_s)
        finally:
            self.running -= 1
        if self.dies:
            raise WorkerDied(f"worker {self.name} is gone")
        return pack([(True, value * 2, 1, self.latency_s) for _item, value in payloads])[0]


class FakeClient:
    """The part of ``distributed.Client`` the dispatch uses: the workers, and actors on them
    (``workers=None`` asks for a spare, made as ``spare``)."""

    def __init__(self, dying: set[str], latency_s: float = 1.0, n_workers: int = 2) -> None:
        self.names = [f"w{i}" for i in range(n_workers)]
        self.dying = dying
        self.latency_s = latency_s
        self.actors: dict[str, FakeActor] = {}

    def nthreads(self) -> dict[str, int]:
        return dict.fromkeys(self.names, 1)

    async def submit(self, cls: Any, spec: StageSpec, **options: Any) -> FakeActor:
        workers = options["workers"]
        name = workers[0] if workers else f"spare{len(self.actors)}"
        actor = FakeActor(name, latency_s=self.latency_s, dies=name in self.dying)
        self.actors[name] = actor
        return actor


def runner_on(client: FakeClient, **options: Any) -> ss.DaskRunner:
    runner = ss.DaskRunner(max_wait_s=0.01, **options)
    runner.client = client  # started: run_stage uses it as it is
    return runner


async def numbers(n: int, error: Exception | None = None) -> AsyncIterator[int]:
    for i in range(n):
        yield i
    if error is not None:
        raise error


def values(item: int) -> tuple[int, int]:
    """What a pipeline sends per item: its identity (here the number) and its value."""
    return (item, item)


async def collect(runner: ss.DaskRunner, upstream: AsyncIterator[int]) -> list[Outcome]:
    stage = ss.Stage(abs, name="double", runner=runner)
    results = runner.run_stage(stage, upstream, values)
    return [outcome async for outcome in results]


class TestActorPool:
    def test_batches_go_to_the_least_loaded_actor(self, vrun: Run) -> None:
        """Eight batches over two workers, two out per worker at a time: each actor runs four,
        and every item comes back doubled."""
        client = FakeClient(dying=set())
        outcomes = vrun(collect(runner_on(client, batch_size=5), numbers(40)))
        assert sorted((i, True, 2 * i) for i in range(40)) == sorted(o[:3] for o in outcomes)
        assert [4, 4] == [len(client.actors[w].calls) for w in client.names]

    def test_a_dead_worker_fails_its_batches_and_a_spare_takes_over(self, vrun: Run) -> None:
        """The worker whose calls fail gets no more batches: the batches out to it fail with
        the call's error, the rest go to the live worker and to a spare, and every item ends
        exactly once."""
        client = FakeClient(dying={"w0"})
        runner = runner_on(client, batch_size=5)
        outcomes = vrun(collect(runner, numbers(40)))
        assert sorted(range(40)) == sorted(o[0] for o in outcomes)
        failed = [o for o in outcomes if not o[1]]
        dead = client.actors["w0"].calls
        assert sorted(i for _, items in dead for i in items) == sorted(o[0] for o in failed)
        assert all(isinstance(o[2], WorkerDied) and o[3] == 1 for o in failed)
        first_failure = dead[0][0] + client.latency_s
        assert all(started < first_failure for started, _ in dead)  # none sent after it
        assert "spare2" in client.actors  # made where the scheduler likes
        assert client.actors["spare2"].calls  # and given batches once ready

    def test_losing_every_worker_stops_the_stage(self, vrun: Run) -> None:
        """When every worker died and no spare can be made, the stage raises PipelineError
        instead of waiting for a worker that will not come."""
        client = FakeClient(dying={"w0", "spare1"}, n_workers=1)
        with pytest.raises(ss.PipelineError, match="every Dask worker was lost"):
            vrun(collect(runner_on(client, batch_size=5), numbers(40)))


class TestBatching:
    def test_a_partial_batch_waits_max_wait_s_then_goes(self, vrun: Run) -> None:
        """Items that trickle in slower than max_wait_s go in batches of what arrived."""

        async def trickle() -> AsyncIterator[int]:
            for i in range(6):
                await asyncio.sleep(0.5)
                yield i

        client = FakeClient(dying=set(), latency_s=0.1)
        outcomes = vrun(collect(runner_on(client, batch_size=100), trickle()))
        assert 6 == len(outcomes)
        sent = [len(items) for a in client.actors.values() for _, items in a.calls]
        assert [1] * 6 == sent  # not held back to fill a batch of 100

    def test_an_upstream_error_follows_the_items_before_it(self, vrun: Run) -> None:
        """Upstream's error is raised after the items it gave came back."""
        client = FakeClient(dying=set())
        seen: list[Outcome] = []

        async def main() -> None:
            runner = runner_on(client)
            stage = ss.Stage(abs, name="double", runner=runner)
            upstream = numbers(12, LookupError("the source broke"))
            async for outcome in runner.run_stage(stage, upstream, values):
                seen.append(outcome)  # noqa: PERF401  # kept one by one: the error follows

        with pytest.raises(LookupError, match="the source broke"):
            vrun(main())
        assert sorted(range(12)) == sorted(o[0] for o in seen)


class TestCancellation:
    def test_cancelling_the_consumer_propagates_and_leaves_no_call_running(self, vrun: Run) -> None:
        """A consumer cancelled while batches are out gets CancelledError, and by then every
        call it sent has ended: none outlives the stage."""
        client = FakeClient(dying=set(), latency_s=3600)

        async def main() -> list[int]:
            task = asyncio.create_task(collect(runner_on(client, batch_size=5), numbers(40)))
            await asyncio.sleep(1)  # every batch that may go is out, and waiting
            assert all(a.running for a in client.actors.values())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return [a.running for a in client.actors.values()]

        assert [0, 0] == vrun(main())

    def test_closing_the_stage_early_cancels_and_awaits_its_calls(self, vrun: Run) -> None:
        """A consumer that stops after the first outcome (aclose) leaves no call running and
        no pump feeding the stage."""
        client = FakeClient(dying=set(), latency_s=1)
        pulled: list[int] = []

        async def upstream() -> AsyncIterator[int]:
            for i in range(1000):
                pulled.append(i)
                yield i

        async def main() -> tuple[Outcome, list[int], int]:
            runner = runner_on(client, batch_size=5)
            stage = ss.Stage(abs, name="double", runner=runner)
            results = runner.run_stage(stage, upstream(), values)
            first = await anext(results)
            await results.aclose()
            taken = len(pulled)
            await asyncio.sleep(10)  # a pump still running would take more meanwhile
            return first, [a.running for a in client.actors.values()], len(pulled) - taken

        first, running, more = vrun(main())
        assert first[1] is True
        assert [0, 0] == running
        assert 0 == more
