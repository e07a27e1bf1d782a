"""LoopWatch on a live loop: it names the blocking line, runs on uvloop, and backs the pytest
helper."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def blocking_call(seconds: float) -> None:
    time.sleep(seconds)  # the line LoopWatch must name


@pytest.mark.realtime
class TestLoopWatch:
    def _run_blocked(self, runner: asyncio.Runner) -> tuple[list[ss.BlockReport], Any]:
        reports: list[ss.BlockReport] = []

        async def main() -> Any:
            async with ss.LoopWatch(slow_s=0.1, interval_s=0.01, on_block=reports.append) as w:
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
        with pytest.raises(ValueError, match="'slow_s'"):
            ss.LoopWatch(slow_s=0)
        with pytest.raises(ValueError, match="'interval_s'"):
            ss.LoopWatch(interval_s=-1)
        with pytest.raises(TypeError, match="'slow_s' must be a number of seconds"):
            ss.LoopWatch(slow_s=None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'interval_s'"):
            ss.LoopWatch(interval_s="fast")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'on_block'"):
            ss.LoopWatch(on_block="log")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'max_reports'"):
            ss.LoopWatch(max_reports=0)
