"""``ss.BatchWriter``: buffer rows and write them in batches that lose nothing, each once.

One commit per row spends its time on round trips and fsyncs. ``BatchWriter`` flushes when
``batch_size`` rows are buffered, when the oldest row has waited ``max_wait_s``, and on exit;
one flush at a time, one transaction per flush (the flush function's job); producers wait once
``max_pending`` rows are buffered, so memory is bounded. The decisions (when a batch is due,
retry or bisect, what a stopped writing leaves) are the sans-IO core in ``batching``, driven by
both ``BatchWriter`` and ``SyncBatchWriter``.

What happens to a batch that fails:

- a connection error (``is_connection_error``: the connection or a transaction's outcome
  failed, not the data) retries the whole batch with backoff (``retry=``);
- anything else is bad data: the batch is bisected until the bad rows are isolated, the good
  rows are written, and each bad row is reported with its error (``on_failed`` callback,
  ``failed`` list, statistics);
- rows that could not be written at exit (the database stayed down) are not dropped: they are in
  ``unwritten`` and ``FlushFailed`` is raised with them; rows already written (the good halves
  of a bisection) are not among them.

Exactly once, with the built-in flushes (``ss.asyncpg_flush``, ``ss.sqlalchemy_flush``, COPY,
inserts and upserts alike): a flush that accepts a ``batch_id`` keyword gets one per batch, the
same on every retry of that batch and a new one for each half of a bisection. The built-in
flushes commit a marker with the rows and find it on a retry, so a batch whose COMMIT took
effect but whose reply was lost (a backend killed around COMMIT) is not written again, and an
error after COMMIT returned is not an error. If the writer gives up while the outcome of a
batch is unknown (the database stayed unreachable), its rows are in ``unwritten`` *and* in
``in_doubt`` (by batch id): writing them with ``await flush(rows, batch_id=id)`` once the
database is back (within the markers' retention, 7 days) writes each batch once.

A flush with a lifecycle (the built-in flushes; any object with ``setup()`` and ``aclose()``,
sync or async) is set up when the ``async with`` block opens (connection errors retried as
``retry`` says; any other error is raised there, before any row) and closed once when the
writer closes, on failure and cancellation too; ``SyncBatchWriter`` calls a sync ``setup()``
and ``close()``.

A flush without a ``batch_id`` parameter (your own function, ``ss.sqlite_flush``) gets
at-least-once: a batch whose COMMIT reply was lost is written again, so such a flush should
upsert (``sqlite_flush`` is exactly once anyway: a local COMMIT returns or rolls back). A sync
flush given to ``BatchWriter`` runs in a worker thread.

Example::

    async with ss.BatchWriter(ss.asyncpg_flush(pool, "result", ["id", "label"])) as writer:
        async for outcome in ss.stream(classify, assets):
            await writer.add({"id": outcome.item.id, "label": outcome.value})
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar, final

from ..core.callables import kind_of
from ..core.checks import check_int
from ..core.clock import now as _now
from ..core.errors import FlushFailed
from ..core.threads import default_executor
from ..core.transient import is_connection_error
from ..flow.retry import Retry
from .batching import BatchJob, WriterCore, WriterStatistics, takes_batch_id
from .sinks.lifecycle import call_hook, lifecycle_of, set_up, sync_hook

__all__ = [
    "BatchWriter",
    "SyncBatchWriter",
    "WriterStatistics",
    "is_connection_error",
    "takes_batch_id",
]

R = TypeVar("R")


@final
class BatchWriter(Generic[R]):
    """Buffer rows and write them with ``await flush(rows)`` in batches that lose nothing.

    A flush starts when ``batch_size`` rows are buffered, when the oldest has waited
    ``max_wait_s``, and on exit; one at a time, one transaction each. A connection error
    retries the batch; any other error is bad data: the batch is bisected, the good rows
    written and each bad row reported (``failed``, ``on_failed``). Rows still unwritten at exit
    are in ``unwritten`` and raised in ``FlushFailed``, never dropped. With the built-in flushes
    (``ss.asyncpg_flush``, ``ss.sqlalchemy_flush``) each batch is written exactly once: a
    marker commits with the rows, so a lost COMMIT reply is not written again (batches whose
    outcome stayed unknown are in ``in_doubt``); a flush without ``batch_id`` gets
    at-least-once.

    Args:
        flush: ``async flush(rows)`` or ``async flush(rows, batch_id=...)``: write the rows in
            one transaction (``ss.asyncpg_flush``, ``ss.sqlalchemy_flush`` make one, exactly
            once). A sync function runs in a worker thread.
        batch_size: rows per flush.
        max_wait_s: how long a row waits in the buffer before a flush starts (a flush already
            running is waited for first).
        max_pending: producers wait while this many rows are buffered or being written.
        retry: policy for connection errors of the flush and of its setup (default 5 attempts,
            60 s deadline).
        on_failed: ``callback([(row, exception), ...])`` for rows isolated as bad data.
    """

    def __init__(
        self,
        flush: Callable[..., Awaitable[Any]] | Callable[..., Any],
        *,
        batch_size: int = 500,
        max_wait_s: float = 1.0,
        max_pending: int = 10_000,
        retry: Retry | None = None,
        on_failed: Callable[[list[tuple[R, Exception]]], Any] | None = None,
    ) -> None:
        self._core: WriterCore[R] = WriterCore(flush, batch_size, max_wait_s, retry, on_failed)
        self.max_pending = check_int("max_pending", max_pending, minimum=1)
        if self.max_pending < self._core.batch_size:
            raise ValueError(
                f"'max_pending' ({max_pending}) must be >= 'batch_size' ({batch_size})"
            )
        self._sync_flush = kind_of(flush) != "async"
        self._setup, self._close = lifecycle_of(flush, "flush")
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._closing = False

    @property
    def failed(self) -> list[tuple[R, Exception]]:
        """Rows isolated as bad data, with their errors."""
        return self._core.failed

    @property
    def unwritten(self) -> list[R]:
        """Rows that could not be written by exit (the database stayed unreachable)."""
        return self._core.unwritten

    @property
    def in_doubt(self) -> dict[str, list[R]]:
        """Batches (by batch id) the writer gave up on while their COMMIT's outcome was unknown:
        their rows are also in ``unwritten`` and may already be in the table. Writing them with
        ``flush(rows, batch_id=batch_id)`` writes each batch once."""
        return self._core.in_doubt

    async def __aenter__(self) -> BatchWriter[R]:
        if self._task is not None:
            raise RuntimeError("this BatchWriter is already open")
        if self._setup is not None:  # the flush's lifecycle: set up before any row
            try:
                await set_up(self._setup, self._core.retry)
            except BaseException as exc:
                await asyncio.shield(self._close_flush(exc))
                raise
        space = asyncio.Event()
        self._wake, self._space = asyncio.Event(), space
        space.set()
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._flusher())
        self._task.add_done_callback(lambda _: space.set())  # a waiting add() sees it gone
        return self

    async def add(self, row: R) -> None:
        """Buffer one row; waits while ``max_pending`` rows are pending."""
        if self._task is None or self._closing:
            raise RuntimeError("use 'async with ss.BatchWriter(...) as writer:' before add()")
        try:
            if self._task.done():  # the flusher gave up: the database stays unreachable
                await self.aclose()
            assert self._space is not None
            assert self._wake is not None
            while len(self._core.buffer) + self._in_flight >= self.max_pending:
                if self._task.done():  # it gave up while this waited: its rows are back in
                    await self.aclose()  # the buffer, so the room never comes
                self._space.clear()
                await self._space.wait()
        except FlushFailed as exc:  # this row is not written either: say so with the rest
            self._unwritten_too(exc, [row])
            raise
        # Inline, not a call into the core: add() is the per-row path (a call cost 35 ns of
        # its 290). The flusher decides; this only starts its clock and wakes it.
        core = self._core
        buffer = core.buffer
        if not buffer:
            core.oldest = _now()
            self._wake.set()  # start the max_wait_s clock in the flusher
        buffer.append(row)
        if len(buffer) >= core.batch_size:
            self._wake.set()

    async def add_many(self, rows: Iterable[R]) -> None:
        """Buffer many rows; the same bounds as ``add``, without a coroutine per row."""
        core = self._core
        if isinstance(rows, list):
            buffer = core.buffer
            n = len(buffer) + len(rows)
            if (
                buffer  # the flusher's clock runs already: nothing to start
                and n < core.batch_size
                and n + self._in_flight < self.max_pending
                and self._task is not None
                and not self._task.done()
            ):
                buffer.extend(rows)  # all of them fit: no wake, no wait, no batch complete
                return
        else:
            rows = list(rows)
        for i, row in enumerate(rows):
            buffer = core.buffer  # take() swaps the list: read it each time
            if (
                buffer
                and len(buffer) < core.batch_size - 1
                and len(buffer) + self._in_flight < self.max_pending - 1
                and self._task is not None
                and not self._task.done()
            ):
                buffer.append(row)  # the common case: nothing to wake, nothing to wait for
            else:
                try:
                    await self.add(row)
                except FlushFailed as exc:  # the rows not added are not written either
                    self._unwritten_too(exc, rows[i + 1 :])
                    raise

    def _unwritten_too(self, exc: FlushFailed, rows: list[R]) -> None:
        """Rows a failing ``add`` / ``add_many`` did not take: in the error, and in
        ``unwritten`` (what closing the writer again reports)."""
        exc.rows.extend(rows)
        self._core.unwritten.extend(rows)

    async def _flusher(self) -> None:
        wake, space = self._wake, self._space
        assert wake is not None
        assert space is not None
        core = self._core
        while True:
            wait_s = core.due_in_s(self._closing)
            if wait_s is None:  # nothing buffered
                if self._closing:
                    return
                wake.clear()
                await wake.wait()
                continue
            if wait_s > 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), wait_s)
                continue
            rows = core.take()
            self._in_flight = len(rows)
            try:
                await self._write(rows)
            finally:
                self._in_flight = 0
                space.set()

    async def _write(self, rows: list[R]) -> None:
        """Write one batch as ``BatchJob`` decides: each flush call awaited (a sync flush in a
        worker thread), each retry's backoff slept on the loop."""
        job = BatchJob(self._core, rows)
        try:
            while job.next():
                try:
                    await self._call(job.rows, job.batch_id)
                except Exception as exc:
                    wait_s = job.failed(exc)
                    if wait_s is not None:
                        await asyncio.sleep(wait_s)
                else:
                    job.written()
        except BaseException as exc:
            job.stopped(exc)
            raise

    async def _call(self, rows: list[R], batch_id: str | None) -> None:
        fn = self._core.flush_fn
        call = (
            functools.partial(fn, rows)
            if batch_id is None
            else functools.partial(fn, rows, batch_id=batch_id)
        )
        if self._sync_flush:
            result = await asyncio.get_running_loop().run_in_executor(default_executor(), call)
        else:
            result = call()
        if inspect.isawaitable(result):
            await result

    async def aclose(self) -> None:
        """Write what is pending and stop. Rows that cannot be written end in ``unwritten``
        and ``FlushFailed`` is raised; nothing is dropped silently."""
        if self._task is None:
            if self._core.unwritten:  # closed again (add() closed it): the same cause
                raise self._core.flush_failed(None) from self._core.stopped_by
            return
        self._closing = True
        assert self._wake is not None
        self._wake.set()
        error: BaseException | None = None
        try:
            await self._task
        except Exception as exc:
            error = self._core.abandon(exc)
            raise error from exc
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._task = None
            await self._close_flush(error)

    async def _close_flush(self, error: BaseException | None) -> None:
        """The flush's ``aclose()``, once per open; its failure is raised, or noted on the
        ``error`` the writer is already raising."""
        if self._close is None:
            return
        try:
            await call_hook(self._close)
        except Exception as exc:
            if error is None:
                raise
            error.add_note(f"slipstream: closing the flush failed too: {type(exc).__name__}: {exc}")

    async def __aexit__(self, *exc_info: object) -> None:
        # On cancellation too: the pending rows are written (shielded), not dropped.
        await asyncio.shield(self.aclose())

    def statistics(self) -> WriterStatistics:
        return self._core.statistics(self._in_flight)

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<BatchWriter written={s.rows_written} flushes={s.flushes} pending={s.pending} "
            f"failed={s.failed_rows}>"
        )


@final
class SyncBatchWriter(Generic[R]):
    """``BatchWriter`` for sync code (a sync session, a script): ``with`` block, ``add``.

    Without a background thread, the ``max_wait_s`` bound is checked on every ``add`` (and
    ``flush()`` writes at once); everything else (batch ids and exactly-once writes with the
    built-in flushes, retries, bisection, ``failed``, ``unwritten``, ``in_doubt``,
    ``FlushFailed``) is as in ``BatchWriter``: both drive the same decisions (``batching``).
    """

    def __init__(
        self,
        flush: Callable[..., Any],
        *,
        batch_size: int = 500,
        max_wait_s: float = 1.0,
        retry: Retry | None = None,
        on_failed: Callable[[list[tuple[R, Exception]]], Any] | None = None,
    ) -> None:
        self._core: WriterCore[R] = WriterCore(flush, batch_size, max_wait_s, retry, on_failed)
        self._hook_closed = False  # close() by hand, then leaving the block: close the flush once
        if kind_of(flush) != "sync":
            raise TypeError(
                f"'flush' must be a sync function for SyncBatchWriter, got {kind_of(flush)} "
                f"{flush!r}\nHINT: use 'async with ss.BatchWriter(flush)' for an async flush"
            )

    failed = BatchWriter.failed
    unwritten = BatchWriter.unwritten
    in_doubt = BatchWriter.in_doubt

    def __enter__(self) -> SyncBatchWriter[R]:
        sync_hook(self._core.flush_fn, "setup")
        self._hook_closed = False
        return self

    def add(self, row: R) -> None:
        """Buffer one row; writes a batch when it is full or its oldest row is due."""
        if self._core.push(row):
            self.flush()

    def add_many(self, rows: Iterable[R]) -> None:
        """Buffer many rows, writing each batch as it becomes due (as ``add`` does)."""
        push = self._core.push
        for row in rows:
            if push(row):
                self.flush()

    def flush(self) -> None:
        """Write everything buffered now."""
        core = self._core
        while core.buffer:
            self._write(core.take())

    def _write(self, rows: list[R]) -> None:
        """Write one batch as ``BatchJob`` decides: each flush called here, each retry's
        backoff slept in this thread."""
        fn = self._core.flush_fn
        job = BatchJob(self._core, rows)
        try:
            while job.next():
                try:
                    if job.batch_id is None:
                        fn(job.rows)
                    else:
                        fn(job.rows, batch_id=job.batch_id)
                except Exception as exc:
                    wait_s = job.failed(exc)
                    if wait_s is not None:
                        time.sleep(wait_s)
                else:
                    job.written()
        except BaseException as exc:
            job.stopped(exc)
            raise

    def close(self) -> None:
        """Write what is pending; rows that cannot be written raise ``FlushFailed``."""
        try:
            self.flush()
        except Exception as exc:
            raise self._core.abandon(exc) from exc
        finally:
            if not self._hook_closed:
                self._hook_closed = True
                sync_hook(self._core.flush_fn, "close")

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def statistics(self) -> WriterStatistics:
        return self._core.statistics()

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<SyncBatchWriter written={s.rows_written} pending={s.pending}>"
