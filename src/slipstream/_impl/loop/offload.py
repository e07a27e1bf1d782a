"""``ss.offload`` / ``@ss.nonblocking``: run sync code off the event loop.

Threads come from slipstream's bounded pool (``SLIPSTREAM_MAX_THREADS``, default 32; asyncio's
default is ``min(32, cpus + 4)``, 6 threads on 2 cores), processes from a bounded process pool
(``SLIPSTREAM_MAX_PROCESSES``, default the CPU count) started with ``forkserver`` where there is
one, so a forked worker never inherits the loop's threads and locks.

Cancellation: cancelling the awaiting task cancels the await at once; a thread cannot be
interrupted, so the function runs to its end in the background and its result is dropped (a
process-pool call not yet started is cancelled). Context variables are copied into threads, not
into processes.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal, ParamSpec, TypeVar

from ..core.callables import kind_of
from ..core.checks import check_callable, check_choice
from ..core.settings import env_int
from ..core.threads import default_executor

__all__ = ["nonblocking", "offload"]

P = ParamSpec("P")
T = TypeVar("T")
_lock = threading.Lock()
_processes: ProcessPoolExecutor | None = None


def _process_pool() -> ProcessPoolExecutor:
    global _processes
    if _processes is None:
        with _lock:
            if _processes is None:
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context(
                    "forkserver" if "forkserver" in methods else "spawn"
                )
                _processes = ProcessPoolExecutor(
                    max_workers=env_int("SLIPSTREAM_MAX_PROCESSES", os.cpu_count() or 2),
                    mp_context=context,
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                )
    return _processes


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs. A dead parent not yet reaped is a zombie, which ``kill(pid, 0)``
    still finds: on Linux its state in /proc says so."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # the pid was reused by someone else's process
            return False
        return True


def _exit_with_parent(parent_pid: int) -> None:
    """Run in each pool worker: exit when the process that made the pool is gone.

    A process killed by a signal runs no ``atexit`` handler, so its pool never shuts down, and
    the workers, which hold both ends of their call queue, would wait on it forever (measured:
    a server stopped with SIGTERM under uvicorn left its workers and forkserver behind).
    """

    def watch() -> None:
        while _alive(parent_pid):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="slipstream-parent-watch", daemon=True).start()


def _check(fn: object) -> None:
    check_callable("fn", fn)
    kind = kind_of(fn)
    if kind in ("async", "async_generator"):
        what = "a coroutine function" if kind == "async" else "an async generator function"
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!r} is {what}: it already runs on the loop "
            "without blocking it\nHINT: await it (or iterate it) directly instead of "
            "offloading it"
        )


async def offload(
    fn: Callable[..., T],
    /,
    *args: Any,
    kind: Literal["thread", "process"] = "thread",
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker thread (default) or process and await it.

    (``kind`` is keyword-only, so ``offload`` types its result but not ``fn``'s arguments:
    ``ParamSpec`` allows no keyword after ``*args``; ``@nonblocking`` keeps the full signature.)

    Raises:
        TypeError: ``fn`` is a coroutine function (nothing to offload) or not callable.
        ValueError: ``kind`` is neither "thread" nor "process".
    """
    check_choice("kind", kind, ("thread", "process"))
    _check(fn)
    call = functools.partial(fn, *args, **kwargs)
    if kind == "thread":
        return await _in_thread(call)
    if kind == "process":
        # Submitting may start worker processes (a forkserver handshake: ~50 ms measured on
        # the loop here), so submit from a thread; the await itself is a plain future.
        pool = _process_pool()
        future = await _in_thread(functools.partial(pool.submit, call))
        return await asyncio.wrap_future(future)
    raise ValueError(f"'kind' must be 'thread' or 'process', got {kind!r}")


async def _in_thread(call: Callable[[], T]) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(default_executor(), contextvars.copy_context().run, call)


def nonblocking(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """Make a sync function awaitable off the loop: ``await slow_io(...)`` runs in a thread."""
    _check(fn)

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await _in_thread(functools.partial(fn, *args, **kwargs))

    return wrapper
