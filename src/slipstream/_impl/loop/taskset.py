"""``ss.TaskSet``: background tasks that are owned, bounded, observed and drained.

A fire-and-forget ``create_task`` can be garbage collected mid-flight (nothing references the
task), its exception is logged, if ever, as "never retrieved", and such background work piles
up without a bound. A ``TaskSet`` keeps a strong reference to every task, bounds
how many run (extra ones wait, or are rejected), records every failure (with its exception, not
just a log line) and every task slower than ``slow_s``, and drains or cancels them at shutdown.

Example::

    async with ss.TaskSet(limit=8) as tasks:
        for asset in assets:
            await tasks.spawn(index(asset))      # waits while 8 are running
    # leaving the block waited for all of them
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, final

from ..core.checks import check_choice, check_int, check_seconds
from ..core.clock import now as _now
from ..core.errors import TaskSetFull

__all__ = ["TaskSet", "TaskSetStatistics"]

logger = logging.getLogger("slipstream.tasks")
T = TypeVar("T")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSetStatistics:
    running: int
    started: int
    finished: int
    failed: int
    cancelled: int
    rejected: int
    slow: int
    max_running: int


@final
class TaskSet:
    """Own background tasks: strong references, a bound, failure records, drain at exit.

    Args:
        limit: most tasks running at once (None: no bound).
        policy: when full, ``"wait"`` for a slot or ``"reject"`` with ``TaskSetFull``.
        slow_s: log (warning) tasks that run longer than this.
        name: shown in logs.
        max_failures: how many failures ``failures`` keeps (oldest dropped; all are counted).
    """

    def __init__(
        self,
        limit: int | None = None,
        *,
        policy: Literal["wait", "reject"] = "wait",
        slow_s: float | None = None,
        name: str = "tasks",
        max_failures: int = 1000,
    ) -> None:
        limit = check_int("limit", limit, minimum=1, allow_none=True)
        check_choice("policy", policy, ("wait", "reject"))
        slow_s = check_seconds("slow_s", slow_s, allow_none=True)
        max_failures = check_int("max_failures", max_failures, minimum=0)
        self.limit = limit
        self.policy = policy
        self.slow_s = slow_s
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots: asyncio.Semaphore | None = None
        self.failures: deque[tuple[str, BaseException]] = deque(maxlen=max_failures)
        self._started = self._finished = self._failed = self._cancelled = 0
        self._rejected = self._slow = self._max_running = 0

    async def spawn(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> asyncio.Task[T]:
        """Start ``coro`` as an owned task; waits for a slot (or raises ``TaskSetFull``)."""
        if not asyncio.iscoroutine(coro):
            raise TypeError(f"'coro' must be a coroutine, got {type(coro).__name__}")
        if self.limit is not None:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.limit)
            if self.policy == "reject" and self._slots.locked():
                coro.close()
                self._rejected += 1
                raise TaskSetFull(f"task set {self.name!r} is full ({self.limit} running)")
            try:
                await self._slots.acquire()
            except BaseException:
                coro.close()
                raise
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        self._started += 1
        self._max_running = max(self._max_running, len(self._tasks))
        started = _now()
        task.add_done_callback(lambda t: self._done(t, started))
        return task

    def _done(self, task: asyncio.Task[Any], started: float) -> None:
        self._tasks.discard(task)
        if self._slots is not None:
            self._slots.release()
        elapsed = _now() - started
        if self.slow_s is not None and elapsed > self.slow_s:
            self._slow += 1
            logger.warning("%s: task %s took %.3fs", self.name, task.get_name(), elapsed)
        if task.cancelled():
            self._cancelled += 1
            return
        exc = task.exception()  # retrieved here: it is kept, and logged, never lost
        if exc is None:
            self._finished += 1
            return
        self._failed += 1
        self.failures.append((task.get_name(), exc))
        logger.error("%s: task %s failed", self.name, task.get_name(), exc_info=exc)

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Wait for every task (including ones started meanwhile); False if ``timeout_s`` ran
        out first (the tasks keep running)."""
        deadline = None if timeout_s is None else _now() + timeout_s
        while self._tasks:
            left = None if deadline is None else deadline - _now()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=left)
        return True

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they are gone."""
        for task in list(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def __aenter__(self) -> TaskSet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info[1] is not None:  # the block failed or was cancelled: do not wait on its work
            await asyncio.shield(self.cancel_all())
        else:
            await self.drain()

    def statistics(self) -> TaskSetStatistics:
        return TaskSetStatistics(
            running=len(self._tasks),
            started=self._started,
            finished=self._finished,
            failed=self._failed,
            cancelled=self._cancelled,
            rejected=self._rejected,
            slow=self._slow,
            max_running=self._max_running,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<TaskSet {self.name!r} running={s.running} failed={s.failed} limit={self.limit}>"
