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
        """A process killed by SIGTERM while its pool has workers leaves no worker behind: each
        exits once it sees its parent gone (real processes, so real time)."""
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

    def test_cancelling_the_await_does_not_wait_for_the_thread(self, vrun: Run) -> None:
        """Cancelling the awaiting task returns while the thread is still blocked; the thread
        finishes on its own afterwards."""
        started, release, done = threading.Event(), threading.Event(), threading.Event()

        def long() -> None:
            started.set()
            release.wait(10)
            done.set()

        async def main() -> bool:
            task = asyncio.create_task(ss.offload(long))
            await asyncio.to_thread(started.wait, 5)  # the call runs: it can no longer be dropped
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return done.is_set()

        try:
            assert not vrun(main())  # the await returned before the thread could finish
        finally:
            release.set()
        assert done.wait(5)

    def test_bad_input(self, vrun: Run) -> None:
        """A coroutine function is a TypeError with a hint; an unknown kind is named."""

        async def already_async() -> None:
            return None

        with pytest.raises(TypeError, match="HINT"):
            vrun(ss.offload(already_async))
        with pytest.raises(TypeError, match="HINT"):
            ss.nonblocking(already_async)
        with pytest.raises(ValueError, match="'kind'"):
            vrun(ss.offload(square, 2, kind="fiber"))  # type: ignore[arg-type]


class TestNonblocking:
    def test_the_loop_runs_while_the_call_blocks(self, vrun: Run) -> None:
        """@nonblocking keeps the name and makes the call awaitable off the loop: the call
        blocks until a timer on the loop releases it, which it could never do on the loop."""
        release = threading.Event()

        @ss.nonblocking
        def slow_read(n: int) -> int:
            """Read."""
            if not release.wait(10):  # generous: only a call that holds the loop waits this long
                raise TimeoutError("the loop never ran while the call blocked")
            return n

        async def main() -> int:
            asyncio.get_running_loop().call_later(0.6, release.set)
            return await slow_read(3)

        assert 3 == vrun(main())
        assert ("slow_read", "Read.") == (slow_read.__name__, slow_read.__doc__)
