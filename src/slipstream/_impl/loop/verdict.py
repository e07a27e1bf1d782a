"""Why the loop stopped answering, judged from samples: blocked, starved, or no verdict.

This is LoopWatch's sans-IO core: the watchdog thread (``sampler``) reads stacks, CPU times and
wake-ups into :class:`Sample` objects; the functions here only compare them, so they can be
tested with samples built by hand. The rules (see ``slipstream._impl.loop.watch``): a call held
the loop when the loop is found inside the same callback in successive samples and, between
them, either slept in it (no CPU, no wake-ups) or ran more than two GIL switch intervals in it;
a runnable loop thread was starved when other threads used at least 30% of a core while it
hardly ran.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from dataclasses import dataclass, field
from types import FrameType
from typing import Literal

from .frames import ASYNCIO_DIR, is_user_code, lineno, top_user_frame, where
from .watch_report import BlockReport, BusyThread

__all__ = [
    "MAX_SAMPLES",
    "Episode",
    "Position",
    "Sample",
    "Verdict",
    "busy_threads",
    "held",
    "judge",
    "report_for",
    "starving",
]

STACK_LIMIT = 10  # frames of the loop thread's stack a report keeps
MAX_SAMPLES = 64  # per episode (each holds the frames of the loop's callback)


@dataclass(slots=True)
class Position:
    """Where a sample found the loop thread inside a callback: the callback's frames (outermost
    first, each with the instruction it was at) and the frame that dispatched the callback."""

    region: tuple[tuple[FrameType, int, int], ...]  # (frame, f_lasti, f_lineno) when sampled
    dispatch: FrameType | None

    def same_call(self, other: Position) -> bool:
        """Has the loop stayed inside one callback between ``other`` (earlier) and this sample?"""
        if self.dispatch is not other.dispatch:
            return False
        if self.dispatch is not None and self.dispatch.f_code.co_name == "_run":
            return True  # the same Handle._run frame object: the loop never left the callback
        # uvloop (its dispatch has no Python frame): the frames both samples share, outermost
        # first, must have stayed at the instruction that called the next shared frame.
        a, b = other.region, self.region
        shared = 0
        while shared < min(len(a), len(b)) and a[shared][0] is b[shared][0]:
            shared += 1
        if shared == 0:
            return False
        calling = shared if shared < max(len(a), len(b)) else shared - 1
        return all(a[i][1] == b[i][1] for i in range(calling))


@dataclass(slots=True)
class Sample:
    """One look at the loop thread (and, with CPU times, at every other thread) at time ``t``."""

    t: float
    loop_frame: FrameType | None
    position: Position | None  # None: the loop thread is in the loop's own machinery
    loop_cpu: float | None
    loop_wakeups: int | None
    cpu: dict[int, float] = field(default_factory=dict)  # other threads: ident -> CPU seconds
    names: dict[int, str] = field(default_factory=dict)
    frames: dict[int, FrameType] = field(default_factory=dict)  # other threads' frames

    def forget_frames(self) -> None:
        self.loop_frame = None
        self.frames = {}


@dataclass(slots=True)
class Verdict:
    kind: Literal["blocked", "starved"]
    position: Position | None = None
    threads: tuple[BusyThread, ...] = ()


@dataclass(slots=True)
class Episode:
    """The samples of one silence (the time since heartbeat ``beat``)."""

    beat: float
    first: Sample | None = None  # the CPU baseline (kept when older samples are dropped)
    samples: list[Sample] = field(default_factory=list)  # oldest first
    silent: float = 0.0  # the longest silence the watchdog saw
    reported: str | None = None  # None, "starved" (a block may still follow) or "blocked"

    def add(self, sample: Sample, silent: float) -> None:
        if self.first is None:
            self.first = sample
        if self.samples:
            self.samples[-1].forget_frames()  # only the latest one's are needed for a report
        self.samples.append(sample)
        if len(self.samples) > MAX_SAMPLES:
            del self.samples[0]
        self.silent = max(self.silent, silent)


def busy_threads(first: Sample, last: Sample) -> tuple[BusyThread, ...]:
    """The other threads that used at least 5% of the window (and 2 ms) of CPU, busiest first."""
    window = last.t - first.t
    floor = max(0.002, 0.05 * window)
    busy: list[BusyThread] = []
    for ident, cpu in last.cpu.items():
        used = cpu - first.cpu.get(ident, 0.0)
        frame = last.frames.get(ident)
        if used < floor or frame is None:
            continue
        top = top_user_frame(frame)
        busy.append(
            BusyThread(
                name=last.names[ident],
                cpu_s=used,
                filename=top.f_code.co_filename,
                lineno=lineno(top),
                function=top.f_code.co_name,
            )
        )
    busy.sort(key=lambda b: -b.cpu_s)
    return tuple(busy)


def held(a: Sample, b: Sample, after: Sample | None) -> bool:
    """Did the call the loop was seen in from sample ``a`` to ``b`` hold the loop? Yes if,
    between them, it slept in it (hardly any CPU, no wake-ups: I/O, a lock, a sleep) or ran
    more than two GIL switch intervals in it (a callback that lost the GIL would have
    returned within one); or if the loop thread ran much of the time until the next sample
    ``after``. Without per-thread CPU times, being seen in it twice is enough."""
    switch = sys.getswitchinterval()
    if a.loop_cpu is None or b.loop_cpu is None:
        return b is not a
    span = b.t - a.t
    if b is not a and span > 0:
        ran = b.loop_cpu - a.loop_cpu
        if ran >= 2 * switch:
            return True
        if a.loop_wakeups is not None and b.loop_wakeups is not None:
            wakeups = (b.loop_wakeups - a.loop_wakeups) * switch / span
            if ran < 0.03 * span and wakeups < 0.1:
                return True
    if after is not None and after.loop_cpu is not None:
        ran, span = after.loop_cpu - a.loop_cpu, after.t - a.t
        return ran >= 2 * switch and ran >= 0.1 * span
    return False


def starving(first: Sample, tail: list[Sample]) -> bool:
    """Did the other threads use 30% of a core while the loop thread, runnable, hardly ran:
    woken each GIL switch interval without running, or under 10% of the time?"""
    last = tail[-1]
    if first.loop_cpu is None or last.loop_cpu is None or last.t <= first.t:
        return False
    span = last.t - first.t
    others = sum(cpu - first.cpu.get(ident, 0.0) for ident, cpu in last.cpu.items())
    if others < 0.3 * span:
        return False
    if last.loop_cpu - first.loop_cpu < 0.1 * span:
        return True
    switch = sys.getswitchinterval()
    for a, b in itertools.pairwise(tail):
        window = b.t - a.t
        if (
            window > 0
            and a.loop_cpu is not None
            and b.loop_cpu is not None
            and a.loop_wakeups is not None
            and b.loop_wakeups is not None
            and b.loop_cpu - a.loop_cpu < 0.03 * window
            and (b.loop_wakeups - a.loop_wakeups) * switch / window >= 0.25
        ):
            return True
    return False


def judge(episode: Episode, end: Sample | None = None, patience: float = 0.0) -> Verdict | None:
    """Blocked by one call, starved by other threads, or no verdict (see the module doc).
    ``end``: a sample taken after the episode was over. ``patience``: while the loop has
    been seen in its current callback for less than this, no starvation verdict yet (over a
    few GIL turns a call that computes and a loop thread that waits look alike)."""
    samples = episode.samples
    first = episode.first
    if first is None or not samples:
        return None
    tail = [*samples, end] if end is not None else samples
    longest: tuple[float, Position] | None = None  # the longest call that held the loop
    i = 0
    while i < len(samples):
        position = samples[i].position
        if position is None:
            i += 1
            continue
        j = i  # samples i..j saw the loop inside one call
        while j + 1 < len(samples):
            nxt = samples[j + 1].position
            if nxt is None or not nxt.same_call(position):
                break
            position = nxt
            j += 1
        after = tail[j + 1] if j + 1 < len(tail) else None
        if held(samples[i], samples[j], after):
            span = (after or samples[j]).t - samples[i].t
            if longest is None or span >= longest[0]:
                longest = (span, position)
        elif longest is None and after is None and samples[j].t - samples[i].t < patience:
            return None  # still in this callback: look again before calling it starved
        i = j + 1
    if longest is not None:
        return Verdict("blocked", longest[1])
    busy = busy_threads(first, tail[-1])
    if busy and starving(first, tail):
        return Verdict("starved", threads=busy)
    last = samples[-1].position
    if last is not None:
        return Verdict("blocked", last)  # a busy loop: what it was running
    return None


def report_for(verdict: Verdict, silent: float, loop_frame: FrameType | None) -> BlockReport:
    """The report of a verdict on a silence of ``silent`` seconds: the busiest thread's frame
    when starved, else the innermost frame of the user's code in the call that held the loop."""
    if verdict.kind == "starved":
        top = verdict.threads[0]
        stack = "".join(traceback.format_stack(loop_frame, limit=STACK_LIMIT))
        return BlockReport(
            blocked_s=silent,
            filename=top.filename,
            lineno=top.lineno,
            function=top.function,
            stack=stack,
            kind="starved",
            threads=verdict.threads,
        )
    assert verdict.position is not None
    region = verdict.position.region  # outermost first
    innermost = region[-1]
    culprit = next((r for r in reversed(region) if is_user_code(r[0].f_code.co_filename)), None)
    if culprit is None:
        culprit = next(
            (r for r in reversed(region) if not r[0].f_code.co_filename.startswith(ASYNCIO_DIR)),
            innermost,
        )
    code = culprit[0].f_code
    return BlockReport(
        blocked_s=silent,
        filename=code.co_filename,
        lineno=culprit[2],
        function=code.co_name,
        stack="".join(traceback.format_stack(innermost[0], limit=STACK_LIMIT)),
        inside=None if innermost is culprit else where(innermost[0], innermost[2]),
    )
