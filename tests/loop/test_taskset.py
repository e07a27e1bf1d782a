"""TaskSet: no task vanishes, limits wait or reject, failures are kept, and a failing block
cancels its tasks."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


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
