"""Lanes: named bounds on how many offloaded calls run at once, shared across loops and threads.

A lane counts its running calls under a ``threading.Lock``, so one bound holds for the whole
process: a lane used from two event loops (in sequence, or at once from two threads) admits at
most ``limit`` calls in all. A call that finds the lane full waits on its own loop (a future of
that loop, never an asyncio primitive of another), first come first served. A slot is released
by the worker when the call really ends (from the worker thread, or the process pool's result
thread) and handed to the oldest waiter through ``call_soon_threadsafe`` on the waiter's loop.

Cancelling a waiting call takes nothing and releases nothing; if the slot was handed to it in
the same instant, it passes the slot on to the next waiter.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import final

from ..core.settings import env_int

__all__ = ["Lane", "OffloadStatistics", "lane_named", "offload_statistics"]

CPU_LANE = "cpu"
DEFAULT_LANE_LIMIT = 1


@final
@dataclass(frozen=True, kw_only=True, slots=True)
class OffloadStatistics:
    """One lane's counts at one moment (``ss.offload_statistics()``).

    Attributes:
        lane: the lane's name ("cpu" for ``kind="cpu"``; a function's qualified name for a
            ``limit`` given without a lane).
        limit: how many of its calls may run at once.
        running: calls running now (holding a slot).
        waiting: calls waiting for a slot now.
        peak_running: the most calls that ever ran at once.
        peak_waiting: the most calls that ever waited at once.
        calls: calls admitted so far (given a slot).
    """

    lane: str
    limit: int
    running: int
    waiting: int
    peak_running: int
    peak_waiting: int
    calls: int


class _Waiter:
    __slots__ = ("future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.granted = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Lane:
    """A bound of ``limit`` calls at once; ``acquire`` on a loop, ``release`` from any thread."""

    def __init__(self, name: str, limit: int, *, explicit: bool) -> None:
        self.name = name
        self.limit = limit
        self.explicit = explicit  # False: the default limit, which a first explicit one replaces
        self._lock = threading.Lock()
        self._running = 0
        self._waiters: deque[_Waiter] = deque()
        self._peak_running = 0
        self._peak_waiting = 0
        self._calls = 0

    def set_limit(self, limit: int) -> None:
        """Fix the limit given explicitly; a different explicit limit later is a ValueError."""
        with self._lock:
            if self.explicit:
                if limit != self.limit:
                    raise ValueError(
                        f"'limit' of lane {self.name!r} is already {self.limit}, got {limit}\n"
                        "HINT: give a lane's limit once (or the same value everywhere)"
                    )
                return
            self.limit, self.explicit = limit, True
            while self._running < self.limit and self._hand_over_locked():
                self._running += 1  # a new slot, handed straight to a waiter
                self._peak_running = max(self._peak_running, self._running)

    def _admit_locked(self) -> None:
        self._calls += 1
        self._peak_running = max(self._peak_running, self._running)

    async def acquire(self) -> None:
        """Take a slot, waiting on the running loop while the lane is full."""
        with self._lock:
            if self._running < self.limit and not self._waiters:
                self._running += 1
                self._admit_locked()
                return
            waiter = _Waiter(asyncio.get_running_loop())
            self._waiters.append(waiter)
            self._peak_waiting = max(self._peak_waiting, len(self._waiters))
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                if waiter.granted:  # handed a slot as it was cancelled: pass it on
                    self._release_locked()
                else:
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back (from any thread): to the oldest waiter, or to the lane."""
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if not self._hand_over_locked():
            self._running -= 1

    def _hand_over_locked(self) -> bool:
        """Pass the caller's slot to the oldest waiter whose loop still runs (False: none)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            try:
                waiter.loop.call_soon_threadsafe(_wake, waiter.future)
            except RuntimeError:  # its loop is closed: the waiting task is gone with it
                continue
            waiter.granted = True
            self._admit_locked()
            return True
        return False

    def statistics(self) -> OffloadStatistics:
        with self._lock:
            return OffloadStatistics(
                lane=self.name,
                limit=self.limit,
                running=self._running,
                waiting=len(self._waiters),
                peak_running=self._peak_running,
                peak_waiting=self._peak_waiting,
                calls=self._calls,
            )


_lanes: dict[str, Lane] = {}
_registry_lock = threading.Lock()


def lane_named(name: str, limit: int | None) -> Lane:
    """The process's lane called ``name``, made on first use.

    Its limit is the one given explicitly (the same value everywhere); until one is given it
    is 1, or ``SLIPSTREAM_CPU_THREADS`` (default 1) for the "cpu" lane.
    """
    with _registry_lock:
        lane = _lanes.get(name)
        if lane is None:
            if limit is None:
                default = (
                    env_int("SLIPSTREAM_CPU_THREADS", DEFAULT_LANE_LIMIT)
                    if name == CPU_LANE
                    else DEFAULT_LANE_LIMIT
                )
                lane = Lane(name, default, explicit=False)
            else:
                lane = Lane(name, limit, explicit=True)
            _lanes[name] = lane
            return lane
    if limit is not None:
        lane.set_limit(limit)
    return lane


def offload_statistics() -> dict[str, OffloadStatistics]:
    """Each lane's running, waiting and peak counts now, by lane name.

    Calls offloaded without a lane or limit (plain ``ss.offload(fn)``) share the thread pool
    and appear in no lane.

    Example::

        stats = ss.offload_statistics()["export"]
        print(stats.running, stats.waiting, stats.peak_running)
    """
    with _registry_lock:
        lanes = list(_lanes.values())
    return {lane.name: lane.statistics() for lane in lanes}


def _forget_after_fork() -> None:
    """A forked child starts with no lanes: the parent's running calls are not its own."""
    global _registry_lock
    _lanes.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
