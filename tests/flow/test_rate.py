"""Rate and RateLimiter: the window guarantee, FIFO order, weights, sharing, cancellation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def max_in_window(grants: list[tuple[float, float]], rate: ss.Rate) -> float:
    """Largest excess of units started in any closed window over the stated guarantee."""
    grants = sorted(grants)
    worst = -math.inf
    for i in range(len(grants)):
        units = 0.0
        for j in range(i, len(grants)):
            units += grants[j][1]
            allowed = rate.max_starts(grants[j][0] - grants[i][0])
            worst = max(worst, units - allowed)
    return worst


async def grant_times(limiter: ss.RateLimiter, n: int) -> list[float]:
    """Loop times at which ``n`` simultaneous callers got their unit, in grant order."""
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(n)))
    return times


class TestRate:
    def test_per_minute_is_converted(self) -> None:
        """per_minute is stored as units per second."""
        assert 10.0 == ss.Rate(per_minute=600).per_second

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"per_second": 0}, "per_second"),
            ({"per_second": -1}, "per_second"),
            ({"per_second": math.inf}, "per_second"),
            ({"per_minute": 0}, "per_minute"),
            ({"per_second": 1, "burst": 0.5}, "burst"),
        ],
    )
    def test_bad_values_name_the_parameter(self, kwargs: dict[str, float], name: str) -> None:
        """A non-positive rate or a burst below 1 raises ValueError naming the parameter."""
        with pytest.raises(ValueError, match=f"'{name}'"):
            ss.Rate(**kwargs)

    def test_both_or_neither_rate(self) -> None:
        """Exactly one of per_second and per_minute is required."""
        with pytest.raises(ValueError, match="exactly one"):
            ss.Rate()
        with pytest.raises(ValueError, match="exactly one"):
            ss.Rate(per_second=1, per_minute=60)

    def test_wrong_type(self) -> None:
        """A string rate raises TypeError naming the parameter."""
        with pytest.raises(TypeError, match="'per_second'"):
            ss.Rate("10")  # type: ignore[arg-type]

    def test_guarantee_formula(self) -> None:
        """max_starts is floor(T * rate) + burst."""
        assert 101 == ss.Rate(per_second=100, burst=1).max_starts(1.0)
        assert 6 == ss.Rate(per_second=2, burst=4).max_starts(1.4)


class TestRateLimiter:
    def test_evenly_spaced_after_burst(self, vrun: Run) -> None:
        """With burst 1 at 10/s, ten simultaneous callers start 0.1 s apart from t=0."""

        times = vrun(grant_times(ss.RateLimiter(ss.Rate(per_second=10)), 10))
        assert [round(0.1 * i, 9) for i in range(10)] == [round(t, 9) for t in times]

    def test_burst_starts_at_once(self, vrun: Run) -> None:
        """A full bucket of 5 lets 5 start at once, then one per interval."""

        times = vrun(grant_times(ss.RateLimiter(ss.Rate(per_second=10, burst=5)), 7))
        assert [0.0] * 5 + [0.1, 0.2] == [round(t, 9) for t in times]

    def test_fifo_with_weights(self, vrun: Run) -> None:
        """A heavy waiter at the head is not overtaken by light ones behind it."""

        async def main() -> list[str]:
            limiter = ss.RateLimiter(ss.Rate(per_second=10, burst=10))
            await limiter.acquire(10)  # empty the bucket
            order: list[str] = []

            async def one(name: str, weight: float) -> None:
                await limiter.acquire(weight)
                order.append(name)

            async with asyncio.TaskGroup() as tg:
                tg.create_task(one("heavy", 8))
                await asyncio.sleep(0)
                tg.create_task(one("light1", 1))
                tg.create_task(one("light2", 1))
            return order

        assert ["heavy", "light1", "light2"] == vrun(main())

    def test_weight_above_burst_is_rejected(self, vrun: Run) -> None:
        """A weight that could never fit in the bucket raises ValueError naming 'weight'."""

        async def main() -> None:
            limiter = ss.RateLimiter(ss.Rate(per_second=10, burst=3))
            await limiter.acquire(4)

        with pytest.raises(ValueError, match="'weight'"):
            vrun(main())
        with pytest.raises(ValueError, match="'weight'"):
            ss.RateLimiter(ss.Rate(per_second=10, burst=3)).try_acquire(0)

    def test_cancelled_head_hands_on_its_turn(self, vrun: Run) -> None:
        """Cancelling the waiting head lets the next waiter go at the head's time."""

        async def main() -> float:
            limiter = ss.RateLimiter(ss.Rate(per_second=1))
            await limiter.acquire()  # bucket empty until t=1
            loop = asyncio.get_running_loop()
            head = asyncio.create_task(limiter.acquire())
            await asyncio.sleep(0)
            second = asyncio.create_task(limiter.acquire())
            await asyncio.sleep(0.5)
            head.cancel()
            await second
            return loop.time()

        assert 1.0 == pytest.approx(vrun(main()))

    def test_cancelled_middle_waiter_is_skipped(self, vrun: Run) -> None:
        """A cancelled waiter in the middle of the queue takes no tokens."""

        async def main() -> list[float]:
            limiter = ss.RateLimiter(ss.Rate(per_second=1))
            await limiter.acquire()
            loop = asyncio.get_running_loop()
            tasks = [asyncio.create_task(limiter.acquire()) for _ in range(3)]
            await asyncio.sleep(0)
            tasks[1].cancel()
            done: list[float] = []
            for task in (tasks[0], tasks[2]):
                await task
                done.append(round(loop.time(), 9))
            return done

        assert [1.0, 2.0] == vrun(main())

    def test_shared_by_two_maps(self, vrun: Run) -> None:
        """One limiter shared by two concurrent maps holds the combined rate."""

        async def main() -> list[float]:
            limiter = ss.RateLimiter(ss.Rate(per_second=20))
            loop = asyncio.get_running_loop()
            starts: list[float] = []

            async def call(_: int) -> None:
                starts.append(loop.time())

            await asyncio.gather(
                ss.map(call, range(30), concurrency=5, rate=limiter),
                ss.map(call, range(30), concurrency=5, rate=limiter),
            )
            return starts

        starts = vrun(main())
        assert 60 == len(starts)
        assert max_in_window([(t, 1.0) for t in starts], ss.Rate(per_second=20)) <= 1e-9
        assert 59 / 20 == pytest.approx(max(starts))

    def test_no_waits_in_testing_mode(self, vrun: Run) -> None:
        """testing.no_waits() turns waiting off: 100 acquires at 1/s take no time."""

        async def main() -> float:
            limiter = ss.RateLimiter(ss.Rate(per_second=1))
            with testing.no_waits():
                for _ in range(100):
                    await limiter.acquire()
            return asyncio.get_running_loop().time()

        assert 0.0 == vrun(main())

    def test_statistics_and_repr(self, vrun: Run) -> None:
        """statistics() counts acquisitions and units; repr shows live state."""

        async def main() -> ss.RateLimiterStatistics:
            limiter = ss.RateLimiter(ss.Rate(per_second=10, burst=4))
            await limiter.acquire(2)
            await limiter.acquire(1)
            assert "acquired=2" in repr(limiter)
            return limiter.statistics()

        stats = vrun(main())
        assert (2, 3.0, 0) == (stats.acquired, stats.units, stats.waiting)
        assert 1.0 == pytest.approx(stats.available)

    def test_late_wakeup_is_forgiven_up_to_slack(self, vrun: Run) -> None:
        """A waiter woken 3 ms late is granted as of 2 ms late (the slack), not on time and
        not at its late wake-up: the next waiter is due 10 ms after that."""

        async def main() -> list[float]:
            loop = asyncio.get_running_loop()
            assert isinstance(loop, testing.VirtualClockLoop)
            limiter = ss.RateLimiter(ss.Rate(per_second=100), slack_s=0.002)
            await limiter.acquire()  # t=0; next due at 0.010
            grants: list[float] = []

            async def blocker() -> None:
                await asyncio.sleep(0.009)
                loop.advance(0.004)  # a blocking callback: the loop is late to 0.013

            async def waiter() -> None:
                await limiter.acquire()
                grants.append(round(loop.time(), 9))

            await asyncio.gather(blocker(), waiter(), waiter())
            return grants

        assert [0.013, 0.021] == vrun(main())

    def test_bad_slack(self) -> None:
        """slack_s outside [0, 1] is rejected by name."""
        with pytest.raises(ValueError, match="'slack_s'"):
            ss.RateLimiter(ss.Rate(1), slack_s=-0.1)

    def test_not_a_rate(self) -> None:
        """RateLimiter(10) raises TypeError with a hint."""
        with pytest.raises(TypeError, match="HINT"):
            ss.RateLimiter(10)  # type: ignore[arg-type]

    def test_works_under_uvloop(self) -> None:
        """The limiter spaces starts under uvloop too (real time, tolerant)."""
        uvloop = pytest.importorskip("uvloop")

        limiter = ss.RateLimiter(ss.Rate(per_second=50))
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            times = runner.run(grant_times(limiter, 10))
        assert 10 == len(times)
        assert 9 / 50 - 0.01 <= times[-1] - times[0] <= 9 / 50 + 0.1


arrivals = st.lists(
    st.tuples(st.floats(0, 2, allow_nan=False), st.sampled_from([1.0, 1.0, 2.0, 3.0])),
    min_size=1,
    max_size=40,
)


class TestRateLimiterProperties:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        arrivals=arrivals,
        per_second=st.sampled_from([0.5, 3.0, 10.0, 97.0]),
        burst=st.sampled_from([3.0, 4.0, 10.0]),
    )
    def test_window_fifo_and_no_idle_wait(
        self, arrivals: list[tuple[float, float]], per_second: float, burst: float
    ) -> None:
        """For any arrivals and weights: every window holds at most floor(T*r)+burst units,
        grants follow call order, and nobody waits longer than its own refill after the
        previous grant."""
        rate = ss.Rate(per_second=per_second, burst=burst)

        async def main() -> list[tuple[int, float, float, float]]:
            limiter = ss.RateLimiter(rate)
            loop = asyncio.get_running_loop()
            calls: list[int] = []
            grants: list[tuple[int, float, float, float]] = []

            async def one(at: float, weight: float) -> None:
                await asyncio.sleep(at)
                seq = len(calls)
                calls.append(seq)
                called = loop.time()
                await limiter.acquire(weight)
                grants.append((seq, loop.time(), weight, called))

            await asyncio.gather(*(one(at, w) for at, w in arrivals))
            return grants

        grants = testing.run(main(), virtual_clock=True)
        assert len(arrivals) == len(grants)
        assert max_in_window([(t, w) for _, t, w, _ in grants], rate) <= 1e-6
        by_call = sorted(grants)
        assert [g[1] for g in by_call] == sorted(g[1] for g in by_call)
        previous = -math.inf
        for _, granted, weight, called in by_call:
            bound = max(called, previous + weight / per_second)
            assert granted <= bound + 1e-6
            previous = granted

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        arrivals=arrivals,
        per_second=st.sampled_from([0.5, 3.0, 10.0, 97.0]),
        burst=st.sampled_from([3.0, 4.0, 10.0]),
    )
    def test_try_acquire_admits_within_the_guarantee_and_its_wait_is_honest(
        self, arrivals: list[tuple[float, float]], per_second: float, burst: float
    ) -> None:
        """Admission control (a server's 429): what it admits keeps the window guarantee; a
        refusal takes nothing, and retrying after the returned wait is admitted."""
        rate = ss.Rate(per_second=per_second, burst=burst)

        async def main() -> tuple[list[tuple[float, float]], list[bool]]:
            limiter = ss.RateLimiter(rate)
            loop = asyncio.get_running_loop()
            admitted: list[tuple[float, float]] = []
            honest: list[bool] = []
            for at, weight in sorted(arrivals):
                await asyncio.sleep(max(0.0, at - loop.time()))
                wait = limiter.try_acquire(weight)
                if wait == 0.0:
                    admitted.append((loop.time(), weight))
                    continue
                assert wait > 0
                await asyncio.sleep(wait)
                honest.append(limiter.try_acquire(weight) == 0.0)
                if honest[-1]:
                    admitted.append((loop.time(), weight))
            return admitted, honest

        admitted, honest = testing.run(main(), virtual_clock=True)
        assert max_in_window(admitted, rate) <= 1e-6
        assert all(honest)


class TestClosedLoops:
    def test_waiters_left_by_a_closed_loop_do_not_hold_up_the_next(self) -> None:
        """A module-level limiter whose loop closed with three waiters queued (not cancelled)
        serves the next loop's caller after one interval, instead of hanging behind them."""
        limiter = ss.RateLimiter(ss.Rate(per_second=10))
        left: list[asyncio.Task[float]] = []

        async def queue_and_leave() -> None:
            await limiter.acquire()
            left.extend(asyncio.create_task(limiter.acquire()) for _ in range(3))
            await asyncio.sleep(0)  # they are queued; the loop then closes under them

        loop = testing.VirtualClockLoop()
        try:
            loop.run_until_complete(queue_and_leave())
        finally:
            loop.close()
        assert all(not t.done() for t in left)

        async def next_run() -> float:
            assert 0 == limiter.statistics().waiting  # the dead loop's waiters do not count
            return await asyncio.wait_for(limiter.acquire(), 5)

        assert testing.run(next_run(), virtual_clock=True) <= 0.1
        left.clear()
