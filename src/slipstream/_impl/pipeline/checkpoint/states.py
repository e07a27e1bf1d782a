"""Who runs a run, and whether it still does: the owner of a run, its heartbeat, and the
judgement that turns a recorded ``running`` into ``interrupted`` when the owner is gone.

A run is recorded as ``running`` with its owner (host, pid, and a token naming that very
process) and a heartbeat; it leaves ``running`` only by a recorded ``paused``, ``finished``
or ``interrupted``. A process killed before it could record one leaves ``running`` behind, so
``judge_state`` reads such a run as ``interrupted`` once the owner is seen to be gone: on this
machine by its pid, from elsewhere by a heartbeat older than ``STALE_BEATS`` intervals.

Time: every timestamp the checkpoint stores, and the "now" the heartbeat age is judged
against, come from ``wall_time``. They are compared across processes and machines, so they
are epoch seconds, never the event loop's (possibly virtual) clock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import cast

from .records import Owner, RunState

__all__ = ["STALE_BEATS", "Heartbeats", "judge_state", "this_owner", "wall_time"]

logger = logging.getLogger("slipstream.checkpoint")

STALE_BEATS = 4  # a heartbeat this many intervals old, seen from another machine: gone


def wall_time() -> float:
    """Epoch seconds: the one clock of the checkpoint's stored timestamps and heartbeats."""
    return time.time()


def _read(path: str) -> str | None:
    try:
        with open(path) as f:  # noqa: SLP401 - only /proc files: kernel memory, no disk
            return f.read().strip()
    except OSError:
        return None


def _machine() -> str | None:
    """This kernel boot and pid namespace: where a pid means the same process (Linux)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}:{namespace}" if boot else None


def _process_start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie;
    "" where there is no /proc (then only a signal probe says it is alive)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        if os.path.isdir("/proc/self"):
            return None
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        except OSError:
            return ""
        return ""
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else ""


def _this_process() -> str | None:
    machine = _machine()
    start = _process_start(os.getpid())
    return f"{machine}/{start}" if machine and start else None


def this_owner() -> Owner:
    """This process, as the owner of the runs it starts."""
    return Owner(host=socket.gethostname(), pid=os.getpid(), process=_this_process())


def judge_state(
    state: str,
    *,
    pid: int | None,
    process: str | None,
    heartbeat: float | None,
    updated: float,
    now: float,
    stale_s: float,
) -> RunState:
    """``state`` as recorded, or ``interrupted`` for a ``running`` run whose process is gone:
    on this machine (same boot and pid namespace) when the pid is not that process any more;
    from elsewhere when its heartbeat is older than ``stale_s``."""
    recorded = cast(RunState, state)  # as the checkpoint stored it (one of RunState)
    if state != "running" or pid is None or heartbeat is None:
        return recorded  # not running, or recorded by a version that kept no owner
    if updated > heartbeat:
        return recorded  # a writer that keeps no heartbeat took the run since: cannot tell
    machine, _, start = (process or "").rpartition("/")
    if machine and machine == _machine():
        return recorded if _process_start(pid) == start else "interrupted"
    return "interrupted" if now - heartbeat > stale_s else recorded


class _Heartbeat:
    """A thread renewing a run's heartbeat every ``interval_s``, in real time (the event loop's
    clock may be virtual, and a blocked loop is still a live process)."""

    def __init__(self, beat: Callable[[], bool], interval_s: float) -> None:
        self._beat = beat
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slipstream-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                if self._beat() is False:
                    return  # the store closed, or the run's event loop did: nothing to renew
            except Exception as exc:  # unreachable for now: try again next time
                logger.debug("heartbeat not written: %r", exc)

    def stop(self) -> None:
        """Stop beating (does not wait: a beat in progress may need the event loop)."""
        self._stop.set()


class Heartbeats:
    """The heartbeat threads of the runs one checkpoint keeps alive, one per run id."""

    __slots__ = ("_threads",)

    def __init__(self) -> None:
        self._threads: dict[str, _Heartbeat] = {}

    def start(self, run_id: str, beat: Callable[[], bool], interval_s: float) -> None:
        """Call ``beat`` every ``interval_s`` until ``stop``, or until it returns False; a
        heartbeat the run already had stops."""
        self.stop(run_id)
        self._threads[run_id] = _Heartbeat(beat, interval_s)

    def stop(self, run_id: str) -> None:
        heartbeat = self._threads.pop(run_id, None)
        if heartbeat is not None:
            heartbeat.stop()

    def stop_all(self) -> None:
        for heartbeat in self._threads.values():
            heartbeat.stop()
        self._threads.clear()
