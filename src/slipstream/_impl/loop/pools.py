"""The pools offloaded calls run in: threads at normal or lowered priority, and processes.

Threads at normal priority are slipstream's shared pool (``core.threads``). A lowered priority
cannot be raised back without privilege (Linux refuses an unprivileged lower nice value), so
threads that run niced work live in their own pool per nice value, each thread niced once when
it starts; on Linux ``setpriority`` on a thread id changes that thread alone. Elsewhere thread
priorities are left as they are (there is no portable per-thread nice).

Processes come from a bounded pool per nice value (``SLIPSTREAM_MAX_PROCESSES``, default the
CPU count) started with ``forkserver`` where there is one, so a forked worker never inherits
the loop's threads and locks; each worker lowers its own priority with ``os.nice`` and exits
when the process that made the pool is gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from ..core.settings import env_int
from ..core.threads import default_executor

__all__ = ["NICE_THREADS", "process_pool", "thread_pool"]

NICE_THREADS = sys.platform.startswith("linux") and hasattr(os, "setpriority")
_lock = threading.Lock()
_processes: dict[int, ProcessPoolExecutor] = {}
_threads: dict[int, ThreadPoolExecutor] = {}


def _nice_this_thread(nice: int) -> None:
    """Lower the calling thread's priority by ``nice`` (Linux: per thread)."""
    with contextlib.suppress(OSError):  # a sandbox that forbids it: run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def thread_pool(nice: int) -> Executor:
    """The pool for threads at ``nice``: the shared pool for 0 (or where threads cannot be
    niced), else a pool of threads niced once at their start."""
    if nice == 0 or not NICE_THREADS:
        return default_executor()
    pool = _threads.get(nice)
    if pool is None:
        with _lock:
            pool = _threads.get(nice)
            if pool is None:
                pool = _threads[nice] = ThreadPoolExecutor(
                    max_workers=env_int("SLIPSTREAM_MAX_THREADS", 32),
                    thread_name_prefix=f"slipstream-nice{nice}",
                    initializer=_nice_this_thread,
                    initargs=(nice,),
                )
    return pool


def process_pool(nice: int) -> ProcessPoolExecutor:
    """The process pool whose workers run at ``nice``, started on first use."""
    pool = _processes.get(nice)
    if pool is None:
        with _lock:
            pool = _processes.get(nice)
            if pool is None:
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context(
                    "forkserver" if "forkserver" in methods else "spawn"
                )
                pool = _processes[nice] = ProcessPoolExecutor(
                    max_workers=env_int("SLIPSTREAM_MAX_PROCESSES", os.cpu_count() or 2),
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(os.getpid(), nice),
                )
    return pool


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


def _start_worker(parent_pid: int, nice: int) -> None:
    """Run in each pool worker: lower its priority, and exit when the process that made the
    pool is gone.

    A process killed by a signal runs no ``atexit`` handler, so its pool never shuts down, and
    the workers, which hold both ends of their call queue, would wait on it forever (measured:
    a server stopped with SIGTERM under uvicorn left its workers and forkserver behind).
    """
    if nice and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(nice)

    def watch() -> None:
        while _alive(parent_pid):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="slipstream-parent-watch", daemon=True).start()


def _forget_after_fork() -> None:
    global _lock
    _processes.clear()
    _threads.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
