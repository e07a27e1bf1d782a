"""Lane: a bound shared across loops and threads; waiters queue first come first served, and
no mix of holding, releasing and cancelling ever exceeds the limit or leaks a slot."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from slipstream._impl.loop.lanes import Lane, _Waiter, lane_named

Run = Callable[[Coroutine[Any, Any, Any]], Any]

# per task: (steps it holds the slot, steps after which it is cancelled, or None)
plans = st.lists(
    st.tuples(st.integers(0, 4), st.none() | st.integers(0, 6)), min_size=1, max_size=12
)


class TestLane:
    @settings(max_examples=150, deadline=None)
    @given(limit=st.integers(1, 4), tasks=plans)
    def test_never_over_the_limit_and_nothing_leaks(
        self, limit: int, tasks: list[tuple[int, int | None]]
    ) -> None:
        """Tasks that hold a slot for a few loop steps, some cancelled while waiting or
        holding, never have more than `limit` inside at once, and leave the lane empty."""
        from slipstream import testing

        lane = Lane("prop", limit, explicit=True)
        inside = 0
        seen: list[int] = []

        async def worker(hold: int) -> None:
            nonlocal inside
            await lane.acquire()
            inside += 1
            seen.append(inside)
            try:
                for _ in range(hold):
                    await asyncio.sleep(0)
            finally:
                inside -= 1
                lane.release()

        async def main() -> None:
            running = [asyncio.create_task(worker(hold)) for hold, _ in tasks]
            for step in range(8):
                for task, (_, cancel_at) in zip(running, tasks, strict=True):
                    if cancel_at == step:
                        task.cancel()
                assert lane.statistics().running <= limit
                await asyncio.sleep(0)
            # virtual time: a leaked slot leaves a waiter stuck, and this times out at once
            await asyncio.wait_for(asyncio.gather(*running, return_exceptions=True), 60)

        testing.run(main(), virtual_clock=True)
        assert max(seen, default=0) <= limit
        after = lane.statistics()
        assert (0, 0) == (after.running, after.waiting)
        assert after.peak_running <= limit

    def test_waiters_are_served_in_arrival_order(self, vrun: Run) -> None:
        """With the lane full, waiting calls get the slot in the order they asked for it."""
        lane = Lane("fifo", 1, explicit=True)
        order: list[int] = []

        async def worker(i: int) -> None:
            await lane.acquire()
            order.append(i)
            await asyncio.sleep(0)
            lane.release()

        async def main() -> None:
            await asyncio.gather(*(worker(i) for i in range(6)))

        vrun(main())
        assert [0, 1, 2, 3, 4, 5] == order

    def test_release_from_another_thread_wakes_the_loop(self, vrun: Run) -> None:
        """A slot released by a plain thread (as a worker does when its call ends) wakes the
        call waiting on the loop."""
        lane = Lane("threaded", 1, explicit=True)

        async def main() -> int:
            await lane.acquire()
            waiting = asyncio.create_task(lane.acquire())
            await asyncio.sleep(0)
            assert 1 == lane.statistics().waiting
            releaser = threading.Thread(target=lane.release)
            releaser.start()
            await waiting
            releaser.join()
            lane.release()
            return lane.statistics().running

        assert 0 == vrun(main())

    def test_a_waiter_whose_loop_closed_is_skipped(self) -> None:
        """A waiter left behind by a loop that was closed is passed over: the slot goes to the
        next live waiter or back to the lane, never lost."""
        lane = Lane("closed", 1, explicit=True)
        dead = asyncio.new_event_loop()
        dead.run_until_complete(lane.acquire())  # a slot held, as by a running call
        lane._waiters.append(_Waiter(dead))  # a waiter of that loop, then the loop closes
        dead.close()
        assert 1 == lane.statistics().waiting
        lane.release()
        assert (0, 0) == (lane.statistics().running, lane.statistics().waiting)

    def test_raising_a_default_limit_admits_waiters(self, vrun: Run) -> None:
        """A lane made with the default limit admits its waiters as soon as an explicit, larger
        limit is given."""
        lane = lane_named("t-raise", None)

        async def main() -> int:
            await lane.acquire()
            waiting = asyncio.create_task(lane.acquire())
            await asyncio.sleep(0)
            lane_named("t-raise", 2)
            await waiting
            return lane.statistics().running

        assert 2 == vrun(main())
