"""Loop health: Histogram, LoopWatch, loop_never_blocked, offload, nonblocking, TaskSet."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestHistogram:
    @given(
        samples=st.lists(st.floats(1e-5, 1e3, allow_nan=False), min_size=1, max_size=500),
        q=st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
    )
    def test_quantiles_within_the_stated_error(self, samples: list[float], q: float) -> None:
        """Any samples: each quantile is within 1% of the true sample quantile."""
        h = ss.Histogram(relative_error=0.01)
        for x in samples:
            h.add(x)
        true = sorted(samples)[math.floor(q * (len(samples) - 1))]
        assert abs(h.quantile(q) - true) <= 0.01 * true * 1.0001

    def test_memory_is_bounded_by_range_not_count(self) -> None:
        """A million samples between 1 us and 1 h use about a thousand buckets."""
        h = ss.Histogram()
        for i in range(1_000_000):
            h.add(1e-6 * (1.0001 ** (i % 150_000)))
        assert 1_000_000 == h.count
        assert len(h) < 1200

    def test_bad_arguments(self) -> None:
        """relative_error outside (0, 1) and q outside [0, 1] are named."""
        with pytest.raises(ValueError, match="'relative_error'"):
            ss.Histogram(relative_error=0)
        with pytest.raises(ValueError, match="'q'"):
            ss.Histogram().quantile(1.5)


def blocking_call(seconds: float) -> None:
    time.sleep(seconds)  # the line LoopWatch must name


@pytest.mark.realtime
class TestLoopWatch:
    def _run_blocked(self, runner: asyncio.Runner) -> tuple[list[ss.BlockReport], Any]:
        reports: list[ss.BlockReport] = []

        async def main() -> Any:
            async with ss.LoopWatch(threshold_s=0.1, interval_s=0.01, on_block=reports.append) as w:
                await asyncio.sleep(0.05)
                blocking_call(0.4)
                await asyncio.sleep(0.05)
            return w.statistics()

        return reports, runner.run(main())

    def test_names_the_blocking_line(self, caplog: pytest.LogCaptureFixture) -> None:
        """A 400 ms time.sleep on the loop is reported once, naming its function and file."""
        caplog.set_level(logging.WARNING, logger="slipstream.loopwatch")
        with asyncio.Runner() as runner:
            reports, stats = self._run_blocked(runner)
        assert 1 == len(reports)
        assert ("blocking_call", __file__) == (reports[0].function, reports[0].filename)
        assert reports[0].blocked_s >= 0.1
        assert stats.lag_max_s >= 0.3
        assert stats.beats >= 5
        assert "blocking_call" in caplog.text

    def test_on_uvloop(self) -> None:
        """The same report under uvloop (nothing inside the loop is patched)."""
        uvloop = pytest.importorskip("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            reports, _ = self._run_blocked(runner)
        assert ["blocking_call"] == [r.function for r in reports]

    def test_pytest_helper(self, arun: Run) -> None:
        """loop_never_blocked passes a well-behaved block and fails a blocking one."""

        async def good() -> None:
            async with testing.loop_never_blocked(0.1):
                await asyncio.sleep(0.2)

        async def bad() -> None:
            async with testing.loop_never_blocked(0.05):
                blocking_call(0.3)

        arun(good())
        with pytest.raises(AssertionError, match="blocking_call"):
            arun(bad())

    def test_bad_arguments(self) -> None:
        """Non-positive thresholds, a None threshold, a non-callable on_block and a zero
        max_reports are named."""
        with pytest.raises(ValueError, match="'threshold_s'"):
            ss.LoopWatch(threshold_s=0)
        with pytest.raises(ValueError, match="'interval_s'"):
            ss.LoopWatch(interval_s=-1)
        with pytest.raises(TypeError, match="'threshold_s' must be a number of seconds"):
            ss.LoopWatch(threshold_s=None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'interval_s'"):
            ss.LoopWatch(interval_s="fast")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'on_block'"):
            ss.LoopWatch(on_block="log")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'max_reports'"):
            ss.LoopWatch(max_reports=0)


def square(x: int) -> int:
    return x * x


class TestOffload:
    def test_thread_and_context(self, arun: Run) -> None:
        """offload runs in another thread and carries context variables."""
        var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

        def where(suffix: str) -> tuple[int, str]:
            return threading.get_ident(), var.get() + suffix

        async def main() -> tuple[int, tuple[int, str]]:
            var.set("ctx")
            return threading.get_ident(), await ss.offload(where, "!")

        loop_thread, (thread, value) = arun(main())
        assert loop_thread != thread
        assert "ctx!" == value

    def test_process(self, arun: Run) -> None:
        """kind='process' runs in the bounded process pool."""
        assert 144 == arun(ss.offload(square, 12, kind="process"))

    @pytest.mark.realtime
    def test_pool_workers_exit_when_their_process_is_killed(self) -> None:
        script = Path(__file__).with_name("workers") / "killed_with_a_pool.py"
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=30
        )
        assert -signal.SIGTERM == done.returncode
        worker = int(done.stdout.split()[0])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
            time.sleep(0.1)
        assert not Path(f"/proc/{worker}").exists()  # no orphan left waiting forever

    @pytest.mark.realtime
    def test_nonblocking_decorator(self, arun: Run) -> None:
        """@nonblocking keeps the name and makes the call awaitable off the loop: a 0.6 s
        sleep in it never stalls the loop for 0.3 s (generous: real time on a busy machine)."""

        @ss.nonblocking
        def slow_read(n: int) -> int:
            """Read."""
            time.sleep(0.6)
            return n

        async def main() -> int:
            async with testing.loop_never_blocked(0.3):
                return await slow_read(3)

        assert 3 == arun(main())
        assert ("slow_read", "Read.") == (slow_read.__name__, slow_read.__doc__)

    @pytest.mark.realtime
    def test_cancelling_the_await_does_not_wait_for_the_thread(self, arun: Run) -> None:
        """Cancelling the awaiting task returns at once (well under the thread's 2 s); the
        thread finishes on its own."""
        done = threading.Event()

        def long() -> None:
            time.sleep(2.0)
            done.set()

        async def main() -> float:
            task = asyncio.create_task(ss.offload(long))
            await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.perf_counter() - t0

        assert arun(main()) < 1.0
        assert done.wait(5)

    def test_bad_input(self, arun: Run) -> None:
        """A coroutine function is a TypeError with a hint; an unknown kind is named."""

        async def already_async() -> None:
            return None

        with pytest.raises(TypeError, match="HINT"):
            arun(ss.offload(already_async))
        with pytest.raises(TypeError, match="HINT"):
            ss.nonblocking(already_async)
        with pytest.raises(ValueError, match="'kind'"):
            arun(ss.offload(square, 2, kind="fiber"))  # type: ignore[arg-type]


class TestTaskSet:
    def test_no_task_vanishes(self, arun: Run) -> None:
        """Spawned tasks with no other reference survive garbage collection and finish."""
        finished: list[int] = []

        async def work(i: int) -> None:
            await asyncio.sleep(0.01)
            finished.append(i)

        async def main() -> ss.TaskSetStatistics:
            async with ss.TaskSet() as tasks:
                for i in range(50):
                    await tasks.spawn(work(i))
                gc.collect()
            return tasks.statistics()

        stats = arun(main())
        assert list(range(50)) == sorted(finished)
        assert (50, 50, 0) == (stats.started, stats.finished, stats.running)

    def test_limit_wait_and_reject(self, vrun: Run) -> None:
        """With limit 3, waiting spawns never run more than 3; reject raises TaskSetFull."""

        async def main() -> tuple[int, int]:
            async with ss.TaskSet(limit=3) as waiting:
                for _ in range(20):
                    await waiting.spawn(asyncio.sleep(1))
            rejecting = ss.TaskSet(limit=2, policy="reject")
            await rejecting.spawn(asyncio.sleep(1))
            await rejecting.spawn(asyncio.sleep(1))
            with pytest.raises(ss.TaskSetFull):
                await rejecting.spawn(asyncio.sleep(1))
            await rejecting.drain()
            return waiting.statistics().max_running, rejecting.statistics().rejected

        assert (3, 1) == vrun(main())

    def test_failures_are_kept_and_logged(
        self, vrun: Run, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failing task's exception is kept in failures and logged with its traceback;
        a slow one is logged."""

        async def boom() -> None:
            raise ValueError("lost in the background")

        async def slow() -> None:
            await asyncio.sleep(5)

        async def main() -> ss.TaskSet:
            async with ss.TaskSet(slow_s=1, name="bg") as tasks:
                await tasks.spawn(boom(), name="boom")
                await tasks.spawn(slow(), name="slow")
            return tasks

        caplog.set_level(logging.WARNING, logger="slipstream.tasks")
        tasks = vrun(main())
        assert [("boom", "lost in the background")] == [(n, str(e)) for n, e in tasks.failures]
        assert (1, 1) == (tasks.statistics().failed, tasks.statistics().slow)
        assert "ValueError: lost in the background" in caplog.text

    def test_failing_block_cancels_its_tasks(self, vrun: Run) -> None:
        """When the block raises, its tasks are cancelled, not awaited."""

        async def main() -> ss.TaskSetStatistics:
            tasks = ss.TaskSet()
            with pytest.raises(RuntimeError):  # noqa: PT012  # the block's exit is the subject
                async with tasks:
                    await tasks.spawn(asyncio.sleep(3600))
                    raise RuntimeError("shutting down")
            return tasks.statistics()

        stats = vrun(main())
        assert (0, 1) == (stats.running, stats.cancelled)

    def test_bad_arguments(self) -> None:
        """A zero limit, an unknown policy, a negative slow_s are named."""
        with pytest.raises(ValueError, match="'limit'"):
            ss.TaskSet(limit=0)
        with pytest.raises(ValueError, match="'policy'"):
            ss.TaskSet(policy="drop")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'slow_s'"):
            ss.TaskSet(slow_s=-1)
