"""ss.map and ss.stream: one outcome per item, bounded concurrency and memory, no lost errors."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class InFlight:
    """An async function that counts calls in flight and remembers the peak."""

    def __init__(self, delay_s: float = 0.01, fail: Callable[[int], bool] = lambda _: False):
        self.delay_s = delay_s
        self.fail = fail
        self.now = 0
        self.peak = 0
        self.calls = 0

    async def __call__(self, item: int) -> int:
        self.now += 1
        self.calls += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.delay_s)
            if self.fail(item):
                raise ValueError(f"bad {item}")
            return item * 2
        finally:
            self.now -= 1


class TestMap:
    def test_one_outcome_per_item_in_order(self, vrun: Run) -> None:
        """Every input yields one outcome, in input order, with value or exception."""
        fn = InFlight(fail=lambda i: i % 5 == 0)
        results = vrun(ss.map(fn, range(50), concurrency=7))
        assert [o.item for o in results] == list(range(50))
        assert [o.index for o in results] == list(range(50))
        for o in results:
            if o.item % 5 == 0:
                assert isinstance(o.error, ValueError)
                assert o.error.__traceback__ is not None
                with pytest.raises(ValueError, match=f"bad {o.item}"):
                    _ = o.value
            else:
                assert (o.item * 2, 1) == (o.value, o.attempts)
        assert (50, 40, 10) == (results.summary.total, results.summary.ok, results.summary.failed)

    def test_concurrency_is_a_hard_cap(self, vrun: Run) -> None:
        """Never more than `concurrency` calls in flight, and the cap is reached."""
        fn = InFlight()
        vrun(ss.map(fn, range(200), concurrency=13))
        assert 13 == fn.peak

    def test_values_raise_an_exception_group(self, vrun: Run) -> None:
        """values() raises FailedItems holding every failure and its outcome."""
        results = vrun(ss.map(InFlight(fail=lambda i: i in (3, 8)), range(10)))
        with pytest.raises(ss.FailedItems) as info:
            results.values()
        assert [o.item for o in info.value.outcomes] == [3, 8]
        assert 2 == len(info.value.exceptions)
        assert isinstance(info.value, ExceptionGroup)

    def test_all_ok_values(self, vrun: Run) -> None:
        """values() returns plain values when nothing failed; raise_failures() is silent."""
        results = vrun(ss.map(InFlight(), [1, 2, 3]))
        results.raise_failures()
        assert [2, 4, 6] == results.values()

    def test_empty_input(self, vrun: Run) -> None:
        """An empty input gives empty results."""
        results = vrun(ss.map(InFlight(), []))
        assert (0, 0) == (len(results), results.summary.total)

    def test_async_iterable_input(self, vrun: Run) -> None:
        """Async generators are consumed safely by several workers."""

        async def gen() -> AsyncIterator[int]:
            for i in range(30):
                await asyncio.sleep(0.001)
                yield i

        results = vrun(ss.map(InFlight(), gen(), concurrency=5))
        assert [i * 2 for i in range(30)] == results.values()

    def test_sync_function_runs_off_the_loop_with_context(self, arun: Run) -> None:
        """Sync functions run in the thread pool, never on the loop thread, with contextvars."""
        var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

        def work(item: int) -> tuple[int, str]:
            return threading.get_ident(), var.get()

        async def main() -> tuple[int, list[tuple[int, str]]]:
            var.set("propagated")
            results = await ss.map(work, range(20), concurrency=4)
            return threading.get_ident(), results.values()

        loop_thread, values = arun(main())
        assert all(tid != loop_thread for tid, _ in values)
        assert {"propagated"} == {v for _, v in values}

    def test_per_call_timeout(self, vrun: Run) -> None:
        """A call over timeout_s fails with TimeoutError noting the timeout."""

        async def slow(item: float) -> float:
            await asyncio.sleep(item)
            return item

        results = vrun(ss.map(slow, [0.1, 5.0], timeout_s=1))
        assert 0.1 == results[0].value
        assert isinstance(results[1].error, TimeoutError)
        assert any("timeout_s=1" in n for n in results[1].error.__notes__)

    def test_retry_counts_attempts(self, vrun: Run) -> None:
        """Transient failures are retried; the outcome and the summary count attempts."""
        seen: dict[int, int] = {}

        async def flaky(item: int) -> int:
            seen[item] = seen.get(item, 0) + 1
            if item % 2 and seen[item] < 3:
                raise ConnectionResetError
            return item

        results = vrun(ss.map(flaky, range(10), retry=ss.Retry(attempts=3)))
        assert list(range(10)) == results.values()
        assert [o.attempts for o in results] == [1, 3] * 5
        assert (5, 10) == (results.summary.retried, results.summary.retries)

    def test_default_budget_contains_an_outage(self, vrun: Run) -> None:
        """Against a dead service, 5 attempts per item cost at most 20% extra calls plus the
        budget's floor of 10 a second, not 400% extra."""
        calls = [0]

        async def dead(_: int) -> None:
            calls[0] += 1
            raise ConnectionResetError

        results = vrun(ss.map(dead, range(200), retry=ss.Retry(attempts=5), concurrency=10))
        assert 200 == results.summary.failed
        floor = 10 * (1 + results.summary.elapsed_s)
        assert 200 < calls[0] <= 200 + 0.2 * 200 + floor + 1
        assert calls[0] < 2 * 200
        assert any("budget" in n for o in results for n in getattr(o.error, "__notes__", []))

    def test_breaker_rejections_are_outcomes(self, vrun: Run) -> None:
        """Once the breaker opens, remaining items fail fast with CircuitOpen, counted."""
        calls = []

        async def down(item: int) -> int:
            calls.append(item)
            raise ConnectionError("down")

        breaker = ss.CircuitBreaker(failure_threshold=3, reset_timeout_s=60)
        results = vrun(ss.map(down, range(20), concurrency=1, breaker=breaker))
        assert 3 == len(calls)
        assert 17 == sum(isinstance(o.error, ss.CircuitOpen) for o in results)
        assert 17 == results.summary.rejected
        assert all(o.attempts == 0 for o in results if isinstance(o.error, ss.CircuitOpen))

    def test_rate_and_weight(self, vrun: Run) -> None:
        """Weighted items draw their weight from the limiter; the summary counts the wait."""
        starts: list[float] = []

        async def call(item: int) -> int:
            starts.append(asyncio.get_running_loop().time())
            return item

        rate = ss.Rate(per_second=10, burst=3)
        results = vrun(ss.map(call, [3, 3, 3], rate=rate, weight=float, concurrency=3))
        assert [round(s, 9) for s in sorted(starts)] == [0.0, 0.3, 0.6]
        assert 0.9 == pytest.approx(results.summary.rate_wait_s)

    def test_input_error_keeps_taken_outcomes(self, vrun: Run) -> None:
        """An input iterator that raises ends the map with InputError holding every outcome."""

        def items() -> Iterator[int]:
            yield from range(5)
            raise OSError("disk gone")

        with pytest.raises(ss.InputError) as info:
            vrun(ss.map(InFlight(), items(), concurrency=2))
        assert isinstance(info.value.__cause__, OSError)
        assert [0, 2, 4, 6, 8] == sorted(o.value for o in info.value.outcomes)

    def test_cancel_cancels_in_flight_and_leaks_no_task(self, arun: Run) -> None:
        """Cancelling a map cancels its calls and leaves no task behind (debug mode)."""
        cancelled = []

        async def slow(item: int) -> int:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(item)
                raise
            return item

        async def main() -> set[asyncio.Task[Any]]:
            task = asyncio.create_task(ss.map(slow, range(100), concurrency=8))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

        assert set() == arun(main())
        assert 8 == len(cancelled)

    def test_progress_callback(self, vrun: Run) -> None:
        """on_progress sees done counts 1..N and the total."""
        seen: list[tuple[int, int | None]] = []
        vrun(ss.map(InFlight(), range(5), on_progress=lambda d, t: seen.append((d, t))))
        assert [(i, 5) for i in range(1, 6)] == seen

    def test_rich_progress_bar(self, vrun: Run, capsys: pytest.CaptureFixture[str]) -> None:
        """progress=True draws a rich bar and still returns every outcome."""
        results = vrun(ss.map(InFlight(), range(5), progress=True))
        assert 5 == len(results)
        assert "5/5" in capsys.readouterr().out

    def test_env_knob_and_explicit_wins(self, vrun: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        """SLIPSTREAM_MAX_CONCURRENCY sets the default; an explicit argument wins."""
        monkeypatch.setenv("SLIPSTREAM_MAX_CONCURRENCY", "3")
        fn = InFlight()
        vrun(ss.map(fn, range(30)))
        assert 3 == fn.peak
        fn = InFlight()
        vrun(ss.map(fn, range(30), concurrency=6))
        assert 6 == fn.peak

    def test_bad_env_knob(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A malformed knob raises ValueError naming the variable."""
        monkeypatch.setenv("SLIPSTREAM_MAX_CONCURRENCY", "lots")
        with pytest.raises(ValueError, match="SLIPSTREAM_MAX_CONCURRENCY"):
            ss.map(InFlight(), [1])

    def test_env_retry_attempts(self, vrun: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        """SLIPSTREAM_RETRY_ATTEMPTS gives a default retry policy."""
        monkeypatch.setenv("SLIPSTREAM_RETRY_ATTEMPTS", "2")
        flaky = {"n": 0}

        async def once(_: int) -> str:
            flaky["n"] += 1
            if flaky["n"] == 1:
                raise ConnectionResetError
            return "ok"

        assert ["ok"] == vrun(ss.map(once, [1])).values()

    @pytest.mark.parametrize(
        ("kwargs", "exc", "name"),
        [
            ({"concurrency": 0}, ValueError, "concurrency"),
            ({"concurrency": -3}, ValueError, "concurrency"),
            ({"concurrency": True}, TypeError, "concurrency"),
            ({"concurrency": 2.5}, TypeError, "concurrency"),
            ({"rate": 10}, TypeError, "rate"),
            ({"retry": 3}, TypeError, "retry"),
            ({"breaker": "x"}, TypeError, "breaker"),
            ({"timeout_s": 0}, ValueError, "timeout_s"),
            ({"weight": 2}, TypeError, "weight"),
            ({"on_progress": 1}, TypeError, "on_progress"),
        ],
    )
    def test_bad_arguments_raise_at_call_time(
        self, kwargs: dict[str, Any], exc: type[Exception], name: str
    ) -> None:
        """Bad arguments raise at call time (no await, no loop), naming the parameter."""
        with pytest.raises(exc, match=f"'{name}'"):
            ss.map(InFlight(), [1], **kwargs)
        with pytest.raises(exc, match=f"'{name}'"):
            ss.stream(InFlight(), [1], **kwargs)

    def test_bad_fn_and_items(self) -> None:
        """A non-callable fn and a non-iterable items are named."""
        with pytest.raises(TypeError, match="'fn'"):
            ss.map(42, [1])  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="'items'"):
            ss.map(InFlight(), 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'buffer'"):
            ss.stream(InFlight(), [1], buffer=-1)

    def test_testing_mode_removes_waits(self, vrun: Run) -> None:
        """In testing mode a 1/s rate and retries cost no time and retries are capped."""

        async def fail(_: int) -> None:
            raise ConnectionResetError

        async def main() -> tuple[float, ss.Results[int, None]]:
            with testing.no_waits(attempts=2):
                results = await ss.map(
                    fail,
                    range(20),
                    rate=ss.Rate(per_second=1),
                    retry=ss.Retry(attempts=9, budget=ss.RetryBudget.unlimited()),
                )
            return asyncio.get_running_loop().time(), results

        elapsed, results = vrun(main())
        assert 0.0 == elapsed
        assert {2} == {o.attempts for o in results}

    def test_runs_under_uvloop(self) -> None:
        """map with rate, retry and timeout works on uvloop."""
        uvloop = pytest.importorskip("uvloop")
        fn = InFlight(delay_s=0.001)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(
                ss.map(
                    fn,
                    range(50),
                    concurrency=5,
                    rate=ss.Rate(per_second=1000, burst=10),
                    retry=ss.Retry(),
                    timeout_s=5,
                )
            )
        assert [i * 2 for i in range(50)] == results.values()
        assert fn.peak <= 5


class TestStream:
    def test_backpressure_on_an_endless_input(self, vrun: Run) -> None:
        """An endless input is pulled at most concurrency + buffer ahead of the consumer."""
        pulled = [0]

        def endless() -> Iterator[int]:
            i = 0
            while True:
                pulled[0] += 1
                yield i
                i += 1

        async def main() -> list[int]:
            gaps = []
            consumed = 0
            async with ss.stream(InFlight(), endless(), concurrency=4, buffer=6) as outcomes:
                async for _ in outcomes:
                    consumed += 1
                    gaps.append(pulled[0] - consumed)
                    await asyncio.sleep(0.05)  # a slow consumer
                    if consumed == 100:
                        break
            return gaps

        gaps = vrun(main())
        assert max(gaps) <= 4 + 6
        assert max(gaps) >= 4  # the workers did run ahead

    def test_as_completed_and_ordered(self, vrun: Run) -> None:
        """Unordered yields by completion; ordered=True yields by input position."""

        async def sleepy(item: float) -> float:
            await asyncio.sleep(item)
            return item

        async def collect(ordered: bool) -> list[float]:
            outcomes = ss.stream(sleepy, [0.3, 0.1, 0.2], concurrency=3, ordered=ordered)
            return [o.value async for o in outcomes]

        assert [0.1, 0.2, 0.3] == vrun(collect(False))
        assert [0.3, 0.1, 0.2] == vrun(collect(True))

    def test_ordered_memory_is_bounded(self, vrun: Run) -> None:
        """With a slow head item, ordered mode still takes at most concurrency + buffer."""
        pulled = [0]

        def items() -> Iterator[float]:
            for i in range(1000):
                pulled[0] += 1
                yield 100.0 if i == 0 else 0.001

        async def sleepy(item: float) -> float:
            await asyncio.sleep(item)
            return item

        async def main() -> int:
            async for _ in ss.stream(sleepy, items(), concurrency=3, buffer=5, ordered=True):
                return pulled[0]
            raise AssertionError("no outcome")

        assert vrun(main()) <= 3 + 5 + 1

    def test_input_error_after_outcomes(self, vrun: Run) -> None:
        """Items taken before the input failed are all yielded, then InputError is raised."""

        def items() -> Iterator[int]:
            yield from range(4)
            raise RuntimeError("broken source")

        async def main() -> list[int]:
            got: list[int] = []
            outcomes = ss.stream(InFlight(), items(), concurrency=2)
            with pytest.raises(ss.InputError, match="broken source"):  # noqa: PT012  # the loop is the subject
                async for o in outcomes:
                    got.append(o.item)  # noqa: PERF401  # keep what came before the error
            return got

        assert [0, 1, 2, 3] == sorted(vrun(main()))

    def test_early_exit_leaks_no_task(self, arun: Run) -> None:
        """Leaving `async with` early cancels in-flight calls and leaves no task."""

        async def main() -> set[asyncio.Task[Any]]:
            async with ss.stream(InFlight(delay_s=0.01), range(10_000), concurrency=8) as s:
                async for o in s:
                    if o.index > 20:
                        break
            return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

        assert set() == arun(main())

    def test_cancelled_consumer_stops_the_workers(self, arun: Run) -> None:
        """Cancelling the task that iterates a stream cancels the stream's calls."""
        fn = InFlight(delay_s=10)

        async def consume() -> None:
            async for _ in ss.stream(fn, range(100), concurrency=5):
                pass

        async def main() -> int:
            task = asyncio.create_task(consume())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(5):
                await asyncio.sleep(0)
            return fn.now

        assert 0 == arun(main())

    def test_summary(self, vrun: Run) -> None:
        """A stream's summary counts what it yielded."""

        async def main() -> ss.Summary:
            s = ss.stream(InFlight(fail=lambda i: i == 2), range(5))
            async for _ in s:
                pass
            return s.summary()

        summary = vrun(main())
        assert (5, 4, 1) == (summary.total, summary.ok, summary.failed)


class TestProperties:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        delays=st.lists(st.integers(0, 20), max_size=60),
        failing=st.sets(st.integers(0, 59)),
        concurrency=st.integers(1, 12),
        ordered=st.booleans(),
        buffer=st.integers(0, 5),
    )
    def test_every_item_one_outcome(
        self,
        delays: list[int],
        failing: set[int],
        concurrency: int,
        ordered: bool,
        buffer: int,
    ) -> None:
        """Any delays, failures and bounds: exactly one right outcome per item, cap respected."""
        in_flight = [0, 0]

        async def fn(i: int) -> int:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            try:
                await asyncio.sleep(delays[i] / 1000)
                if i in failing:
                    raise KeyError(i)
                return -i
            finally:
                in_flight[0] -= 1

        async def main() -> tuple[ss.Results[int, int], list[ss.Outcome[int, int]]]:
            mapped = await ss.map(fn, range(len(delays)), concurrency=concurrency)
            streamed = [
                o
                async for o in ss.stream(
                    fn, range(len(delays)), concurrency=concurrency, ordered=ordered, buffer=buffer
                )
            ]
            return mapped, streamed

        mapped, streamed = testing.run(main(), virtual_clock=True)
        assert in_flight[1] <= concurrency
        for outcomes in (list(mapped), sorted(streamed, key=lambda o: o.index)):
            assert [o.item for o in outcomes] == list(range(len(delays)))
            for o in outcomes:
                if o.item in failing:
                    assert isinstance(o.error, KeyError)
                else:
                    assert -o.item == o.value
        if ordered:
            assert [o.index for o in streamed] == list(range(len(delays)))


class TestItemCancellation:
    """A CancelledError raised by one item's call is that item's failure, not the map's."""

    @pytest.mark.parametrize(
        "options",
        [{}, {"retry": ss.Retry(attempts=3), "breaker": ss.CircuitBreaker(), "timeout_s": 5}],
        ids=["plain", "retry-breaker-timeout"],
    )
    def test_an_item_raising_cancelled_error_fails_alone(
        self, vrun: Run, options: dict[str, Any]
    ) -> None:
        """Items 3 (awaits a future someone cancelled) and 5 (raises CancelledError) fail with
        ItemCancelled; the other eight outcomes are kept and the map returns."""

        async def fn(i: int) -> int:
            if i == 3:
                cancelled = asyncio.get_running_loop().create_future()
                cancelled.cancel()
                await cancelled
            if i == 5:
                raise asyncio.CancelledError("from inside")
            await asyncio.sleep(0.01)
            return i

        results = vrun(ss.map(fn, range(10), concurrency=4, **options))
        assert [3, 5] == [o.item for o in results.failures]
        assert all(isinstance(o.error, ss.ItemCancelled) for o in results.failures)
        assert isinstance(results.failures[0].error.__cause__, asyncio.CancelledError)
        assert [0, 1, 2, 4, 6, 7, 8, 9] == [o.value for o in results if o.ok]
        with pytest.raises(ss.FailedItems):  # an ExceptionGroup can hold it
            results.values()

    def test_cancelling_the_map_still_cancels_it(self, vrun: Run) -> None:
        """When the map's own caller is cancelled, the map raises CancelledError as before."""

        async def fn(i: int) -> int:
            await asyncio.sleep(1)
            return i

        async def main() -> bool:
            task = asyncio.create_task(ss.map(fn, range(100), concurrency=4, retry=ss.Retry()))
            await asyncio.sleep(1.5)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return True
            return False

        assert vrun(main())
