"""A sink's lifecycle: ``setup()`` once before its first write, ``aclose()`` once at the end.

A sink (what ``ss.Pipeline(sink=...)`` and ``ss.BatchWriter(flush)`` take) is a flush function;
it may also have a ``setup()`` (create the pool, run the DDL) and an ``aclose()`` (close what
setup made), each sync or async. The pipeline runs the sink's ``setup`` once per run beside the
stages' setups, before any item (a failure stops the run as ``PipelineError``), and its
``aclose`` once when the run ends, finished, failed or cancelled (shielded). ``BatchWriter``
does the same around its ``async with`` block (``SyncBatchWriter``: ``setup()`` and ``close()``,
sync).

The built-in flushes (``asyncpg_flush``, ``sqlalchemy_flush``, ``sqlite_flush``) are such sinks
(``AsyncFlush``, ``SyncFlush``): their ``setup`` runs at most once until ``aclose`` (concurrent
first calls share one run of it; a failed one is tried again by the next call), and a flush
called before ``setup`` (a direct call) runs it first. ``set_up`` retries a setup's connection
errors under the writer's retry policy, as a flush's are.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, final

from ...core.checks import check_callable
from ...core.clock import now as _now
from ...core.threads import default_executor
from ...flow.retry import Retry

__all__ = [
    "AsyncFlush",
    "ManagedFlush",
    "PlainSyncFlush",
    "SyncFlush",
    "SyncManagedFlush",
    "call_hook",
    "lifecycle_of",
    "run_user_setup",
    "set_up",
    "sync_hook",
]


class ManagedFlush(Protocol):
    """An async flush with a lifecycle: ``await flush(rows, batch_id=None)``, ``await
    flush.setup()`` (once, before the first write; a call before it runs it) and ``await
    flush.aclose()`` (after the last; a later ``setup`` starts afresh)."""

    def __call__(self, rows: list[Any], batch_id: str | None = None) -> Awaitable[None]: ...

    async def setup(self) -> None: ...

    async def aclose(self) -> None: ...


class SyncManagedFlush(Protocol):
    """A sync flush with a lifecycle: ``flush(rows)``, ``flush.setup()`` and ``flush.close()``
    (sync, for ``SyncBatchWriter``) and ``await flush.aclose()`` (for a pipeline)."""

    def __call__(self, rows: list[Any]) -> None: ...

    def setup(self) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


Hook = Callable[[], Any]


def lifecycle_of(sink: Any, name: str) -> tuple[Hook | None, Hook | None]:
    """The ``setup`` and ``aclose`` of ``sink`` (None where it has none).

    Raises:
        TypeError: ``sink.setup`` or ``sink.aclose`` is there but not callable.
    """
    hooks: list[Hook | None] = []
    for attr in ("setup", "aclose"):
        hook = getattr(sink, attr, None)
        hooks.append(check_callable(f"{name}.{attr}", hook, allow_none=True))
    return hooks[0], hooks[1]


async def call_hook(hook: Hook) -> Any:
    """``hook()`` awaited: an async one on the loop, a sync one in a worker thread (it may
    block: a connection, DDL), whose awaitable result is awaited too."""
    if _is_async(hook):
        return await hook()
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(default_executor(), hook)
    return await result if inspect.isawaitable(result) else result


async def set_up(hook: Hook, retry: Retry) -> None:
    """``hook()`` (a flush's ``setup``), its connection errors retried as ``retry`` says (the
    database restarting as the run starts); anything else, or giving up, raises."""
    attempts, started = 0, _now()
    while True:
        attempts += 1
        try:
            await call_hook(hook)
            return
        except Exception as exc:
            wait_s = retry.delay(exc, attempts, _now() - started)
            if wait_s is None:
                raise
            await asyncio.sleep(wait_s)


def sync_hook(flush: Any, name: str) -> None:
    """``flush.setup()`` or ``flush.close()`` for ``SyncBatchWriter``, if the flush has it.

    Raises:
        TypeError: the hook is async (a sync writer cannot run it).
    """
    hook = check_callable(f"flush.{name}", getattr(flush, name, None), allow_none=True)
    if hook is None:
        return
    result = hook()
    if inspect.isawaitable(result):
        getattr(result, "close", lambda: None)()  # a coroutine never awaited: no warning
        raise TypeError(
            f"'flush.{name}' must be sync for SyncBatchWriter, got {hook!r}"
            "\nHINT: use 'async with ss.BatchWriter(flush)' for a flush with an async lifecycle"
        )


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # an object with an async __call__
    )


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@final
class AsyncFlush:
    """An async built-in flush: ``write(rows, batch_id)`` after ``open()`` ran once.

    ``open()`` (create the pool, the user's setup, the marker table) runs at most once until
    ``aclose()``: concurrent first callers wait for the same run and share its outcome; after
    a failure the next call tries again. ``close()`` undoes it (the pool the flush created)."""

    __slots__ = ("__weakref__", "_close", "_name", "_open", "_ready", "_task", "_write")

    def __init__(
        self,
        name: str,
        write: Callable[[list[Any], str | None], Awaitable[None]],
        open_: Callable[[], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self._name = name
        self._write = write
        self._open = open_
        self._close = close
        self._task: asyncio.Future[None] | None = None
        self._ready = False

    async def __call__(self, rows: list[Any], batch_id: str | None = None) -> None:
        if not self._ready:
            await self.setup()
        await self._write(rows, batch_id)

    async def setup(self) -> None:
        """Run the flush's setup, once until ``aclose()`` (concurrent callers share it)."""
        if self._ready:
            return
        task = self._task
        if task is None:
            task = self._task = asyncio.ensure_future(self._open())
            task.add_done_callback(self._settled)
        await asyncio.shield(task)  # a cancelled caller does not cancel the others' setup
        self._ready = True

    def _settled(self, task: asyncio.Future[None]) -> None:
        """A setup that failed is forgotten once its callers have its error: the next call
        tries again (a connection refused now may be accepted in a second)."""
        if self._task is task and (task.cancelled() or task.exception() is not None):
            self._task = None

    async def aclose(self) -> None:
        """Undo the setup (close the pool the flush created); a later call sets up again."""
        task, self._task, self._ready = self._task, None, False
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(BaseException):
                await task  # a setup that failed: its error was raised to its callers
        await self._close()

    def __repr__(self) -> str:
        state = "ready" if self._ready else "not set up"
        return f"<{self._name} {state}>"


class SyncFlush:
    """A sync built-in flush: ``write(rows, batch_id)`` after ``open()`` ran once (thread-safe:
    one thread runs it and the others wait for it; after a failure the next call tries
    again)."""

    __slots__ = ("__weakref__", "_close", "_lock", "_name", "_open", "_ready", "_write")

    def __init__(
        self,
        name: str,
        write: Callable[[list[Any], str | None], None],
        open_: Callable[[], None],
        close: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._write = write
        self._open = open_
        self._close = close
        self._lock = threading.Lock()
        self._ready = False

    def __call__(self, rows: list[Any], batch_id: str | None = None) -> None:
        if not self._ready:
            self.setup()
        self._write(rows, batch_id)

    def setup(self) -> None:
        """Run the flush's setup, once until ``close()``."""
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                self._open()
                self._ready = True

    def close(self) -> None:
        """Forget the setup (a later call sets up again)."""
        with self._lock:
            self._ready = False
        if self._close is not None:
            self._close()

    async def aclose(self) -> None:
        """``close()``, for a pipeline or ``BatchWriter``."""
        self.close()

    def __repr__(self) -> str:
        state = "ready" if self._ready else "not set up"
        return f"<{self._name} {state}>"


@final
class PlainSyncFlush(SyncFlush):
    """A ``SyncFlush`` whose call takes no batch id (``sqlite_flush``: exactly once without
    markers, so the writer keeps no batch in doubt for it)."""

    __slots__ = ()

    def __call__(self, rows: list[Any]) -> None:  # type: ignore[override]
        if not self._ready:
            self.setup()
        self._write(rows, None)


async def run_user_setup(setup: Callable[[Any], Any], target: Any) -> None:
    """The user's ``setup(target)``, awaited when it returns an awaitable."""
    await _maybe_await(setup(target))
