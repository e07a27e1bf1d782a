"""``ss.LoopWatch``: measure event-loop lag all the time, and say why the loop stopped answering.

Seed 004's API answered in 5-10 s while cache clearing ran on the loop; the team found it with a
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

Example::

    async with ss.LoopWatch(slow_s=0.1) as watch:
        await serve()
    print(watch.statistics())
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import inspect
import itertools
import logging
import os
import site
import sys
import sysconfig
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, Literal

from ..core.checks import check_callable, check_int, check_seconds
from ..observe.histogram import Histogram

__all__ = ["BlockReport", "BusyThread", "LoopWatch", "LoopWatchStatistics"]

logger = logging.getLogger("slipstream.loopwatch")
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_RUNNERS_FILE = asyncio.runners.__file__
_OWN_FILE = __file__
# asyncio's functions the loop runs callbacks from: a frame of one of these ends the callback's
# part of the stack. Inside _run_once / run_forever (select, timers) the loop runs no callback.
_DISPATCH = frozenset({"_run", "_run_once", "run_forever", "run_until_complete"})
_LOOP_INTERNAL = frozenset({"_run_once", "run_forever"})
_CORO_FLAGS = (
    inspect.CO_COROUTINE
    | inspect.CO_ITERABLE_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_GENERATOR
)
_STACK_LIMIT = 10
_LINUX = sys.platform.startswith("linux") and hasattr(time, "clock_gettime")


def _library_dirs() -> tuple[str, ...]:
    """Where code that is not the user's lives: the standard library, site-packages, slipstream."""
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update(getattr(site, "getsitepackages", list)())
    if getattr(site, "ENABLE_USER_SITE", False):
        dirs.add(site.getusersitepackages())
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # slipstream itself
    found = set()
    for d in dirs:
        for form in (d, os.path.abspath(d), os.path.realpath(d)):
            found.add(form.rstrip(os.sep) + os.sep)
    return tuple(sorted(found))


_LIBRARY_PREFIXES = ("<frozen ", *_library_dirs())  # <frozen os>: the standard library
_PACKAGE_DIRS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_is_user_cache: dict[str, bool] = {}


def _is_user_code(filename: str) -> bool:
    """Is ``filename`` the user's code (not the standard library, an installed package, asyncio
    or slipstream)? Frozen modules (``<frozen os>``) are the standard library's."""
    user = _is_user_cache.get(filename)
    if user is None:
        user = not (
            filename.startswith(_LIBRARY_PREFIXES) or any(p in filename for p in _PACKAGE_DIRS)
        )
        if len(_is_user_cache) < 10_000:
            _is_user_cache[filename] = user
    return user


def _where(frame: FrameType, lineno: int) -> str:
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{frame.f_code.co_qualname} at {frame.f_code.co_filename}:{lineno}"


def _lineno(frame: FrameType) -> int:
    """The frame's current line; an instruction with no line of its own (``f_lineno`` is None,
    as while a generator starts) gets the nearest line before it, else the function's first."""
    line: int | None = frame.f_lineno
    if line is None:
        lasti = frame.f_lasti
        for start, _end, number in frame.f_code.co_lines():
            if start > lasti:
                break
            if number is not None:
                line = number
    return frame.f_code.co_firstlineno if line is None else line


def _top_frame(frame: FrameType) -> FrameType:
    """The innermost frame of the user's code in a thread's stack (else its innermost frame)."""
    f: FrameType | None = frame
    while f is not None:
        if _is_user_code(f.f_code.co_filename):
            return f
        f = f.f_back
    return frame


@dataclass(frozen=True, slots=True, kw_only=True)
class BusyThread:
    """A thread that ran while the loop was starved: ``cpu_s`` of CPU in the sampled part of the
    episode, seen last in ``function`` at ``filename:lineno`` (its innermost frame of user code)."""

    name: str
    cpu_s: float
    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return (
            f"{self.name} at {self.filename}:{self.lineno} {self.function} "
            f"({self.cpu_s * 1000:.0f} ms CPU)"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockReport:
    """The loop answered nothing for at least ``blocked_s``.

    ``kind="blocked"``: one call held the loop; ``function`` at ``filename:lineno`` is the
    innermost frame of the user's code in it (the innermost non-asyncio frame when no frame is
    the user's), ``inside`` the library frame it was in (``"os._walk at <frozen os>:368"``, or
    None when the user's frame was the innermost). ``kind="starved"``: the loop thread was
    runnable but other threads had the GIL or the CPU; ``threads`` names them (busiest first),
    and ``function``/``filename``/``lineno`` repeat the busiest one's frame. ``stack`` is the
    loop thread's stack (innermost frames).
    """

    blocked_s: float
    filename: str
    lineno: int
    function: str
    stack: str
    inside: str | None = None
    kind: Literal["blocked", "starved"] = "blocked"
    threads: tuple[BusyThread, ...] = ()

    def __str__(self) -> str:
        ms = f"{self.blocked_s * 1000:.0f} ms"
        if self.kind == "starved":
            n = len(self.threads)
            shown = ", ".join(str(t) for t in self.threads[:4])
            more = f", and {n - 4} more" if n > 4 else ""
            return (
                f"event loop starved for {ms}: the loop thread was runnable but {n} busy "
                f"thread{'s' if n != 1 else ''} held the GIL: {shown}{more}"
            )
        inside = f" (inside {self.inside})" if self.inside else ""
        return (
            f"event loop blocked for {ms} in {self.function} at {self.filename}:{self.lineno}"
            f"{inside}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopWatchStatistics:
    """Lag quantiles over all beats; ``blocks`` and ``starved`` count the reports of each kind."""

    beats: int
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    blocks: int
    reports: tuple[BlockReport, ...]
    starved: int = 0


# -- sampling (the watchdog thread, only while the heartbeat is late) --------------------------


def _thread_cpu(native_id: int) -> float | None:
    """CPU seconds of thread ``native_id`` of this process (Linux), None if unknown or gone.

    Linux's per-thread CPU clock id is computed from the TID (what ``pthread_getcpuclockid``
    returns); unlike a stale ``pthread_t``, a TID that is gone fails cleanly with EINVAL."""
    if not _LINUX:
        return None
    try:
        return time.clock_gettime((~native_id << 3) | 6)
    except (OSError, OverflowError, ValueError):
        return None


def _open_schedstat(native_id: int) -> int | None:
    """A file descriptor on thread ``native_id``'s scheduler statistics (Linux), or None."""
    try:
        return os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)
    except OSError:
        return None


def _wakeups(fd: int) -> int | None:
    """How many times the scheduler has run the thread (``schedstat``'s third field), or None."""
    try:
        return int(os.pread(fd, 128, 0).split()[2])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(slots=True)
class _Position:
    """Where a sample found the loop thread inside a callback: the callback's frames (outermost
    first, each with the instruction it was at) and the frame that dispatched the callback."""

    region: tuple[tuple[FrameType, int, int], ...]  # (frame, f_lasti, f_lineno) when sampled
    dispatch: FrameType | None

    def same_call(self, other: _Position) -> bool:
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
class _Sample:
    t: float
    loop_frame: FrameType | None
    position: _Position | None  # None: the loop thread is in the loop's own machinery
    loop_cpu: float | None
    loop_wakeups: int | None
    cpu: dict[int, float] = field(default_factory=dict)  # other threads: ident -> CPU seconds
    names: dict[int, str] = field(default_factory=dict)
    frames: dict[int, FrameType] = field(default_factory=dict)  # other threads' frames

    def forget_frames(self) -> None:
        self.loop_frame = None
        self.frames = {}


@dataclass(slots=True)
class _Verdict:
    kind: Literal["blocked", "starved"]
    position: _Position | None = None
    threads: tuple[BusyThread, ...] = ()


_MAX_SAMPLES = 64  # per episode (each holds the frames of the loop's callback)


@dataclass(slots=True)
class _Episode:
    """The samples of one silence (the time since heartbeat ``beat``)."""

    beat: float
    first: _Sample | None = None  # the CPU baseline (kept when older samples are dropped)
    samples: list[_Sample] = field(default_factory=list)  # oldest first
    silent: float = 0.0  # the longest silence the watchdog saw
    reported: str | None = None  # None, "starved" (a block may still follow) or "blocked"

    def add(self, sample: _Sample, silent: float) -> None:
        if self.first is None:
            self.first = sample
        if self.samples:
            self.samples[-1].forget_frames()  # only the latest one's are needed for a report
        self.samples.append(sample)
        if len(self.samples) > _MAX_SAMPLES:
            del self.samples[0]
        self.silent = max(self.silent, silent)


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
        self._base_frames = self._frames_below_the_loop(sys._getframe(1))
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

    @staticmethod
    def _frames_below_the_loop(frame: FrameType | None) -> dict[int, FrameType]:
        """The frames the loop runs inside (outside the task that called ``start``), kept so a
        loop with no Python dispatch frame (uvloop driven from the user's own code) still has
        an end to its callbacks' part of the stack. asyncio's frames are recognised by name."""
        f = frame
        while f is not None and not f.f_code.co_flags & _CORO_FLAGS:
            f = f.f_back  # sync helpers between start() and the coroutine
        while f is not None and f.f_code.co_flags & _CORO_FLAGS:
            f = f.f_back  # the task's own coroutines
        below: dict[int, FrameType] = {}
        while f is not None:
            if not f.f_code.co_filename.startswith(_ASYNCIO_DIR):
                below[id(f)] = f  # held, so the id stays this frame's
            f = f.f_back
        return below

    async def _heartbeat(self) -> None:
        interval, threshold = self.interval_s, self.slow_s
        while True:
            expected = time.monotonic() + interval
            await asyncio.sleep(interval)
            now = time.monotonic()
            lag = now - expected
            self._lag.add(max(0.0, lag))
            if lag >= threshold:  # for a watchdog that did not see the whole silence
                self._long_silence = (self._last_beat, lag)
            self._last_beat = now

    # -- the watchdog thread ---------------------------------------------------------------

    def _locate(self, frame: FrameType | None) -> _Position | None:
        """The callback the loop thread is running, or None when it is in the loop's own
        machinery (``select``, timers, asyncio's own callbacks, this heartbeat)."""
        inner: list[FrameType] = []
        f = frame
        while f is not None:
            code = f.f_code
            name = code.co_filename
            if name.startswith(_ASYNCIO_DIR):
                if code.co_name in _DISPATCH or name == _RUNNERS_FILE:
                    break
            elif id(f) in self._base_frames:
                break
            elif name == _OWN_FILE:
                return None
            inner.append(f)
            f = f.f_back
        if (
            f is not None
            and f.f_code.co_name in _LOOP_INTERNAL
            and f.f_code.co_filename.startswith(_ASYNCIO_DIR)
        ):
            return None
        if all(x.f_code.co_filename.startswith(_ASYNCIO_DIR) for x in inner):
            return None  # also when empty
        return _Position(tuple((x, x.f_lasti, _lineno(x)) for x in reversed(inner)), f)

    def _sample(self, cpu_ok: bool, schedstat: int | None) -> _Sample:
        """The loop thread's stack, position and CPU time and the other threads' CPU times,
        all read while this thread keeps the GIL (a thread that lets go of it may wait 100 ms
        and more to get it back while other threads are busy); the ``schedstat`` read, which
        lets go of it, comes last (the count is taken before the wait)."""
        frames = sys._current_frames()
        t = time.monotonic()
        loop_cpu = _thread_cpu(self._loop_native_id) if cpu_ok else None
        loop_frame = frames.pop(self._loop_thread, None)
        frames.pop(threading.get_ident(), None)
        sample = _Sample(
            t=t,
            loop_frame=loop_frame,
            position=self._locate(loop_frame),
            loop_cpu=loop_cpu,
            loop_wakeups=None,
        )
        if cpu_ok:
            threads = {th.ident: th for th in threading.enumerate()}
            for ident in frames:
                thread = threads.get(ident)
                native = getattr(thread, "native_id", None)
                cpu = _thread_cpu(native) if native is not None else None
                if thread is not None and cpu is not None:
                    sample.cpu[ident] = cpu
                    sample.names[ident] = thread.name
            sample.frames = frames
        if schedstat is not None:
            sample.loop_wakeups = _wakeups(schedstat)
        return sample

    @staticmethod
    def _busy_threads(first: _Sample, last: _Sample) -> tuple[BusyThread, ...]:
        window = last.t - first.t
        floor = max(0.002, 0.05 * window)
        busy: list[BusyThread] = []
        for ident, cpu in last.cpu.items():
            used = cpu - first.cpu.get(ident, 0.0)
            frame = last.frames.get(ident)
            if used < floor or frame is None:
                continue
            top = _top_frame(frame)
            busy.append(
                BusyThread(
                    name=last.names[ident],
                    cpu_s=used,
                    filename=top.f_code.co_filename,
                    lineno=_lineno(top),
                    function=top.f_code.co_name,
                )
            )
        busy.sort(key=lambda b: -b.cpu_s)
        return tuple(busy)

    @staticmethod
    def _held(a: _Sample, b: _Sample, after: _Sample | None) -> bool:
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

    @staticmethod
    def _starving(first: _Sample, tail: list[_Sample]) -> bool:
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

    @classmethod
    def _judge(
        cls, episode: _Episode, end: _Sample | None = None, patience: float = 0.0
    ) -> _Verdict | None:
        """Blocked by one call, starved by other threads, or no verdict (see the module doc).
        ``end``: a sample taken after the episode was over. ``patience``: while the loop has
        been seen in its current callback for less than this, no starvation verdict yet (over a
        few GIL turns a call that computes and a loop thread that waits look alike)."""
        samples = episode.samples
        first = episode.first
        if first is None or not samples:
            return None
        tail = [*samples, end] if end is not None else samples
        held: tuple[float, _Position] | None = None  # the longest call that held the loop
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
            if cls._held(samples[i], samples[j], after):
                span = (after or samples[j]).t - samples[i].t
                if held is None or span >= held[0]:
                    held = (span, position)
            elif held is None and after is None and samples[j].t - samples[i].t < patience:
                return None  # still in this callback: look again before calling it starved
            i = j + 1
        if held is not None:
            return _Verdict("blocked", held[1])
        busy = cls._busy_threads(first, tail[-1])
        if busy and cls._starving(first, tail):
            return _Verdict("starved", threads=busy)
        last = samples[-1].position
        if last is not None:
            return _Verdict("blocked", last)  # a busy loop: what it was running
        return None

    @staticmethod
    def _report_for(verdict: _Verdict, silent: float, loop_frame: FrameType | None) -> BlockReport:
        if verdict.kind == "starved":
            top = verdict.threads[0]
            stack = "".join(traceback.format_stack(loop_frame, limit=_STACK_LIMIT))
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
        culprit = next(
            (r for r in reversed(region) if _is_user_code(r[0].f_code.co_filename)), None
        )
        if culprit is None:
            culprit = next(
                (
                    r
                    for r in reversed(region)
                    if not r[0].f_code.co_filename.startswith(_ASYNCIO_DIR)
                ),
                innermost,
            )
        code = culprit[0].f_code
        return BlockReport(
            blocked_s=silent,
            filename=code.co_filename,
            lineno=culprit[2],
            function=code.co_name,
            stack="".join(traceback.format_stack(innermost[0], limit=_STACK_LIMIT)),
            inside=None if innermost is culprit else _where(innermost[0], innermost[2]),
        )

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

    def _finish(self, episode: _Episode, end: _Sample | None) -> None:
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
        verdict = self._judge(episode, end)
        if verdict is not None and not (episode.reported == "starved" == verdict.kind):
            self._emit(self._report_for(verdict, silent, episode.samples[-1].loop_frame))

    def _watchdog(self) -> None:
        period = min(self.slow_s / 2, 0.1)
        start = self.slow_s / 4  # a silence this long is sampled
        cpu_ok = _thread_cpu(self._loop_native_id) is not None
        schedstat = _open_schedstat(self._loop_native_id) if cpu_ok else None
        episode = _Episode(self._last_beat)
        wait = period
        try:
            while not self._stop.wait(wait):
                wait = period
                beat = self._last_beat
                silent = time.monotonic() - beat - self.interval_s
                if beat != episode.beat:  # the loop has beaten: the episode is over
                    sample = None
                    if episode.samples and episode.reported != "blocked":
                        sample = self._sample(cpu_ok, schedstat)
                        self._finish(episode, sample)
                    episode = _Episode(beat)
                    if sample is not None and silent >= start and self._last_beat == beat:
                        episode.add(sample, silent)  # taken after that beat: this episode's too
                        wait = min(period, 0.01)
                        continue
                if silent < start or episode.reported == "blocked":
                    continue  # the heartbeat is (nearly) on time: nothing is sampled
                sample = self._sample(cpu_ok, schedstat)
                if self._last_beat != beat:  # it beat while we sampled
                    self._finish(episode, sample)
                    episode = _Episode(self._last_beat)
                    continue
                episode.add(sample, silent)
                if len(episode.samples) == 1:
                    wait = min(period, 0.01)  # a second look soon: one sample cannot tell much
                    continue
                if silent < self.slow_s:
                    continue
                verdict = self._judge(episode, patience=self.slow_s / 2)
                if verdict is not None and not (episode.reported == "starved" == verdict.kind):
                    episode.reported = verdict.kind
                    self._emit(self._report_for(verdict, silent, sample.loop_frame))
                verdict = None
        finally:
            episode = _Episode(0.0)  # let go of the frames
            if schedstat is not None:
                os.close(schedstat)

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
            starved=self._starved,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<LoopWatch slow={self.slow_s * 1000:.0f}ms beats={s.beats} "
            f"lag_p99={s.lag_p99_s * 1000:.1f}ms blocks={s.blocks} starved={s.starved}>"
        )
