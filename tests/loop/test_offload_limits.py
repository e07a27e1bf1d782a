"""offload limits: a function's or a lane's calls run at most `limit` at once, the rest wait on
the loop; lanes span functions, loops and threads; cancellation takes or leaks no slot."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def square(x: int) -> int:
    return x * x


def fail(x: int) -> int:
    raise ValueError(f"bad {x}")


class Gate:
    """Worker calls that block until released, counting how many ever ran at once."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.open = threading.Event()
        self._lock = threading.Lock()
        self.now = self.peak = self.calls = 0

    def __call__(self, value: int = 0) -> int:
        with self._lock:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)
        self.entered.release()
        try:
            if not self.open.wait(10):
                raise TimeoutError("the gate was never opened")
            return value
        finally:
            with self._lock:
                self.now -= 1

    async def wait_entered(self, n: int) -> None:
        """Wait (off the loop) until ``n`` more calls have entered."""

        def take() -> None:
            for _ in range(n):
                assert self.entered.acquire(timeout=5), "a call never entered"

        await asyncio.to_thread(take)

    def more_entered(self) -> bool:
        return self.entered.acquire(blocking=False)


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open.set()  # never leave a worker thread blocked behind a failed test


def stats(lane: str) -> ss.OffloadStatistics:
    return ss.offload_statistics()[lane]


class TestLimit:
    def test_at_most_limit_run_the_rest_wait(self, vrun: Run, gate: Gate) -> None:
        """With limit=2, five calls run two at a time: two enter, three wait on the loop; all
        five finish once released, and no more than two ever ran at once."""

        @ss.nonblocking(limit=2)
        def export(n: int) -> int:
            return gate(n)

        async def main() -> tuple[ss.OffloadStatistics, bool, list[int]]:
            tasks = [asyncio.create_task(export(i)) for i in range(5)]
            await gate.wait_entered(2)
            await asyncio.sleep(0)
            during = stats(export.__module__ + "." + export.__qualname__)
            third = gate.more_entered()
            gate.open.set()
            return during, third, list(await asyncio.gather(*tasks))

        during, third, results = vrun(main())
        assert (2, 3, 2) == (during.running, during.waiting, during.limit)
        assert not third
        assert [0, 1, 2, 3, 4] == results
        assert (2, 5) == (gate.peak, gate.calls)
        after = stats(export.__module__ + "." + export.__qualname__)
        assert (0, 0, 2, 5) == (after.running, after.waiting, after.peak_running, after.calls)

    def test_offload_limit_is_per_function(self, vrun: Run, gate: Gate) -> None:
        """ss.offload(fn, limit=1) bounds fn's calls in a lane named after fn, while another
        function's calls are not held back by it."""

        def held(n: int) -> int:
            return gate(n)

        async def main() -> tuple[int, int, int]:
            a = asyncio.create_task(ss.offload(held, 1, limit=1))
            b = asyncio.create_task(ss.offload(held, 2, limit=1))
            await gate.wait_entered(1)
            other = await ss.offload(square, 3, limit=1)  # its own lane: runs at once
            lane = stats(f"{__name__}.{held.__qualname__}")
            assert (1, 1) == (lane.running, lane.waiting)
            gate.open.set()
            return await a, await b, other

        assert (1, 2, 9) == vrun(main())
        assert 1 == gate.peak

    def test_a_failing_call_gives_its_slot_back(self, vrun: Run) -> None:
        """An exception in the worker is raised to the caller and frees the slot."""

        async def main() -> int:
            with pytest.raises(ValueError, match="bad 1"):
                await ss.offload(fail, 1, lane="t-fail", limit=1)
            return await ss.offload(square, 4, lane="t-fail")

        assert 16 == vrun(main())
        assert 0 == stats("t-fail").running

    def test_process_calls_in_a_lane(self, arun: Run) -> None:
        """kind="process" honours the lane too and releases each slot when its result (or its
        error) comes back."""

        async def main() -> list[int]:
            with pytest.raises(ValueError, match="bad 2"):
                await ss.offload(fail, 2, kind="process", lane="t-proc", limit=1)
            calls = (ss.offload(square, i, kind="process", lane="t-proc") for i in range(4))
            return list(await asyncio.gather(*calls))

        assert [0, 1, 4, 9] == arun(main())
        lane = stats("t-proc")
        assert (0, 0, 1, 5) == (lane.running, lane.waiting, lane.peak_running, lane.calls)


class TestLanes:
    def test_a_lane_is_shared_across_functions(self, vrun: Run, gate: Gate) -> None:
        """Two decorated functions and a plain offload naming one lane share its bound."""

        @ss.nonblocking(lane="t-export", limit=1)
        def csv_export(n: int) -> int:
            return gate(n)

        @ss.nonblocking(lane="t-export")
        def zip_export(n: int) -> int:
            return gate(n)

        async def main() -> list[int]:
            tasks = [
                asyncio.create_task(csv_export(1)),
                asyncio.create_task(zip_export(2)),
                asyncio.create_task(ss.offload(gate, 3, lane="t-export")),
            ]
            await gate.wait_entered(1)
            await asyncio.sleep(0)
            lane = stats("t-export")
            assert (1, 2) == (lane.running, lane.waiting)
            assert not gate.more_entered()
            gate.open.set()
            return list(await asyncio.gather(*tasks))

        assert [1, 2, 3] == vrun(main())
        assert 1 == gate.peak

    def test_a_lane_used_by_two_loops_in_sequence(self, vrun: Run, arun: Run) -> None:
        """The same lane serves one loop, then another: nothing in it is bound to the first."""

        async def main() -> list[int]:
            calls = (ss.offload(square, i, lane="t-seq", limit=1) for i in range(3))
            return list(await asyncio.gather(*calls))

        assert [0, 1, 4] == vrun(main())
        assert [0, 1, 4] == arun(main())
        assert 6 == stats("t-seq").calls

    def test_a_slot_freed_on_one_loop_wakes_a_waiter_on_another(
        self, arun: Run, gate: Gate
    ) -> None:
        """A call from a loop in another thread holds the lane; a call from this loop waits,
        and is woken when the other loop's call ends."""
        holder = threading.Thread(
            target=lambda: asyncio.run(ss.offload(gate, 1, lane="t-cross", limit=1))
        )
        holder.start()
        try:
            assert gate.entered.acquire(timeout=5)

            async def main() -> int:
                waiting = asyncio.create_task(ss.offload(square, 5, lane="t-cross"))
                await asyncio.sleep(0.01)
                assert (1, 1) == (stats("t-cross").running, stats("t-cross").waiting)
                gate.open.set()
                return await waiting

            assert 25 == arun(main())
        finally:
            gate.open.set()
            holder.join(5)

    def test_a_lane_limit_is_given_once(self) -> None:
        """A lane's limit, once given, cannot be changed to another value (the same one is
        fine); a lane first used without one takes the first explicit limit."""
        ss.nonblocking(lane="t-once", limit=2)(square)
        ss.nonblocking(lane="t-once", limit=2)(square)
        with pytest.raises(ValueError, match="'limit' of lane 't-once' is already 2"):
            ss.nonblocking(lane="t-once", limit=3)(square)
        ss.nonblocking(lane="t-later")(square)
        assert 1 == stats("t-later").limit
        ss.nonblocking(lane="t-later", limit=4)(square)
        assert 4 == stats("t-later").limit

    def test_cpu_kind_runs_in_the_cpu_lane_one_at_a_time(self, vrun: Run, gate: Gate) -> None:
        """kind="cpu" puts calls in the "cpu" lane, which runs one call at a time by default."""

        async def main() -> list[int]:
            tasks = [asyncio.create_task(ss.offload(gate, i, kind="cpu")) for i in range(3)]
            await gate.wait_entered(1)
            await asyncio.sleep(0)
            lane = stats("cpu")
            assert (1, 1, 2) == (lane.limit, lane.running, lane.waiting)
            gate.open.set()
            return list(await asyncio.gather(*tasks))

        assert [0, 1, 2] == vrun(main())
        assert 1 == gate.peak


class TestCancellation:
    def test_cancelling_a_waiting_call_takes_and_releases_nothing(
        self, vrun: Run, gate: Gate
    ) -> None:
        """A call cancelled while it waits for a slot never runs, leaves the queue, and leaves
        the running call's slot alone; the next call gets the slot when that one ends."""
        ran: list[int] = []

        def record(n: int) -> int:
            ran.append(n)
            return n

        async def main() -> int:
            first = asyncio.create_task(ss.offload(gate, 1, lane="t-cw", limit=1))
            await gate.wait_entered(1)
            second = asyncio.create_task(ss.offload(record, 2, lane="t-cw"))
            await asyncio.sleep(0)
            assert 1 == stats("t-cw").waiting
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            assert (1, 0) == (stats("t-cw").running, stats("t-cw").waiting)
            gate.open.set()
            await first
            return await ss.offload(record, 3, lane="t-cw")

        assert 3 == vrun(main())
        assert [3] == ran
        assert 0 == stats("t-cw").running

    def test_cancelling_a_running_call_keeps_its_slot_until_the_thread_ends(
        self, vrun: Run, gate: Gate
    ) -> None:
        """Cancelling the await of a running call returns at once, but the thread still runs,
        so its slot stays taken (a new call waits) until the thread really finishes."""

        async def main() -> int:
            running = asyncio.create_task(ss.offload(gate, 1, lane="t-cr", limit=1))
            await gate.wait_entered(1)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            after = asyncio.create_task(ss.offload(square, 6, lane="t-cr"))
            await asyncio.sleep(0)
            assert (1, 1) == (stats("t-cr").running, stats("t-cr").waiting)
            gate.open.set()  # the thread ends: its slot goes to the waiting call
            return await after

        assert 36 == vrun(main())
        assert 0 == stats("t-cr").running


class TestBadInput:
    @pytest.mark.parametrize(
        ("options", "error", "name"),
        [
            ({"limit": 0}, ValueError, "'limit'"),
            ({"limit": "2"}, TypeError, "'limit'"),
            ({"limit": True}, TypeError, "'limit'"),
            ({"lane": 3}, TypeError, "'lane'"),
            ({"lane": ""}, ValueError, "'lane'"),
            ({"nice": -1}, ValueError, "'nice'"),
            ({"nice": 20}, ValueError, "'nice'"),
            ({"nice": 1.5}, TypeError, "'nice'"),
            ({"kind": "fiber"}, ValueError, "'kind'"),
        ],
    )
    def test_a_bad_option_is_named(
        self, vrun: Run, options: dict[str, Any], error: type[Exception], name: str
    ) -> None:
        """A wrong limit, lane, nice or kind raises naming the parameter, from the decorator
        (when it is made) and from offload."""
        with pytest.raises(error, match=name):
            ss.nonblocking(**options)
        with pytest.raises(error, match=name):
            vrun(ss.offload(square, 2, **options))

    def test_the_decorator_refuses_process_and_non_plain_functions(self) -> None:
        """@nonblocking(kind="process") is refused with a hint, and so are coroutine and
        generator functions (offloading them would leave their body on the loop)."""

        async def already_async() -> None:
            return None

        def rows() -> Iterator[int]:
            yield 1

        with pytest.raises(ValueError, match=r"'kind'.*\nHINT: call await ss\.offload"):
            ss.nonblocking(kind="process")  # type: ignore[call-overload]
        with pytest.raises(TypeError, match=r"coroutine function.*\nHINT"):
            ss.nonblocking(limit=2)(already_async)
        with pytest.raises(TypeError, match=r"generator function.*\nHINT"):
            ss.nonblocking(rows)
        with pytest.raises(TypeError, match=r"generator function.*\nHINT"):
            ss.nonblocking(lane="t-gen")(rows)

    def test_bare_and_empty_parentheses_both_decorate(self, vrun: Run) -> None:
        """@ss.nonblocking and @ss.nonblocking() both give an awaitable with the name kept."""
        bare = ss.nonblocking(square)
        empty = ss.nonblocking()(square)

        async def main() -> tuple[int, int]:
            return await bare(3), await empty(4)

        assert (9, 16) == vrun(main())
        assert ("square", "square") == (bare.__name__, empty.__name__)
