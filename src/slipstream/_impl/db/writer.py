"""``ss.BatchWriter``: buffer rows and write them in batches that lose nothing, each once.

Seed 001 inserted one document at a time; seed 004 committed once per gene (its fix: every
100). ``BatchWriter`` flushes when ``batch_size`` rows are buffered, when the oldest row has waited
``max_wait_s``, and on exit; one flush at a time, one transaction per flush (the flush function's
job); producers wait once ``max_pending`` rows are buffered, so memory is bounded.

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
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..core.callables import kind_of
from ..core.checks import check_callable, check_instance, check_int, check_seconds
from ..core.clock import now as _now
from ..core.errors import FlushFailed
from ..core.threads import default_executor
from ..core.transient import CommitOutcomeUnknown, is_connection_error
from ..flow.retry import Retry

__all__ = [
    "BatchWriter",
    "SyncBatchWriter",
    "WriterStatistics",
    "is_connection_error",
]

R = TypeVar("R")
# A batch whose deadline is this close is due. A loop fires a timer up to its clock resolution
# early, and on a virtual clock now + (deadline - now) may round below the deadline: waiting for
# the remaining 1e-17 s would then fire at once, forever (the clock never moves).
_DUE_S = 1e-6


def takes_batch_id(fn: Callable[..., Any]) -> bool:
    """True when ``fn`` accepts a ``batch_id`` keyword (the built-in flushes do)."""
    try:
        parameter = inspect.signature(fn).parameters.get("batch_id")
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStatistics:
    """Counters of a batch writer."""

    rows_written: int
    flushes: int
    failed_rows: int
    retries: int
    flush_s: float
    pending: int

    @property
    def rows_per_flush(self) -> float:
        return self.rows_written / self.flushes if self.flushes else 0.0


class _Core(Generic[R]):
    """State and bookkeeping shared by the async and the sync writer."""

    def __init__(
        self,
        flush: Callable[..., Any],
        batch_size: int,
        max_wait_s: float,
        retry: Retry | None,
        on_failed: Callable[[list[tuple[R, Exception]]], Any] | None,
    ) -> None:
        self.flush_fn = check_callable("flush", flush)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.max_wait_s = check_seconds("max_wait_s", max_wait_s)
        if retry is not None:
            check_instance("retry", retry, Retry, "a Retry or None")
        self.on_failed = check_callable("on_failed", on_failed, allow_none=True)
        self.retry = (
            retry
            if retry is not None
            else Retry(attempts=5, on=is_connection_error, initial_s=0.2, deadline_s=60)
        )
        self.with_ids = takes_batch_id(flush)
        self._prefix = uuid.uuid4().hex
        self._sequence = 0
        self.buffer: list[R] = []
        self.oldest: float | None = None
        self.failed: list[tuple[R, Exception]] = []
        self.unwritten: list[R] = []
        self.in_doubt: dict[str, list[R]] = {}
        self.rows_written = self.flushes = self.retries = 0
        self.flush_s = 0.0

    def batch_id(self) -> str | None:
        """A new batch id (one per batch and per half of a bisection), or None."""
        if not self.with_ids:
            return None
        self._sequence += 1
        return f"{self._prefix}-{self._sequence}"

    def take(self) -> list[R]:
        rows, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
        self.oldest = _now() if self.buffer else None
        return rows

    def put_back(self, part: list[R], todo: list[list[R]]) -> None:
        """Rows not written (the batch being written, then the halves still to write) go back
        to the front of the buffer, in order; rows already written do not."""
        self.buffer[:0] = part + [row for rows in reversed(todo) for row in rows]

    def succeeded(self, rows: list[R]) -> None:
        self.flushes += 1
        self.rows_written += len(rows)

    def failed_attempt(self, exc: Exception, attempts: int, elapsed_s: float) -> float | None:
        """The wait before the next attempt, or None to give up on this batch."""
        if not is_connection_error(exc):
            return None
        wait = self.retry.delay(exc, attempts, elapsed_s)
        if wait is not None:
            self.retries += 1
        return wait

    def gave_up(self, batch_id: str | None, rows: list[R], exc: BaseException, doubt: bool) -> None:
        """Record a batch whose outcome is unknown: a COMMIT that could not be checked, or an
        attempt interrupted (cancelled) midway."""
        if batch_id is None:
            return
        if not isinstance(exc, Exception) or (doubt and is_connection_error(exc)):
            self.in_doubt[batch_id] = list(rows)

    def bisect(self, part: list[R], exc: Exception, todo: list[list[R]]) -> None:
        """A batch failed on its data (not the connection): its halves go back on ``todo``, a
        single row is reported bad. The one decision both writers drive."""
        if len(part) > 1:
            middle = len(part) // 2
            todo += [part[middle:], part[:middle]]
        else:
            self.report_bad(part[0], exc)

    def report_bad(self, row: R, exc: Exception) -> None:
        self.failed.append((row, exc))
        if self.on_failed is not None:
            self.on_failed([(row, exc)])

    def flush_failed(self, exc: BaseException | None) -> FlushFailed:
        error = FlushFailed(self.unwritten, exc)
        if self.in_doubt:
            doubtful = sum(len(rows) for rows in self.in_doubt.values())
            error.add_note(
                f"slipstream: {doubtful} of these row(s), in {len(self.in_doubt)} batch(es), may "
                "already be committed (the outcome of their COMMIT is unknown); writer.in_doubt "
                "maps their batch ids to them: 'await flush(rows, batch_id=batch_id)' writes "
                "each once"
            )
        return error

    def statistics(self, in_flight: int = 0) -> WriterStatistics:
        return WriterStatistics(
            rows_written=self.rows_written,
            flushes=self.flushes,
            failed_rows=len(self.failed),
            retries=self.retries,
            flush_s=self.flush_s,
            pending=len(self.buffer) + in_flight,
        )


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
        retry: policy for connection errors (default 5 attempts, 60 s deadline).
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
        self._core: _Core[R] = _Core(flush, batch_size, max_wait_s, retry, on_failed)
        self.max_pending = check_int("max_pending", max_pending, minimum=1)
        if self.max_pending < self._core.batch_size:
            raise ValueError(
                f"'max_pending' ({max_pending}) must be >= 'batch_size' ({batch_size})"
            )
        self._sync_flush = kind_of(flush) != "async"
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
        self._wake, self._space = asyncio.Event(), asyncio.Event()
        self._space.set()
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._flusher())
        return self

    async def add(self, row: R) -> None:
        """Buffer one row; waits while ``max_pending`` rows are pending."""
        if self._task is None or self._closing:
            raise RuntimeError("use 'async with ss.BatchWriter(...) as writer:' before add()")
        if self._task.done():  # the flusher gave up: the database stays unreachable
            await self.aclose()
        assert self._space is not None
        assert self._wake is not None
        while len(self._core.buffer) + self._in_flight >= self.max_pending:
            self._space.clear()
            await self._space.wait()
        core = self._core
        if not core.buffer:
            core.oldest = _now()
            self._wake.set()  # start the max_wait_s clock in the flusher
        core.buffer.append(row)
        if len(core.buffer) >= core.batch_size:
            self._wake.set()

    async def add_many(self, rows: Iterable[R]) -> None:
        """Buffer many rows; the same bounds as ``add``, without a coroutine per row."""
        core = self._core
        for row in rows:
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
                await self.add(row)

    async def _flusher(self) -> None:
        assert self._wake is not None
        assert self._space is not None
        core = self._core
        while True:
            if not core.buffer:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(core.buffer) < core.batch_size and not self._closing:
                assert core.oldest is not None
                wait = core.oldest + core.max_wait_s - _now()
                if wait > _DUE_S:  # not "> 0": a timer may fire a rounding error early
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    continue
            rows = core.take()
            self._in_flight = len(rows)
            try:
                await self._write_all(rows)
            finally:
                self._in_flight = 0
                self._space.set()

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

    async def _write(self, rows: list[R]) -> None:
        """One batch: flushes of ``rows`` (one batch id), retried with backoff while the
        connection is what fails."""
        core = self._core
        batch_id = core.batch_id()
        attempts, start, doubt = 0, _now(), False
        try:
            while True:
                attempts += 1
                t0 = time.perf_counter()
                try:
                    await self._call(rows, batch_id)
                except Exception as exc:
                    core.flush_s += time.perf_counter() - t0
                    doubt = doubt or isinstance(exc, CommitOutcomeUnknown)
                    wait = core.failed_attempt(exc, attempts, _now() - start)
                    if wait is None:
                        raise
                    await asyncio.sleep(wait)
                    continue
                core.flush_s += time.perf_counter() - t0
                core.succeeded(rows)
                return
        except BaseException as exc:
            core.gave_up(batch_id, rows, exc, doubt)
            raise

    async def _write_all(self, rows: list[R]) -> None:
        """Write ``rows``, bisecting bad data out; on an error that stops the writing, the rows
        not written go back to the buffer (those already written do not)."""
        core = self._core
        todo, part = [rows], []
        try:
            while todo:
                part = todo.pop()
                try:
                    await self._write(part)
                except Exception as exc:
                    if is_connection_error(exc):
                        raise  # retries exhausted: the database, not the rows
                    failed, part = part, []
                    core.bisect(failed, exc, todo)
                part = []
        except BaseException:
            core.put_back(part, todo)
            raise

    async def aclose(self) -> None:
        """Write what is pending and stop. Rows that cannot be written end in ``unwritten``
        and ``FlushFailed`` is raised; nothing is dropped silently."""
        if self._task is None:
            if self._core.unwritten:
                raise self._core.flush_failed(None)
            return
        self._closing = True
        assert self._wake is not None
        self._wake.set()
        try:
            await self._task
        except Exception as exc:
            self._core.unwritten.extend(self._core.buffer)
            self._core.buffer.clear()
            raise self._core.flush_failed(exc) from exc
        finally:
            self._task = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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


class SyncBatchWriter(Generic[R]):
    """``BatchWriter`` for sync code (seed 004 runs sync sessions): ``with`` block, ``add``.

    Without a background thread, the ``max_wait_s`` bound is checked on every ``add`` (and
    ``flush()`` writes at once); everything else (batch ids and exactly-once writes with the
    built-in flushes, retries, bisection, ``failed``, ``unwritten``, ``in_doubt``,
    ``FlushFailed``) is as in ``BatchWriter``.
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
        self._core: _Core[R] = _Core(flush, batch_size, max_wait_s, retry, on_failed)
        if kind_of(flush) != "sync":
            raise TypeError(
                f"'flush' must be a sync function for SyncBatchWriter, got {kind_of(flush)} "
                f"{flush!r}\nHINT: use 'async with ss.BatchWriter(flush)' for an async flush"
            )

    failed = BatchWriter.failed
    unwritten = BatchWriter.unwritten
    in_doubt = BatchWriter.in_doubt

    def __enter__(self) -> SyncBatchWriter[R]:
        return self

    def add(self, row: R) -> None:
        """Buffer one row; writes a batch when it is full or its oldest row is due."""
        core = self._core
        if not core.buffer:
            core.oldest = _now()
        core.buffer.append(row)
        if len(core.buffer) >= core.batch_size or (
            core.oldest is not None and _now() - core.oldest >= core.max_wait_s
        ):
            self.flush()

    def add_many(self, rows: Iterable[R]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        """Write everything buffered now."""
        core = self._core
        while core.buffer:
            self._write_all(core.take())

    def _write(self, rows: list[R]) -> None:
        core = self._core
        batch_id = core.batch_id()
        attempts, start, doubt = 0, time.monotonic(), False
        try:
            while True:
                attempts += 1
                t0 = time.perf_counter()
                try:
                    if batch_id is None:
                        core.flush_fn(rows)
                    else:
                        core.flush_fn(rows, batch_id=batch_id)
                except Exception as exc:
                    core.flush_s += time.perf_counter() - t0
                    doubt = doubt or isinstance(exc, CommitOutcomeUnknown)
                    wait = core.failed_attempt(exc, attempts, time.monotonic() - start)
                    if wait is None:
                        raise
                    time.sleep(wait)
                    continue
                core.flush_s += time.perf_counter() - t0
                core.succeeded(rows)
                return
        except BaseException as exc:
            core.gave_up(batch_id, rows, exc, doubt)
            raise

    def _write_all(self, rows: list[R]) -> None:
        core = self._core
        todo, part = [rows], []
        try:
            while todo:
                part = todo.pop()
                try:
                    self._write(part)
                except Exception as exc:
                    if is_connection_error(exc):
                        raise
                    failed, part = part, []
                    core.bisect(failed, exc, todo)
                part = []
        except BaseException:
            core.put_back(part, todo)
            raise

    def close(self) -> None:
        """Write what is pending; rows that cannot be written raise ``FlushFailed``."""
        try:
            self.flush()
        except Exception as exc:
            self._core.unwritten.extend(self._core.buffer)
            self._core.buffer.clear()
            raise self._core.flush_failed(exc) from exc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def statistics(self) -> WriterStatistics:
        return self._core.statistics()

    def __repr__(self) -> str:
        s = self.statistics()
        return f"<SyncBatchWriter written={s.rows_written} pending={s.pending}>"
