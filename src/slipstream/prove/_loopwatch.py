"""``ss.LoopWatch``: measure event-loop lag all the time, and name the line that blocks it.

Seed 004's API answered in 5-10 s while cache clearing ran on the loop; the team found it with a
hand-written lag script. ``LoopWatch`` runs a heartbeat task (it sleeps ``interval_s`` and
records how late it woke: the loop's lag) into a bounded histogram, and a watchdog thread that,
when no heartbeat has come for ``threshold_s``, samples the loop thread's stack with
``sys._current_frames()`` and reports the blocking file, line and function (log and callback).
It patches nothing inside asyncio, so it works on the stock loop and on uvloop alike (aiodebug
patches asyncio's handle and is silent under uvloop).

Example::

    async with ss.LoopWatch(threshold_s=0.1) as watch:
        await serve()
    print(watch.statistics())
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from ._histogram import Histogram

__all__ = ["BlockReport", "LoopWatch", "LoopWatchStatistics"]

logger = logging.getLogger("slipstream.loopwatch")
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)
_OWN_FILE = __file__


@dataclass(frozen=True, slots=True)
class BlockReport:
    """The loop was blocked for at least ``blocked_s`` in ``function`` at ``filename:lineno``."""

    blocked_s: float
    filename: str
    lineno: int
    function: str
    stack: str

    def __str__(self) -> str:
        return (
            f"event loop blocked for {self.blocked_s * 1000:.0f} ms in {self.function} "
            f"at {self.filename}:{self.lineno}"
        )


@dataclass(frozen=True, slots=True)
class LoopWatchStatistics:
    beats: int
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    blocks: int
    reports: tuple[BlockReport, ...]


def _culprit(frame: FrameType | None) -> FrameType | None:
    """The innermost frame that is not asyncio's machinery (nor the selector, nor this module):
    the code that is running when the loop should be polling."""
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_ASYNCIO_DIR) and name != _OWN_FILE and "selectors" not in name:
            return frame
        frame = frame.f_back
    return None


class LoopWatch:
    """Continuous event-loop lag measurement and a watchdog that names blocking code.

    Args:
        threshold_s: a loop unresponsive this long is reported (log at warning + callback).
        interval_s: heartbeat period (lag resolution; the default costs well under 1% CPU).
        on_block: ``callback(BlockReport)``, called from the watchdog thread.
        max_reports: how many reports ``statistics()`` keeps (oldest dropped).
    """

    def __init__(
        self,
        *,
        threshold_s: float = 0.1,
        interval_s: float = 0.05,
        on_block: Callable[[BlockReport], Any] | None = None,
        max_reports: int = 100,
    ) -> None:
        if not threshold_s > 0:
            raise ValueError(f"'threshold_s' must be > 0, got {threshold_s!r}")
        if not interval_s > 0:
            raise ValueError(f"'interval_s' must be > 0, got {interval_s!r}")
        if max_reports < 1:
            raise ValueError(f"'max_reports' must be >= 1, got {max_reports!r}")
        self.threshold_s = float(threshold_s)
        self.interval_s = float(interval_s)
        self.on_block = on_block
        self._lag = Histogram()
        self._reports: deque[BlockReport] = deque(maxlen=max_reports)
        self._blocks = 0
        self._last_beat = 0.0
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start watching the running loop (call from inside it)."""
        if self._task is not None:
            raise RuntimeError("this LoopWatch is already running")
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
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

    async def _heartbeat(self) -> None:
        interval = self.interval_s
        while True:
            expected = time.monotonic() + interval
            await asyncio.sleep(interval)
            now = time.monotonic()
            self._lag.add(max(0.0, now - expected))
            self._last_beat = now

    def _watchdog(self) -> None:
        reported_for = -1.0
        period = min(self.threshold_s / 2, 0.1)
        while not self._stop.wait(period):
            beat = self._last_beat
            silent = time.monotonic() - beat - self.interval_s
            if silent < self.threshold_s or beat == reported_for:
                continue
            reported_for = beat  # one report per blocking episode
            frame = sys._current_frames().get(self._loop_thread)
            culprit = _culprit(frame)
            if culprit is None:
                continue
            report = BlockReport(
                blocked_s=silent,
                filename=culprit.f_code.co_filename,
                lineno=culprit.f_lineno,
                function=culprit.f_code.co_name,
                stack="".join(traceback.format_stack(culprit, limit=8)),
            )
            del frame, culprit
            self._blocks += 1
            self._reports.append(report)
            logger.warning("%s", report)
            if self.on_block is not None:
                try:
                    self.on_block(report)
                except Exception:  # a failing callback must not kill the watchdog
                    logger.exception("LoopWatch on_block callback raised")

    async def __aenter__(self) -> LoopWatch:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<LoopWatch threshold={self.threshold_s * 1000:.0f}ms beats={s.beats} "
            f"lag_p99={s.lag_p99_s * 1000:.1f}ms blocks={s.blocks}>"
        )
