"""LoopWatch on a live loop (real time): the user's line behind a blocking call, on asyncio and
uvloop, a loop starved by busy threads, and the pytest helper built on it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import re
import sysconfig
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

import slipstream as ss
from slipstream import testing
from slipstream._impl.loop import sampler

# LoopWatch detects real stalls from another thread: no virtual clock can drive it.
pytestmark = pytest.mark.realtime

Run = Callable[[Coroutine[Any, Any, Any]], Any]
STDLIB = sysconfig.get_paths()["stdlib"]
needs_thread_cpu = pytest.mark.skipif(
    sampler.thread_cpu(threading.get_native_id()) is None,
    reason="per-thread CPU times are Linux-only",
)


def line_of(function: Callable[..., Any], marker: str) -> int:
    """The line of ``function``'s source that contains ``marker``."""
    with open(function.__code__.co_filename) as f:
        lines = f.read().splitlines()
    start = function.__code__.co_firstlineno
    return next(i for i, text in enumerate(lines[start - 1 :], start) if marker in text)


def walk_rate() -> float:
    """Directories os.walk visits per second here, at best (measured on the standard library,
    its directories cached by a first walk)."""
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        n = sum(1 for _ in itertools.islice(os.walk(STDLIB), 300))
        rates.append(n / (time.perf_counter() - t0))
    return max(rates)


def blocking_call(seconds: float) -> None:
    time.sleep(seconds)  # <- the user's line


def scan_dirs(top: str, dirs: int) -> None:
    walks = itertools.chain.from_iterable(map(os.walk, itertools.repeat(top)))
    collections.deque(itertools.islice(walks, dirs), maxlen=0)  # <- the user's line


def wait_for_nothing(seconds: float) -> None:
    threading.Event().wait(seconds)  # <- the user's line


def sleep_on_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # <- the user's line


def burn_on_the_loop(seconds: float) -> None:
    """Compute for ``seconds`` of wall time and at least 100 ms of this thread's own CPU (however
    little of the GIL the busy threads leave it)."""
    end, cpu_end = time.monotonic() + seconds, time.thread_time() + 0.1
    while time.monotonic() < end or time.thread_time() < cpu_end:  # <- the user's line
        pass


def spin(stop: threading.Event) -> None:
    while not stop.is_set():  # <- the busy thread's line
        pass


@contextlib.contextmanager
def busy_threads(n: int) -> Iterator[list[threading.Thread]]:
    """``n`` pure-Python threads spinning until the block exits."""
    stop = threading.Event()
    threads = [threading.Thread(target=spin, args=(stop,), name=f"busy-{i}") for i in range(n)]
    for t in threads:
        t.start()
    try:
        yield threads
    finally:
        stop.set()
        for t in threads:
            t.join()


# the functions an idle, starved loop's stack runs through: never the blocker
INNOCENT = {"watch_while", "run", "run_until_complete", "main", "__aexit__", "__aenter__"}


def watch_while(
    block: Callable[[], None] | None,
    *,
    slow_s: float,
    interval_s: float = 0.02,
    until_starved_s: float = 0.0,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> tuple[list[ss.BlockReport], ss.LoopWatchStatistics]:
    """Run a loop under LoopWatch, call ``block`` on it (if any), and keep the loop idle for up
    to ``until_starved_s`` more, until a starved report arrives; return the reports and the
    watch's statistics."""
    reports: list[ss.BlockReport] = []

    async def main() -> ss.LoopWatchStatistics:
        loop = asyncio.get_running_loop()
        starved = asyncio.Event()

        def on_block(report: ss.BlockReport) -> None:  # in the watchdog thread
            reports.append(report)
            if report.kind == "starved":
                loop.call_soon_threadsafe(starved.set)

        async with ss.LoopWatch(slow_s=slow_s, interval_s=interval_s, on_block=on_block) as w:
            await asyncio.sleep(0.05)
            if block is not None:
                block()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(starved.wait(), until_starved_s)
            await asyncio.sleep(0.05)
        return w.statistics()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        stats = runner.run(main())  # <- the line that started the loop, never a blocker
    return reports, stats


class TestBlocked:
    def test_names_the_blocking_line(self, caplog: pytest.LogCaptureFixture) -> None:
        """A 400 ms time.sleep on the loop is reported once (and logged), naming its function
        and file; the lag histogram saw it."""
        caplog.set_level(logging.WARNING, logger="slipstream.loopwatch")
        reports, stats = watch_while(lambda: blocking_call(0.4), slow_s=0.1, interval_s=0.01)
        assert 1 == len(reports)
        assert ("blocking_call", __file__) == (reports[0].function, reports[0].filename)
        assert reports[0].blocked_s >= 0.1
        assert stats.lag_max_s >= 0.3
        assert stats.beats >= 5
        assert "blocking_call" in caplog.text

    def test_names_the_user_line_behind_a_stdlib_call(self) -> None:
        """A 400 ms wait inside threading's Python code is reported at the user's line, with
        the stdlib frame as ``inside``."""
        reports, _ = watch_while(lambda: wait_for_nothing(0.4), slow_s=0.1)
        assert 1 == len(reports)
        report = reports[0]
        expected = (__file__, line_of(wait_for_nothing, "<- the user's line"), "wait_for_nothing")
        assert expected == (report.filename, report.lineno, report.function)
        assert "blocked" == report.kind
        assert report.inside is not None
        assert re.fullmatch(r"threading\.Condition\.wait at .+threading\.py:\d+", report.inside)
        assert f"in wait_for_nothing at {__file__}:{report.lineno} (inside threading." in str(
            report
        )

    def test_os_walk_names_the_user_line_not_frozen_os(self) -> None:
        """os.walk on the loop names scan_dirs' line; ``inside`` is the innermost frozen-stdlib
        frame it was in (os._walk, or posixpath's helpers it calls)."""
        dirs = int(walk_rate() * 0.5)
        reports, _ = watch_while(lambda: scan_dirs(STDLIB, dirs), slow_s=0.1)
        assert 1 == len(reports)
        report = reports[0]
        expected = (__file__, line_of(scan_dirs, "<- the user's line"), "scan_dirs")
        assert expected == (report.filename, report.lineno, report.function)
        assert report.inside is not None
        assert re.fullmatch(
            r"(os\._walk|posixpath\.\w+) at <frozen (os|posixpath)>:\d+", report.inside
        )
        assert "in _walk" in report.stack

    @pytest.mark.parametrize(
        ("blocker", "interval_s"), [(blocking_call, 0.01), (wait_for_nothing, 0.02)]
    )
    def test_on_uvloop(self, blocker: Callable[[float], None], interval_s: float) -> None:
        """Under uvloop (no Python frame dispatches its callbacks, nothing inside the loop is
        patched) the same function and line are named, once."""
        uvloop = pytest.importorskip("uvloop")
        reports, _ = watch_while(
            lambda: blocker(0.4),
            slow_s=0.1,
            interval_s=interval_s,
            loop_factory=uvloop.new_event_loop,
        )
        expected = [(blocker.__name__, line_of(blocker, "<- the user's line"))]
        assert expected == [(r.function, r.lineno) for r in reports]


@needs_thread_cpu
class TestStarvation:
    def test_busy_threads_starve_an_idle_loop(self) -> None:
        """Eight spinning threads and an idle loop: the report says 'starved' and names them,
        never a line of the loop's (asyncio.run's caller, the test's sleep)."""
        with busy_threads(8):
            reports, _ = watch_while(None, slow_s=0.1, until_starved_s=2.5)
        assert [] == [str(r) for r in reports if r.function in INNOCENT]
        starved = [r for r in reports if r.kind == "starved"]
        assert [] == [str(r) for r in reports if r.kind != "starved"]
        assert 1 <= len(starved)
        named = {t.name for r in starved for t in r.threads}
        assert named
        assert named <= {f"busy-{i}" for i in range(8)}
        top = starved[0].threads[0]
        assert (__file__, "spin") == (top.filename, top.function)
        assert line_of(spin, "<- the busy thread's line") == top.lineno
        assert "held the GIL: busy-" in str(starved[0])

    def test_on_uvloop(self) -> None:
        """Under uvloop an idle loop among spinning threads is starved too, not blocked."""
        uvloop = pytest.importorskip("uvloop")
        with busy_threads(8):
            reports, _ = watch_while(
                None, slow_s=0.1, until_starved_s=2.5, loop_factory=uvloop.new_event_loop
            )
        assert [] == [str(r) for r in reports if r.kind != "starved"]
        assert 1 <= len(reports)

    @pytest.mark.parametrize("blocker", [sleep_on_the_loop, burn_on_the_loop])
    def test_a_real_blocker_among_busy_threads_is_still_blocked(
        self, blocker: Callable[[float], None]
    ) -> None:
        """A 400 ms sleep, or CPU loop, on the loop while four threads spin is reported as
        'blocked' at the user's line."""
        with busy_threads(4):
            reports, _ = watch_while(lambda: blocker(0.4), slow_s=0.15)
        blocked = [r for r in reports if r.kind == "blocked"]
        assert 1 == len(blocked), [str(r) for r in reports]
        expected = (__file__, line_of(blocker, "<- the user's line"), blocker.__name__)
        assert expected == (blocked[0].filename, blocked[0].lineno, blocked[0].function)
        assert blocked[0].blocked_s >= 0.15

    def test_without_thread_cpu_times_no_innocent_line(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Where per-thread CPU times are unavailable there is no starvation verdict, and the
        line that started the loop is not blamed either."""
        monkeypatch.setattr(sampler, "thread_cpu", lambda native_id: None)
        with busy_threads(8):
            reports, _ = watch_while(None, slow_s=0.1, until_starved_s=1.0)
        assert [] == [str(r) for r in reports if r.function in INNOCENT]
        assert [] == [str(r) for r in reports if r.kind == "starved"]


class TestPytestHelper:
    def test_passes_a_good_block_and_fails_a_blocking_one(self, arun: Run) -> None:
        """loop_never_blocked passes a well-behaved block and fails a blocking one, naming the
        blocking function."""

        async def good() -> None:
            async with testing.loop_never_blocked(0.1):
                await asyncio.sleep(0.2)

        async def bad() -> None:
            async with testing.loop_never_blocked(0.05):
                blocking_call(0.3)

        arun(good())
        with pytest.raises(AssertionError, match="blocking_call"):
            arun(bad())
