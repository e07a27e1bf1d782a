"""The watchdog thread's eyes: where the loop thread is, and how much every thread has run.

Everything here reads the live process (``sys._current_frames()``, per-thread CPU clocks,
``/proc/self/task/<tid>/schedstat``) into :class:`~.verdict.Sample` objects; what they mean is
decided in ``verdict``. Per-thread CPU times and wake-ups are Linux-only; elsewhere a sample
carries the loop thread's stack alone.
"""

from __future__ import annotations

import asyncio.runners
import inspect
import os
import sys
import threading
import time
from types import FrameType

from .frames import ASYNCIO_DIR, lineno
from .verdict import Position, Sample

__all__ = ["Sampler", "frames_below_the_loop", "thread_cpu"]

_RUNNERS_FILE = asyncio.runners.__file__
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
_LINUX = sys.platform.startswith("linux") and hasattr(time, "clock_gettime")


def thread_cpu(native_id: int) -> float | None:
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


def frames_below_the_loop(frame: FrameType | None) -> dict[int, FrameType]:
    """The frames the loop runs inside (outside the task whose frame is ``frame``), kept so a
    loop with no Python dispatch frame (uvloop driven from the user's own code) still has an
    end to its callbacks' part of the stack. asyncio's frames are recognised by name."""
    f = frame
    while f is not None and not f.f_code.co_flags & _CORO_FLAGS:
        f = f.f_back  # sync helpers between start() and the coroutine
    while f is not None and f.f_code.co_flags & _CORO_FLAGS:
        f = f.f_back  # the task's own coroutines
    below: dict[int, FrameType] = {}
    while f is not None:
        if not f.f_code.co_filename.startswith(ASYNCIO_DIR):
            below[id(f)] = f  # held, so the id stays this frame's
        f = f.f_back
    return below


class Sampler:
    """Samples one loop thread from the watchdog thread; ``close()`` when done.

    Args:
        loop_thread: the loop thread's ``threading.get_ident()``.
        loop_native_id: its ``threading.get_native_id()`` (for its CPU clock and schedstat).
        base_frames: :func:`frames_below_the_loop` of the task that started watching.
        own_file: the watcher's own source file: a loop thread found in it (the heartbeat)
            is in the loop's machinery, not in a user's callback.
    """

    __slots__ = (
        "_base_frames",
        "_loop_native_id",
        "_loop_thread",
        "_own_file",
        "_schedstat",
        "cpu_ok",
    )

    def __init__(
        self,
        loop_thread: int,
        loop_native_id: int,
        base_frames: dict[int, FrameType],
        own_file: str,
    ) -> None:
        self._loop_thread = loop_thread
        self._loop_native_id = loop_native_id
        self._base_frames = base_frames
        self._own_file = own_file
        # Per-thread CPU times readable here? Without them there is no starvation verdict.
        self.cpu_ok = thread_cpu(loop_native_id) is not None
        self._schedstat = _open_schedstat(loop_native_id) if self.cpu_ok else None

    def close(self) -> None:
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None

    def locate(self, frame: FrameType | None) -> Position | None:
        """The callback the loop thread is running, or None when it is in the loop's own
        machinery (``select``, timers, asyncio's own callbacks, the watcher's heartbeat)."""
        inner: list[FrameType] = []
        f = frame
        while f is not None:
            code = f.f_code
            name = code.co_filename
            if name.startswith(ASYNCIO_DIR):
                if code.co_name in _DISPATCH or name == _RUNNERS_FILE:
                    break
            elif id(f) in self._base_frames:
                break
            elif name == self._own_file:
                return None
            inner.append(f)
            f = f.f_back
        if (
            f is not None
            and f.f_code.co_name in _LOOP_INTERNAL
            and f.f_code.co_filename.startswith(ASYNCIO_DIR)
        ):
            return None
        if all(x.f_code.co_filename.startswith(ASYNCIO_DIR) for x in inner):
            return None  # also when empty
        return Position(tuple((x, x.f_lasti, lineno(x)) for x in reversed(inner)), f)

    def sample(self) -> Sample:
        """The loop thread's stack, position and CPU time and the other threads' CPU times,
        all read while this thread keeps the GIL (a thread that lets go of it may wait 100 ms
        and more to get it back while other threads are busy); the ``schedstat`` read, which
        lets go of it, comes last (the count is taken before the wait)."""
        cpu_ok = self.cpu_ok
        frames = sys._current_frames()
        # Real monotonic time, as the heartbeat's: the stall is real whatever clock the loop
        # keeps, and this thread cannot read a loop's clock anyway.
        t = time.monotonic()
        loop_cpu = thread_cpu(self._loop_native_id) if cpu_ok else None
        loop_frame = frames.pop(self._loop_thread, None)
        frames.pop(threading.get_ident(), None)
        sample = Sample(
            t=t,
            loop_frame=loop_frame,
            position=self.locate(loop_frame),
            loop_cpu=loop_cpu,
            loop_wakeups=None,
        )
        if cpu_ok:
            threads = {th.ident: th for th in threading.enumerate()}
            for ident in frames:
                thread = threads.get(ident)
                native = getattr(thread, "native_id", None)
                cpu = thread_cpu(native) if native is not None else None
                if thread is not None and cpu is not None:
                    sample.cpu[ident] = cpu
                    sample.names[ident] = thread.name
            sample.frames = frames
        if self._schedstat is not None:
            sample.loop_wakeups = _wakeups(self._schedstat)
        return sample
