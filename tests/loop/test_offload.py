"""offload and @nonblocking: threads keep the context, processes exit with their parent,
cancellation never waits."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def square(x: int) -> int:
    return x * x


class TestOffload:
    def test_thread_and_context(self, arun: Run) -> None:
        """offload runs in another thread and carries context variables."""
        var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

        def where(suffix: str) -> tuple[int, str]:
            return threading.get_ident(), var.get() + suffix

        async def main() -> tuple[int, tuple[int, str]]:
            var.set("ctx")
            return threading.get_ident(), await ss.offload(where, "!")

        loop_thread, (thread, value) = arun(main())
        assert loop_thread != thread
        assert "ctx!" == value

    def test_process(self, arun: Run) -> None:
        """kind='process' runs in the bounded process pool."""
        assert 144 == arun(ss.offload(square, 12, kind="process"))

    @pytest.mark.realtime
    def test_pool_workers_exit_when_their_process_is_killed(self) -> None:
        script = (Path(__file__).parents[1] / "workers") / "killed_with_a_pool.py"
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=30
        )
        assert -signal.SIGTERM == done.returncode
        worker = int(done.stdout.split()[0])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
            time.sleep(0.1)
        assert not Path(f"/proc/{worker}").exists()  # no orphan left waiting forever

    @pytest.mark.realtime
    def test_nonblocking_decorator(self, arun: Run) -> None:
        """@nonblocking keeps the name and makes the call awaitable off the loop: a 0.6 s
        sleep in it never stalls the loop for 0.3 s (generous: real time on a busy machine)."""

        @ss.nonblocking
        def slow_read(n: int) -> int:
            """Read."""
            time.sleep(0.6)
            return n

        async def main() -> int:
            async with testing.loop_never_blocked(0.3):
                return await slow_read(3)

        assert 3 == arun(main())
        assert ("slow_read", "Read.") == (slow_read.__name__, slow_read.__doc__)

    @pytest.mark.realtime
    def test_cancelling_the_await_does_not_wait_for_the_thread(self, arun: Run) -> None:
        """Cancelling the awaiting task returns at once (well under the thread's 2 s); the
        thread finishes on its own."""
        done = threading.Event()

        def long() -> None:
            time.sleep(2.0)
            done.set()

        async def main() -> float:
            task = asyncio.create_task(ss.offload(long))
            await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.perf_counter() - t0

        assert arun(main()) < 1.0
        assert done.wait(5)

    def test_bad_input(self, arun: Run) -> None:
        """A coroutine function is a TypeError with a hint; an unknown kind is named."""

        async def already_async() -> None:
            return None

        with pytest.raises(TypeError, match="HINT"):
            arun(ss.offload(already_async))
        with pytest.raises(TypeError, match="HINT"):
            ss.nonblocking(already_async)
        with pytest.raises(ValueError, match="'kind'"):
            arun(ss.offload(square, 2, kind="fiber"))  # type: ignore[arg-type]
