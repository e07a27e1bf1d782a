"""DataLoader dispatch: the exact bounds of when a batch goes (counted in loop iterations), with
one loader or several pending, and loaders that outlive their loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss
from slipstream import testing

from .test_loader import Recorder

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class CountingLoop(asyncio.SelectorEventLoop):
    """The stock loop, counting its iterations (deterministic: no clock involved)."""

    iterations = 0

    def _run_once(self) -> None:
        self.iterations += 1
        super()._run_once()  # type: ignore[misc]  # asyncio's private loop step


def run_counting(main: Callable[[CountingLoop], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, CountingLoop)
        return runner.run(main(loop))


class TestDispatch:
    """When a batch goes: the exact bound, with one loader or many."""

    @pytest.mark.parametrize("n_loaders", [1, 2, 4])
    def test_several_pending_loaders_dispatch_in_the_first_idle_iteration(
        self, n_loaders: int
    ) -> None:
        """One loader per type, all pending at once: every batch goes within two loop
        iterations (they used to count each other's settle callbacks as activity and wait
        for the 64-iteration cap)."""
        seen: list[int] = []

        async def main(loop: CountingLoop) -> None:
            async def batch(keys: list[int]) -> list[int]:
                seen.append(loop.iterations - start)
                return keys

            loaders = [ss.DataLoader(batch) for _ in range(n_loaders)]
            start = loop.iterations
            await asyncio.gather(*(loader.load(1) for loader in loaders))

        run_counting(main)
        assert n_loaders == len(seen)
        assert max(seen) <= 2

    def test_loads_behind_a_lock_held_across_a_yield_make_one_batch(self, vrun: Run) -> None:
        """200 tasks pass a shared lock (held across a yield) one by one, then load: one batch,
        since each iteration still brings a new key."""
        rec = Recorder()

        async def main() -> None:
            lock, loader = asyncio.Lock(), ss.DataLoader(rec)

            async def one(i: int) -> int:
                async with lock:
                    await asyncio.sleep(0)
                return await loader.load(i)

            await asyncio.gather(*(one(i) for i in range(200)))

        vrun(main())
        assert [list(range(200))] == rec.batches

    def test_a_loop_busy_with_unrelated_work_gets_its_batch_after_64_iterations(self) -> None:
        """A task that never stops yielding keeps the ready queue full: the batch goes after
        64 iterations in a row with no new key, as documented."""
        seen: list[int] = []

        async def main(loop: CountingLoop) -> None:
            stop = False

            async def spinner() -> None:
                while not stop:  # noqa: ASYNC110  # the point: a task that never stops yielding
                    await asyncio.sleep(0)

            async def batch(keys: list[int]) -> list[int]:
                seen.append(loop.iterations - start)
                return keys

            spin = asyncio.create_task(spinner())
            await asyncio.sleep(0)
            loader = ss.DataLoader(batch)
            start = loop.iterations
            await loader.load(1)
            stop = True
            await spin

        run_counting(main)
        assert 64 <= seen[0] <= 67

    def test_a_loop_that_keeps_loading_gets_its_batch_within_4096_iterations(self) -> None:
        """New keys every iteration, forever: the first batch still goes within the cap."""
        first_batch: list[int] = []

        async def main(loop: CountingLoop) -> None:
            stop = False

            async def batch(keys: list[int]) -> list[int]:
                first_batch.append(len(keys))
                return keys

            loader = ss.DataLoader(batch, batch_size=1_000_000)

            async def feeder() -> None:
                i = 0
                while not stop:
                    loader.load(i)
                    i += 1
                    await asyncio.sleep(0)

            feeding = asyncio.create_task(feeder())
            while not first_batch:  # noqa: ASYNC110  # one iteration at a time, on purpose
                await asyncio.sleep(0)
            stop = True
            await feeding

        run_counting(main)
        assert 4000 <= first_batch[0] <= 4100


class TestClosedLoops:
    """A loader used on a new loop after the old one closed with its keys pending."""

    def test_keys_left_by_a_closed_loop_do_not_hang_the_next(self) -> None:
        """A loader whose loop closed with a key queued and one in a batch serves the same
        keys on the next loop (it joined the dead loop's waiters and hung)."""
        rec = Recorder()
        stuck = [True]

        async def batch(keys: list[int]) -> dict[int, int]:
            if stuck[0]:
                await asyncio.Event().wait()  # the first loop closes while this waits
            return await rec(keys)

        loader = ss.DataLoader(batch)

        left: list[asyncio.Future[int]] = []

        async def leave() -> None:
            left.append(loader.load(1))  # in a batch that never ends
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            left.append(loader.load(2))  # queued, never dispatched

        loop = testing.VirtualClockLoop()
        try:
            loop.run_until_complete(leave())
        finally:
            loop.close()
        stuck[0] = False

        async def next_run() -> list[int]:
            return await asyncio.wait_for(loader.load_many([1, 2]), 5)

        assert [10, 20] == testing.run(next_run(), virtual_clock=True)
