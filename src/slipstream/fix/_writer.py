"""``ss.BatchWriter``: buffer rows and write them in batches that lose nothing.

Seed 001 inserted one document at a time; seed 004 committed once per gene (its fix: every
100). ``BatchWriter`` flushes when ``max_items`` rows are buffered, when the oldest row has waited
``max_delay_s``, and on exit; one flush at a time, one transaction per flush (the flush function's
job); producers wait once ``max_pending`` rows are buffered, so memory is bounded.

What happens to a batch that fails:

- a connection error (``is_connection_error``: OSError, timeouts, the drivers' connection
  errors) retries the whole batch with backoff (``retry=``); with upserts nothing is duplicated;
- anything else is bad data: the batch is bisected until the bad rows are isolated, the good
  rows are written, and each bad row is reported with its error (``on_failed`` callback,
  ``failed`` list, statistics);
- rows that could not be written at exit (the database stayed down) are not dropped: they are in
  ``unwritten`` and ``FlushFailed`` is raised with them.

Example::

    async with ss.BatchWriter(ss.asyncpg_flush(pool, "result", ["id", "label"],
                                                conflict=["id"])) as writer:
        async for outcome in ss.stream(classify, assets):
            await writer.add({"id": outcome.item.id, "label": outcome.value})
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from .._exceptions import FlushFailed
from .._settings import now as _now
from ._retry import Retry

__all__ = [
    "BatchWriter",
    "SyncBatchWriter",
    "WriterStatistics",
    "is_connection_error",
]

R = TypeVar("R")
_CONNECTION_NAMES = frozenset(
    {
        "InterfaceError",  # asyncpg / DB-API: the connection is unusable
        "ConnectionDoesNotExistError",
        "PostgresConnectionError",
        "CannotConnectNowError",
        "ConnectionFailureError",
        "TooManyConnectionsError",
    }
)


def is_connection_error(exc: BaseException) -> bool:
    """True for errors a retry can cure: the connection, not the data, failed."""
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    if getattr(exc, "connection_invalidated", False):  # SQLAlchemy DBAPIError
        return True
    text = str(exc).lower()
    if type(exc).__name__ == "OperationalError" and (
        "locked" in text or "connection" in text or "server closed" in text
    ):
        return True
    return any(cls.__name__ in _CONNECTION_NAMES for cls in type(exc).__mro__)


@dataclass(frozen=True, slots=True)
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
        flush: Callable[[list[R]], Any],
        max_items: int,
        max_delay_s: float,
        retry: Retry | None,
        on_failed: Callable[[list[tuple[R, Exception]]], Any] | None,
    ) -> None:
        if not callable(flush):
            raise TypeError(f"'flush' must be callable, got {type(flush).__name__}")
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"'max_items' must be an int >= 1, got {max_items!r}")
        if not max_delay_s > 0:
            raise ValueError(f"'max_delay_s' must be > 0, got {max_delay_s!r}")
        if on_failed is not None and not callable(on_failed):
            raise TypeError("'on_failed' must be callable")
        self.flush_fn = flush
        self.max_items = max_items
        self.max_delay_s = float(max_delay_s)
        self.retry = (
            retry
            if retry is not None
            else Retry(attempts=5, on=is_connection_error, initial_s=0.2, deadline_s=60)
        )
        self.on_failed = on_failed
        self.buffer: list[R] = []
        self.oldest: float | None = None
        self.failed: list[tuple[R, Exception]] = []
        self.unwritten: list[R] = []
        self.rows_written = self.flushes = self.retries = 0
        self.flush_s = 0.0

    def take(self) -> list[R]:
        rows, self.buffer = self.buffer[: self.max_items], self.buffer[self.max_items :]
        self.oldest = _now() if self.buffer else None
        return rows

    def report_bad(self, row: R, exc: Exception) -> None:
        self.failed.append((row, exc))
        if self.on_failed is not None:
            self.on_failed([(row, exc)])

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
    """Buffer rows and write them with ``await flush(rows)`` in batches (see the module doc).

    Args:
        flush: ``async flush(rows)``: write the rows in one transaction (``ss.asyncpg_flush``,
            ``ss.sqlalchemy_flush`` make one).
        max_items: rows per flush.
        max_delay_s: the longest a row waits in the buffer.
        max_pending: producers wait while this many rows are buffered or being written.
        retry: policy for connection errors (default 5 attempts, 60 s deadline).
        on_failed: ``callback([(row, exception), ...])`` for rows isolated as bad data.
    """

    def __init__(
        self,
        flush: Callable[[list[R]], Awaitable[Any]],
        *,
        max_items: int = 500,
        max_delay_s: float = 1.0,
        max_pending: int = 10_000,
        retry: Retry | None = None,
        on_failed: Callable[[list[tuple[R, Exception]]], Any] | None = None,
    ) -> None:
        self._core = _Core(flush, max_items, max_delay_s, retry, on_failed)
        if isinstance(max_pending, bool) or not isinstance(max_pending, int):
            raise TypeError("'max_pending' must be an int")
        if max_pending < max_items:
            raise ValueError(f"'max_pending' ({max_pending}) must be >= 'max_items' ({max_items})")
        self.max_pending = max_pending
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

    async def __aenter__(self) -> BatchWriter[R]:
        self._wake, self._space = asyncio.Event(), asyncio.Event()
        self._space.set()
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
            self._wake.set()  # start the max_delay_s clock in the flusher
        core.buffer.append(row)
        if len(core.buffer) >= core.max_items:
            self._wake.set()

    async def add_many(self, rows: Iterable[R]) -> None:
        """Buffer many rows; the same bounds as ``add``, without a coroutine per row."""
        core = self._core
        for row in rows:
            buffer = core.buffer  # take() swaps the list: read it each time
            if (
                buffer
                and len(buffer) < core.max_items - 1
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
            if len(core.buffer) < core.max_items and not self._closing:
                assert core.oldest is not None
                wait = core.oldest + core.max_delay_s - _now()
                if wait > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    continue
            rows = core.take()
            self._in_flight = len(rows)
            try:
                await self._write_or_bisect(rows)
            except BaseException:
                core.buffer[:0] = rows  # not written: back in front, for aclose to hand back
                raise
            finally:
                self._in_flight = 0
                self._space.set()

    async def _write(self, rows: list[R]) -> None:
        """One flush of ``rows``, retried with backoff while the connection is what fails."""
        core = self._core
        attempts, start = 0, _now()
        while True:
            attempts += 1
            t0 = time.perf_counter()
            try:
                await core.flush_fn(rows)
            except Exception as exc:
                core.flush_s += time.perf_counter() - t0
                if not is_connection_error(exc):
                    raise
                wait = core.retry.delay(exc, attempts, _now() - start)
                if wait is None:
                    raise
                core.retries += 1
                await asyncio.sleep(wait)
                continue
            core.flush_s += time.perf_counter() - t0
            core.flushes += 1
            core.rows_written += len(rows)
            return

    async def _write_or_bisect(self, rows: list[R]) -> None:
        try:
            await self._write(rows)
        except Exception as exc:
            if is_connection_error(exc):
                raise
            if len(rows) == 1:
                self._core.report_bad(rows[0], exc)
                return
            middle = len(rows) // 2
            await self._write_or_bisect(rows[:middle])
            await self._write_or_bisect(rows[middle:])

    async def aclose(self) -> None:
        """Write what is pending and stop. Rows that cannot be written end in ``unwritten``
        and ``FlushFailed`` is raised; nothing is dropped silently."""
        if self._task is None:
            if self._core.unwritten:
                raise FlushFailed(self._core.unwritten, None)
            return
        self._closing = True
        assert self._wake is not None
        self._wake.set()
        try:
            await self._task
        except Exception as exc:
            self._core.unwritten.extend(self._core.buffer)
            self._core.buffer.clear()
            raise FlushFailed(self._core.unwritten, exc) from exc
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

    Without a background thread, the ``max_delay_s`` bound is checked on every ``add`` (and
    ``flush()`` writes at once); everything else (retries, bisection, ``failed``,
    ``unwritten``, ``FlushFailed``) is as in ``BatchWriter``.
    """

    def __init__(
        self,
        flush: Callable[[list[R]], Any],
        *,
        max_items: int = 500,
        max_delay_s: float = 1.0,
        retry: Retry | None = None,
        on_failed: Callable[[list[tuple[R, Exception]]], Any] | None = None,
    ) -> None:
        self._core = _Core(flush, max_items, max_delay_s, retry, on_failed)

    failed = BatchWriter.failed
    unwritten = BatchWriter.unwritten

    def __enter__(self) -> SyncBatchWriter[R]:
        return self

    def add(self, row: R) -> None:
        """Buffer one row; writes a batch when it is full or its oldest row is due."""
        core = self._core
        if not core.buffer:
            core.oldest = _now()
        core.buffer.append(row)
        if len(core.buffer) >= core.max_items or (
            core.oldest is not None and _now() - core.oldest >= core.max_delay_s
        ):
            self.flush()

    def add_many(self, rows: Iterable[R]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        """Write everything buffered now."""
        core = self._core
        while core.buffer:
            rows = core.take()
            try:
                self._write_or_bisect(rows)
            except BaseException:
                core.buffer[:0] = rows
                raise

    def _write(self, rows: list[R]) -> None:
        core = self._core
        attempts, start = 0, time.monotonic()
        while True:
            attempts += 1
            t0 = time.perf_counter()
            try:
                core.flush_fn(rows)
            except Exception as exc:
                core.flush_s += time.perf_counter() - t0
                if not is_connection_error(exc):
                    raise
                wait = core.retry.delay(exc, attempts, time.monotonic() - start)
                if wait is None:
                    raise
                core.retries += 1
                time.sleep(wait)
                continue
            core.flush_s += time.perf_counter() - t0
            core.flushes += 1
            core.rows_written += len(rows)
            return

    def _write_or_bisect(self, rows: list[R]) -> None:
        try:
            self._write(rows)
        except Exception as exc:
            if is_connection_error(exc):
                raise
            if len(rows) == 1:
                self._core.report_bad(rows[0], exc)
                return
            middle = len(rows) // 2
            self._write_or_bisect(rows[:middle])
            self._write_or_bisect(rows[middle:])

    def close(self) -> None:
        """Write what is pending; rows that cannot be written raise ``FlushFailed``."""
        try:
            self.flush()
        except Exception as exc:
            self._core.unwritten.extend(self._core.buffer)
            self._core.buffer.clear()
            raise FlushFailed(self._core.unwritten, exc) from exc

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
