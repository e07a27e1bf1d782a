"""The bounded thread pool that runs sync functions off the event loop."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .settings import env_int

__all__ = ["default_executor"]

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def default_executor() -> ThreadPoolExecutor:
    """slipstream's shared pool: ``SLIPSTREAM_MAX_THREADS`` threads (default 32), made on first
    use, and made anew in a child after ``os.fork()`` (a parent's threads do not survive it)."""
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=env_int("SLIPSTREAM_MAX_THREADS", 32),
                    thread_name_prefix="slipstream",
                )
    return _executor


def _forget_after_fork() -> None:
    global _executor, _lock
    _executor = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
