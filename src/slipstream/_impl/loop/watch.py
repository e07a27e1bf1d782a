"""``ss.LoopWatch``: measure event-loop lag all the time, and say why the loop stopped answering.

A loop that answers in seconds while some call runs on it is found, without this, with a
hand-written lag script. ``LoopWatch`` runs a heartbeat task (it sleeps ``interval_s`` and
records how late it woke: the loop's lag) into a bounded histogram, and a watchdog thread. When
no heartbeat has come for ``slow_s``, the watchdog reports the episode (log and callback)
as one of two kinds:

* ``"blocked"``: one call held the loop. The report names the innermost frame of *your* code
  (not the standard library's, site-packages', asyncio's or slipstream's), and the library frame
  it was inside: ``event loop blocked for 180 ms in scan_dir at app/jobs.py:42 (inside os._walk
  at <frozen os>:368)``.
* ``"starved"``: no call held the loop; the loop thread was ready to run but other threads had
  the GIL (or the CPU). The report names those threads, their CPU time and their top frame
  instead of an innocent line of the loop's.

How it tells them apart: once the heartbeat is a quarter of the threshold late, the watchdog
samples, once per period, the loop thread's stack (``sys._current_frames()``) and, on Linux, the
CPU time of every Python thread and the loop thread's scheduler wake-ups. A call holds the loop
when the loop is found inside the same callback in successive samples and, between them, either
slept in it (no CPU, no wake-ups: I/O, a lock, ``time.sleep``) or ran more than two GIL switch
intervals in it (a callback that merely lost the GIL returns within one). A starved loop thread
is found in asyncio's own machinery (``select`` has returned; the thread waits for the GIL), or
in changing callbacks, or frozen in one that barely runs and wakes every switch interval to ask
for the GIL, while other threads use at least 30% of a core. Nothing is sampled while the loop
keeps its beat, and the heartbeat does no extra work (one comparison). Without per-thread CPU
times (outside Linux) there is no starvation verdict; a loop found only in its own machinery is
then not reported, rather than blamed on the line that started it. Limits: a call that polls
(say ``time.sleep(0.001)`` in a loop) while busy threads hold the GIL looks starved, and a
CPU-bound call that other threads leave under two switch intervals of CPU between two samples is
reported as the starvation it is suffering.

It patches nothing inside asyncio, so it works on the stock loop and on uvloop alike (aiodebug
patches asyncio's handle and is silent under uvloop).

The pieces: ``frames`` (which frames are the user's), ``sampler`` (the watchdog's reads of the
live process), ``verdict`` (the sans-IO judgement of a silence's samples), ``watch_report``
(the report and statistics types); this module drives them.

Clock: the heartbeat and the watchdog read ``time.monotonic()``, never the clock seam
(``core.clock``). The watchdog runs in another thread and detects *real* stalls of the loop
thread; a virtual loop clock would hide exactly what it looks for, and another thread cannot
read a loop's clock anyway.

Example::

    async with ss.LoopWatch(slow_s=0.1) as watch:
        await serve()
    print(watch.statistics())
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any, final

from ..core.checks import check_callable, check_int, check_seconds
from ..observe.histogram import Histogram
from .sampler import Sampler, frames_below_the_loop
from .verdict import Episode, Sample, judge, report_for
from .watch_report import BlockReport as BlockReport
from .watch_report import BusyThread as BusyThread
from .watch_report import LoopWatchStatistics as LoopWatchStatistics

__all__ = ["BlockReport", "BusyThread", "LoopWatch", "LoopWatchStatistics"]

logger = logging.getLogger("slipstream.loopwatch")


@final
class LoopWatch:
    """Continuous event-loop lag measurement and a watchdog that says why the loop stalled.

    A stall of ``slow_s`` or more is reported once (log at warning + ``on_block``) as a
    :class:`BlockReport`: ``kind="blocked"`` names the user's line that held the loop,
    ``kind="starved"`` the busy threads that kept a runnable loop thread off the GIL.

    Args:
        slow_s: a loop unresponsive this long is reported.
        interval_s: heartbeat period (lag resolution; the defaults cost well under 1% of a core;
            the watchdog samples stacks and thread CPU times only while the heartbeat is late).
        on_block: ``callback(BlockReport)``, called from the watchdog thread.
        max_reports: how many reports ``statistics()`` keeps (oldest dropped).
    """

    def __init__(
        self,
        *,
        slow_s: float = 0.1,
        interval_s: float = 0.05,
        on_block: Callable[[BlockReport], Any] | None = None,
        max_reports: int = 100,
    ) -> None:
        self.slow_s = check_seconds("slow_s", slow_s)
        self.interval_s = check_seconds("interval_s", interval_s)
        self.on_block = check_callable("on_block", on_block, allow_none=True)
        max_reports = check_int("max_reports", max_reports, minimum=1)
        self._lag = Histogram()
        self._reports: deque[BlockReport] = deque(maxlen=max_reports)
        self._blocks = 0
        self._starved = 0
        self._last_beat = 0.0
        self._long_silence = (-1.0, 0.0)  # (the beat it followed, its length)
        self._loop_thread = 0
        self._loop_native_id = 0
        self._base_frames: dict[int, FrameType] = {}
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start watching the running loop (call from inside it)."""
        if self._task is not None:
            raise RuntimeError("this LoopWatch is already running")
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._loop_native_id = threading.get_native_id()
        self._base_frames = frames_below_the_loop(sys._getframe(1))
        self._last_beat = time.monotonic()
        self._stop.clear()
        self._task = loop.create_task(self._heartbeat())
        self._thread = threading.Thread(
            target=self._watchdog, name="slipstream-loopwatch", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop the heartbeat and the watchdog thread."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # the caller's own cancellation still propagates
            self._task = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._base_frames = {}

    async def _heartbeat(self) -> None:
        interval, threshold = self.interval_s, self.slow_s
        while True:
            # time.monotonic, not the clock seam: the watchdog thread compares _last_beat with
            # its own real monotonic time (see the module doc).
            expected = time.monotonic() + interval
            await asyncio.sleep(interval)
            now = time.monotonic()
            lag = now - expected
            self._lag.add(max(0.0, lag))
            if lag >= threshold:  # for a watchdog that did not see the whole silence
                self._long_silence = (self._last_beat, lag)
            self._last_beat = now

    # -- the watchdog thread ---------------------------------------------------------------

    def _emit(self, report: BlockReport) -> None:
        if report.kind == "starved":
            self._starved += 1
        else:
            self._blocks += 1
        self._reports.append(report)
        logger.warning("%s", report)
        if self.on_block is not None:
            try:
                self.on_block(report)
            except Exception:  # a failing callback must not kill the watchdog
                logger.exception("LoopWatch on_block callback raised")

    def _finish(self, episode: Episode, end: Sample | None) -> None:
        """An episode is over: report it if it reached the threshold unreported (the watchdog
        woke too late, or its last look came before the threshold). ``end``: a sample taken
        after the episode (None: judge without one)."""
        if episode.reported == "blocked" or not episode.samples:
            return
        silent = episode.silent
        beat, lag = self._long_silence
        if beat == episode.beat:
            silent = max(silent, lag)
        if silent < self.slow_s:
            return
        verdict = judge(episode, end)
        if verdict is not None and not (episode.reported == "starved" == verdict.kind):
            self._emit(report_for(verdict, silent, episode.samples[-1].loop_frame))

    def _watchdog(self) -> None:
        period = min(self.slow_s / 2, 0.1)
        start = self.slow_s / 4  # a silence this long is sampled
        sampler = Sampler(self._loop_thread, self._loop_native_id, self._base_frames, __file__)
        episode = Episode(self._last_beat)
        wait = period
        try:
            while not self._stop.wait(wait):
                wait = period
                beat = self._last_beat
                silent = time.monotonic() - beat - self.interval_s
                if beat != episode.beat:  # the loop has beaten: the episode is over
                    sample = None
                    if episode.samples and episode.reported != "blocked":
                        sample = sampler.sample()
                        self._finish(episode, sample)
                    episode = Episode(beat)
                    if sample is not None and silent >= start and self._last_beat == beat:
                        episode.add(sample, silent)  # taken after that beat: this episode's too
                        wait = min(period, 0.01)
                        continue
                if silent < start or episode.reported == "blocked":
                    continue  # the heartbeat is (nearly) on time: nothing is sampled
                sample = sampler.sample()
                if self._last_beat != beat:  # it beat while we sampled
                    self._finish(episode, sample)
                    episode = Episode(self._last_beat)
                    continue
                episode.add(sample, silent)
                if len(episode.samples) == 1:
                    wait = min(period, 0.01)  # a second look soon: one sample cannot tell much
                    continue
                if silent < self.slow_s:
                    continue
                verdict = judge(episode, patience=self.slow_s / 2)
                if verdict is not None and not (episode.reported == "starved" == verdict.kind):
                    episode.reported = verdict.kind
                    self._emit(report_for(verdict, silent, sample.loop_frame))
                verdict = None
        finally:
            episode = Episode(0.0)  # let go of the frames
            sampler.close()

    async def __aenter__(self) -> LoopWatch:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def statistics(self) -> LoopWatchStatistics:
        lag = self._lag.summary()
        return LoopWatchStatistics(
            beats=lag.count,
            lag_p50_s=lag.p50,
            lag_p99_s=lag.p99,
            lag_max_s=lag.max,
            blocks=self._blocks,
            reports=tuple(self._reports),
            starved=self._starved,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<LoopWatch slow={self.slow_s * 1000:.0f}ms beats={s.beats} "
            f"lag_p99={s.lag_p99_s * 1000:.1f}ms blocks={s.blocks} starved={s.starved}>"
        )
