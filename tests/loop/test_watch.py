"""LoopWatch's verdicts: the user's line behind a library call, and a loop starved by threads."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import re
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.loop import watch as _loopwatch

STDLIB = sysconfig.get_paths()["stdlib"]
needs_thread_cpu = pytest.mark.skipif(
    _loopwatch._thread_cpu(threading.get_native_id()) is None,
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
    until_starved_s: float = 0.0,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> list[ss.BlockReport]:
    """Run a loop under LoopWatch, call ``block`` on it (if any), and keep the loop idle for up
    to ``until_starved_s`` more, until a starved report arrives; return the reports."""
    reports: list[ss.BlockReport] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        starved = asyncio.Event()

        def on_block(report: ss.BlockReport) -> None:  # in the watchdog thread
            reports.append(report)
            if report.kind == "starved":
                loop.call_soon_threadsafe(starved.set)

        async with ss.LoopWatch(slow_s=slow_s, interval_s=0.02, on_block=on_block):
            await asyncio.sleep(0.05)
            if block is not None:
                block()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(starved.wait(), until_starved_s)
            await asyncio.sleep(0.05)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())  # <- the line that started the loop, never a blocker
    return reports


class TestUserLine:
    def test_names_the_user_line_behind_a_stdlib_call(self) -> None:
        """A 400 ms wait inside threading's Python code is reported at the user's line, with
        the stdlib frame as ``inside``."""
        reports = watch_while(lambda: wait_for_nothing(0.4), slow_s=0.1)
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

    def test_on_uvloop(self) -> None:
        """Under uvloop (no Python frame dispatches its callbacks) the same line is named."""
        uvloop = pytest.importorskip("uvloop")
        reports = watch_while(
            lambda: wait_for_nothing(0.4), slow_s=0.1, loop_factory=uvloop.new_event_loop
        )
        expected = [("wait_for_nothing", line_of(wait_for_nothing, "<- the user's line"))]
        assert expected == [(r.function, r.lineno) for r in reports]

    def test_os_walk_names_the_user_line_not_frozen_os(self) -> None:
        """os.walk on the loop (the issue's case) names scan_dirs' line; ``inside`` is the
        innermost frozen-stdlib frame it was in (os._walk, or posixpath's helpers it calls)."""
        dirs = int(walk_rate() * 0.5)
        reports = watch_while(lambda: scan_dirs(STDLIB, dirs), slow_s=0.1)
        assert 1 == len(reports)
        report = reports[0]
        expected = (__file__, line_of(scan_dirs, "<- the user's line"), "scan_dirs")
        assert expected == (report.filename, report.lineno, report.function)
        assert report.inside is not None
        assert re.fullmatch(
            r"(os\._walk|posixpath\.\w+) at <frozen (os|posixpath)>:\d+", report.inside
        )
        assert "in _walk" in report.stack

    def test_a_slipstream_frame_is_library_code(self) -> None:
        """Frames of the stdlib, frozen modules, site-packages and slipstream are not the user's;
        this test file is."""
        assert not _loopwatch._is_user_code(os.__file__)
        assert not _loopwatch._is_user_code("<frozen os>")
        assert not _loopwatch._is_user_code(_loopwatch.__file__)
        assert not _loopwatch._is_user_code(pytest.__file__)
        assert not _loopwatch._is_user_code("/opt/app/venv/lib/python3.11/site-packages/x.py")
        assert _loopwatch._is_user_code(__file__)
        assert _loopwatch._is_user_code("<string>")

    def test_old_report_fields_still_work(self) -> None:
        """A BlockReport built with only the original five fields is a 'blocked' report."""
        report = ss.BlockReport(
            blocked_s=0.25, filename="app/jobs.py", lineno=42, function="scan_dir", stack=""
        )
        assert ("blocked", None, ()) == (report.kind, report.inside, report.threads)
        assert "event loop blocked for 250 ms in scan_dir at app/jobs.py:42" == str(report)

    def test_starved_report_text(self) -> None:
        """A starved report names every busy thread (four, then a count) and no blocker."""
        threads = tuple(
            _loopwatch.BusyThread(
                name=f"w{i}", cpu_s=0.061, filename="jobs.py", lineno=12, function="crunch"
            )
            for i in range(6)
        )
        report = ss.BlockReport(
            blocked_s=0.082,
            filename="jobs.py",
            lineno=12,
            function="crunch",
            stack="",
            kind="starved",
            threads=threads,
        )
        assert (
            "event loop starved for 82 ms: the loop thread was runnable but 6 busy threads held "
            "the GIL: w0 at jobs.py:12 crunch (61 ms CPU), w1 at jobs.py:12 crunch (61 ms CPU), "
            "w2 at jobs.py:12 crunch (61 ms CPU), w3 at jobs.py:12 crunch (61 ms CPU), "
            "and 2 more"
        ) == str(report)


@pytest.mark.realtime
@needs_thread_cpu
class TestStarvation:
    def test_busy_threads_starve_an_idle_loop(self) -> None:
        """Eight spinning threads and an idle loop: the report says 'starved' and names them,
        never a line of the loop's (asyncio.run's caller, the test's sleep)."""
        with busy_threads(8):
            reports = watch_while(None, slow_s=0.1, until_starved_s=2.5)
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
            reports = watch_while(
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
            reports = watch_while(lambda: blocker(0.4), slow_s=0.15)
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
        monkeypatch.setattr(_loopwatch, "_thread_cpu", lambda native_id: None)
        with busy_threads(8):
            reports = watch_while(None, slow_s=0.1, until_starved_s=1.0)
        assert [] == [str(r) for r in reports if r.function in INNOCENT]
        assert [] == [str(r) for r in reports if r.kind == "starved"]
