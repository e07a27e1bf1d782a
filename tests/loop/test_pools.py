"""The pools offloaded work runs in: CPU-heavy kinds run at a lowered priority (nice), read back
inside the worker thread or process; I/O threads keep the normal priority."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice is Linux only"
)


def my_nice() -> int:
    """The calling thread's nice value (on Linux a thread id names one thread)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux
class TestNice:
    def test_each_kind_runs_at_its_default_priority(self, arun: Run) -> None:
        """kind="thread" keeps this process's priority; "cpu" threads and "process" workers
        run 10 lower, read back inside the worker."""
        base = my_nice()

        async def main() -> tuple[int, int, int]:
            return (
                await ss.offload(my_nice),
                await ss.offload(my_nice, kind="cpu"),
                await ss.offload(my_nice, kind="process"),
            )

        assert (base, min(base + 10, 19), min(base + 10, 19)) == arun(main())

    def test_nice_is_an_option(self, arun: Run) -> None:
        """nice= sets how much lower the worker runs, for threads, decorated functions and
        processes; nice=0 keeps the normal priority even for CPU work."""
        base = my_nice()
        lowered = ss.nonblocking(nice=5)(my_nice)

        async def main() -> tuple[int, int, int, int]:
            return (
                await ss.offload(my_nice, nice=3),
                await lowered(),
                await ss.offload(my_nice, kind="process", nice=4),
                await ss.offload(my_nice, kind="cpu", nice=0),
            )

        assert (base + 3, base + 5, base + 4, base) == arun(main())

    def test_a_niced_thread_never_serves_normal_work(self, arun: Run) -> None:
        """Niced work runs in its own threads, so a lowered thread (which cannot be raised
        back without privilege) is never reused for normal-priority calls."""
        base = my_nice()

        async def main() -> list[int]:
            for _ in range(4):
                await ss.offload(my_nice, nice=7)
            return [await ss.offload(my_nice) for _ in range(8)]

        assert [base] * 8 == arun(main())
