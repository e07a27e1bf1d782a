"""Single flight: concurrent misses of one key run one load, on an event loop or across
threads; cancelled waiters, abandoned loads and closed loops leave no one stranded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import slipstream as ss

from .helpers import Loader, Run


class TestSingleFlight:
    def test_thousand_concurrent_misses_one_computation(self, vrun: Run) -> None:
        """1,000 concurrent misses of one key run the loader once and all get its value."""
        loader = Loader()
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> set[Any]:
            return set(await asyncio.gather(*(fn(7) for _ in range(1000))))

        assert {("value", 7, 1)} == vrun(main())
        assert 1 == loader.calls
        assert 999 == fn.cache.statistics().joins  # type: ignore[attr-defined]

    def test_cancelling_some_waiters_spares_the_others(self, vrun: Run) -> None:
        """Cancelling 10% of the waiters mid-flight leaves the computation and the rest alone."""
        loader = Loader(delay_s=1.0)
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> list[Any]:
            tasks = [asyncio.create_task(fn(1)) for _ in range(100)]
            await asyncio.sleep(0.5)
            for task in tasks[:10]:
                task.cancel()
            return await asyncio.gather(*tasks, return_exceptions=True)

        results = vrun(main())
        assert 10 == sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert 90 == results.count(("value", 1, 1))
        assert (1, 0) == (loader.calls, loader.cancelled)

    def test_last_waiter_leaving_cancels_the_computation(self, vrun: Run) -> None:
        """When every waiter is cancelled, the computation is cancelled too, and not cached."""
        loader = Loader(delay_s=1.0)
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> Any:
            tasks = [asyncio.create_task(fn(1)) for _ in range(3)]
            await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)
            return await fn(1)

        assert ("value", 1, 2) == vrun(main())
        assert 1 == loader.cancelled

    def test_failure_reaches_all_waiters_and_is_not_cached(self, vrun: Run) -> None:
        """A failing loader's error goes to every waiter; the next call computes again."""
        loader = Loader(fail=True)
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> list[Any]:
            first = await asyncio.gather(*(fn(1) for _ in range(5)), return_exceptions=True)
            second = await asyncio.gather(fn(1), return_exceptions=True)
            return first + second

        results = vrun(main())
        assert all(isinstance(r, ConnectionError) for r in results)
        assert 2 == loader.calls

    def test_joins_are_not_misses(self, vrun: Run) -> None:
        """1,000 concurrent lookups of one key: one miss (the load) and 999 joins."""
        loader = Loader()
        fn = ss.cached(ttl_s=60)(loader.__call__)

        async def main() -> None:
            await asyncio.gather(*(fn(7) for _ in range(1000)))
            await fn(7)

        vrun(main())
        stats = fn.cache.statistics()
        assert (1, 999, 1) == (stats.misses, stats.joins, stats.hits)


class TestThreads:
    """Sync functions and get_or_load_sync share one load across threads."""

    @pytest.mark.realtime
    def test_sync_function_single_flight_across_threads(self) -> None:
        """20 threads missing one key together run the sync function once: the load is held
        until the other 19 have joined its flight (counted), so they overlap for certain."""
        calls = []
        release = threading.Event()
        results: list[int] = []

        @ss.cached(ttl_s=60)
        def slow(x: int) -> int:
            calls.append(x)
            assert release.wait(10)
            return x * 2

        stats = together(20, lambda: results.append(slow(4)), slow.cache, release)
        assert (1, 19) == (stats.misses, stats.joins)
        assert [8] * 20 == results
        assert [4] == calls

    @pytest.mark.realtime
    def test_sync_joins_are_not_misses(self) -> None:
        """8 threads missing one key together count one miss (the load) and 7 joins, not 8
        misses, also once the load has finished."""
        gate = threading.Event()
        fn = ss.cached(ttl_s=60)(lambda x: gate.wait(10) and x)
        together(8, lambda: fn(1), fn.cache, gate)
        stats = fn.cache.statistics()
        assert (1, 7) == (stats.misses, stats.joins)


def together(
    n: int, call: Callable[[], object], cache: ss.Cache, release: threading.Event
) -> ss.CacheStatistics:
    """Run ``call`` in ``n`` threads started at once (a barrier); once ``n - 1`` of them have
    joined the first one's load (10 s at most), take the statistics, set ``release`` and wait
    for every thread."""
    start = threading.Barrier(n)

    def caller() -> None:
        start.wait()
        call()

    threads = [threading.Thread(target=caller) for _ in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while cache.statistics().joins < n - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    stats = cache.statistics()
    release.set()
    for t in threads:
        t.join()
    return stats


class TestAbandonedFlights:
    """A caller that was never cancelled never gets CancelledError."""

    @pytest.mark.parametrize("via", ["get_or_load", "cached"])
    def test_a_caller_one_step_after_the_last_waiter_left_starts_afresh(
        self, vrun: Run, via: str
    ) -> None:
        """The last waiter is cancelled (so the load is); a caller arriving in the very next
        loop step, before the load's done-callback ran, gets a fresh load's value."""
        loader = Loader(delay_s=1.0)
        cache = ss.Cache(ttl_s=60)
        fn = ss.cached(cache)(loader.__call__)

        def call() -> Any:
            if via == "cached":
                return fn(7)
            return cache.get_or_load(7, lambda: loader(7))

        async def main() -> Any:
            first = asyncio.create_task(call())
            await asyncio.sleep(0)  # the load is in flight, `first` waits on it
            first.cancel()
            second = asyncio.create_task(call())  # runs right after first's cancellation
            with pytest.raises(asyncio.CancelledError):
                await first
            return await second

        assert ("value", 7, 2) == vrun(main())
        assert (2, 1) == (loader.calls, loader.cancelled)


class TestLoops:
    def test_module_level_cache_across_event_loops(self) -> None:
        """A decorated function keeps working across asyncio.run calls, even when a loop
        closed while a computation was in flight."""
        calls = []

        @ss.cached(ttl_s=60)
        async def slow(x: int) -> int:
            calls.append(x)
            await asyncio.sleep(0.05)
            return x

        async def abandon() -> None:
            asyncio.get_running_loop().create_task(slow(1))
            await asyncio.sleep(0.01)  # the loop closes with slow(1) in flight

        asyncio.run(abandon())
        assert 1 == asyncio.run(slow(1))
        assert 1 == asyncio.run(slow(1))
        assert [1, 1] == calls
        assert 1 / 3 == pytest.approx(slow.cache.statistics().hit_ratio)  # type: ignore[attr-defined]
