"""The sans-IO core of the batch writers: every decision ``BatchWriter`` and
``SyncBatchWriter`` make, and no IO.

The two writers differ only in how they call a flush (``await`` or a plain call) and how they
wait (``asyncio.sleep`` or ``time.sleep``); what they decide is written once, here:

- when a batch is due and which rows go (``WriterCore.due_in_s``, and ``push`` for the sync
  writer's per-row check; ``WriterCore.take``): a full batch, a closing writer, or an oldest
  row that has waited ``max_wait_s``;
- after a failed flush (``BatchJob.failed``): a connection error (``is_connection_error``)
  retries the same rows with the same batch id after the policy's backoff, until the policy
  gives up, which stops the writer; any other error is bad data: the rows are bisected and a
  single bad row is reported (``failed``, ``on_failed``);
- what a writing that stopped leaves (``BatchJob.stopped``): the rows not written go back to
  the front of the buffer, in order (rows already written do not), and a batch whose COMMIT
  outcome is unknown (``CommitOutcomeUnknown`` seen, or an attempt interrupted midway) is kept
  in ``in_doubt`` under its batch id.

A driver writes one batch taken from the buffer (``BatchJob(core, core.take())``) by calling the
flush while ``job.next()`` says there is a call to make, with ``job.rows`` and ``job.batch_id``;
then ``job.written()``, or ``job.failed(exc)``, which gives the backoff to sleep before the
retry (None: go on at once) or re-raises ``exc`` to stop; on any error that leaves the loop,
``job.stopped(exc)`` before re-raising. The driver only makes the call and the sleep.

Time is read from ``core.clock.now`` (the running loop's clock inside a loop, else
``time.monotonic``), so a virtual clock drives the waits and the retry deadline of both
writers. The CPU time of one flush call (``flush_s``) is measured with ``time.perf_counter``.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, final

from ..core.checks import check_callable, check_instance, check_int, check_seconds
from ..core.clock import now as _now
from ..core.errors import FlushFailed, RowsRejected
from ..core.transient import CommitOutcomeUnknown, is_connection_error
from ..flow.retry import Retry

__all__ = [
    "BatchJob",
    "WriterCore",
    "WriterStatistics",
    "default_retry",
    "is_shape_error",
    "shape_of",
    "takes_batch_id",
]

R = TypeVar("R")
# A batch whose deadline is this close is due. A loop fires a timer up to its clock resolution
# early, and on a virtual clock now + (deadline - now) may round below the deadline: waiting for
# the remaining 1e-17 s would then fire at once, forever (the clock never moves).
_DUE_S = 1e-6
_perf_counter = time.perf_counter


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


def default_retry() -> Retry:
    """The writers' policy for connection errors: 5 attempts within 60 s."""
    return Retry(attempts=5, on=is_connection_error, initial_s=0.2, deadline_s=60)


@final
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


class WriterCore(Generic[R]):
    """The state of one writer (its buffer, its counters, the rows it could not write) and the
    decisions about the buffer; ``BatchJob`` decides about one batch."""

    __slots__ = (
        "_prefix",
        "_sequence",
        "batch_size",
        "buffer",
        "failed",
        "flush_fn",
        "flush_s",
        "flushes",
        "in_doubt",
        "max_wait_s",
        "oldest",
        "on_failed",
        "retries",
        "retry",
        "row_of",
        "rows_written",
        "stopped_by",
        "unwritten",
        "with_ids",
    )

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
        self.retry = retry if retry is not None else default_retry()
        self.with_ids = takes_batch_id(flush)
        self._prefix = uuid.uuid4().hex
        self._sequence = 0
        self.buffer: list[R] = []
        self.oldest: float | None = None  # when the oldest buffered row was added
        self.failed: list[tuple[R, Exception]] = []
        self.unwritten: list[R] = []
        self.in_doubt: dict[str, list[R]] = {}
        self.rows_written = self.flushes = self.retries = 0
        self.flush_s = 0.0
        # what the flush sees of a buffered row (a pipeline buffers items, its flush their
        # values): the shape a rejected batch is judged and described by
        self.row_of: Callable[[R], Any] = _itself
        self.stopped_by: BaseException | None = None  # the error the writer stopped on

    def push(self, row: R) -> bool:
        """Buffer ``row`` for the sync writer, which has no flusher to wake: True when a batch
        is due now (as ``due_in_s`` would say 0.0). One call per row: a second (``due_in_s``)
        cost 30 ns a row, 15% of ``add``. (The async ``add`` appends inline for the same
        reason, and only wakes its flusher, which asks ``due_in_s``.)"""
        buffer = self.buffer
        if not buffer:
            self.oldest = _now()
        buffer.append(row)
        if len(buffer) >= self.batch_size:
            return True
        return self.oldest + self.max_wait_s - _now() <= _DUE_S  # type: ignore[operator]

    def due_in_s(self, closing: bool) -> float | None:
        """None when nothing is buffered; 0.0 when a batch is due now (a full one, a closing
        writer, or the oldest row has waited ``max_wait_s``); else the seconds until it is."""
        buffer = self.buffer
        if not buffer:
            return None
        if closing or len(buffer) >= self.batch_size:
            return 0.0
        oldest = self.oldest
        assert oldest is not None  # set whenever the buffer is not empty
        wait_s = oldest + self.max_wait_s - _now()
        return wait_s if wait_s > _DUE_S else 0.0  # not "> 0": a timer may fire a hair early

    def take(self) -> list[R]:
        """The rows of the next batch (``batch_size`` at most), off the front of the buffer."""
        rows, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
        self.oldest = _now() if self.buffer else None
        return rows

    def batch_id(self) -> str | None:
        """A new batch id (one per batch and per half of a bisection), or None."""
        if not self.with_ids:
            return None
        self._sequence += 1
        return f"{self._prefix}-{self._sequence}"

    def report_bad(self, row: R, exc: Exception) -> None:
        self.failed.append((row, exc))
        if self.on_failed is not None:
            self.on_failed([(row, exc)])

    def abandon(self, exc: BaseException | None) -> FlushFailed:
        """The writer stops with rows it could not write: every buffered row joins
        ``unwritten``; the ``FlushFailed`` to raise carries them."""
        self.unwritten.extend(self.buffer)
        self.buffer.clear()
        self.stopped_by = exc
        return self.flush_failed(exc)

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


class BatchJob(Generic[R]):
    """The writing of one batch taken from the buffer: which rows the next flush call gets,
    under which batch id, and what a failure means. One batch id per part (the batch, then
    each half of a bisection), the same on every retry of that part."""

    __slots__ = (
        "_attempts",
        "_core",
        "_doubt",
        "_probe",
        "_probed",
        "_start",
        "_t0",
        "_todo",
        "batch_id",
        "rows",
    )

    def __init__(self, core: WriterCore[R], rows: list[R]) -> None:
        self._core = core
        self._todo = [rows]  # parts still to write, the next one last
        self.rows: list[R] = []  # the part being written; [] between parts
        self.batch_id: str | None = None
        self._attempts = 0
        self._start = self._t0 = 0.0
        self._doubt = False  # an attempt of this part may have committed
        # A batch whose first failure looks like code, not data: its first and last rows are
        # written alone first (``_Probe``); None: no probe (yet), or it is over.
        self._probe: _Probe[R] | None = None
        self._probed = False  # once per batch: a bisection's parts are not probed again

    def next(self) -> bool:
        """True when a flush call is to be made, of ``rows`` with ``batch_id`` (a retry of the
        part that failed, or the next part); False when the batch is done."""
        if not self.rows:
            if not self._todo:
                return False
            self.rows = self._todo.pop()
            self.batch_id = self._core.batch_id()
            self._attempts, self._start, self._doubt = 0, _now(), False
        self._attempts += 1
        self._t0 = _perf_counter()
        return True

    def written(self) -> None:
        """The flush call returned: the part is in."""
        core = self._core
        core.flush_s += _perf_counter() - self._t0
        core.flushes += 1
        core.rows_written += len(self.rows)
        probe = self._probe
        if probe is not None and len(self.rows) == 1 and self.rows[0] is probe.pending[0]:
            # a probe row went in: the batch's rows are not all wrong; the held ones are bad
            self._probe = None
            for bad, error in probe.errors:
                core.report_bad(bad, error)
        self.rows = []

    def failed(self, exc: Exception) -> float | None:
        """The flush call raised ``exc``. Returns the seconds to wait before retrying the same
        part (a connection error the policy retries), or None to go on with the next part (bad
        data: the part was bisected, or its single row reported bad). Re-raises ``exc`` when
        the writer must stop: a connection error the policy gives up on."""
        core = self._core
        core.flush_s += _perf_counter() - self._t0
        if isinstance(exc, CommitOutcomeUnknown):
            self._doubt = True
        if is_connection_error(exc):  # the database, not the rows: never bisected
            wait_s = core.retry.delay(exc, self._attempts, _now() - self._start)
            if wait_s is None:
                raise exc
            core.retries += 1
            return wait_s
        part, self.rows = self.rows, []
        probe = self._probe
        if probe is not None and len(part) == 1 and part[0] is probe.pending[0]:
            self._probe_result(probe, part[0], exc)
            return None
        if len(part) > 2 and not self._probed and is_shape_error(exc):
            # Not bisected yet: a batch every row of which is wrong the same way (a stage
            # returning an int where the sink wants a row) would cost ~4 flushes a row. Its
            # first and last rows go alone first; both rejected alike = the code (_probed).
            self._probe, self._probed = _Probe(part), True
            self._todo += [part[1:-1], [part[-1]], [part[0]]]
        elif len(part) > 1:
            middle = len(part) // 2
            self._todo += [part[middle:], part[:middle]]
        else:
            core.report_bad(part[0], exc)
        return None

    def _probe_result(self, probe: _Probe[R], row: R, exc: Exception) -> None:
        """A probe row was rejected alone. The first: held (not reported yet), the last goes
        next. Both, by the same kind of error, and every row of the batch has their shape: the
        flush rejects the shape, so ``RowsRejected`` stops the writer with the batch unwritten.
        Else the probe is over, and the held rows are reported as bad data."""
        probe.pending.pop(0)
        probe.errors.append((row, exc))
        if probe.pending:
            return
        self._probe = None
        row_of = self._core.row_of
        (_, first_exc), (_, last_exc) = probe.errors
        if (
            type(first_exc) is type(last_exc)
            and is_shape_error(last_exc)
            and len({shape_of(row_of(r)) for r in probe.batch}) == 1
        ):
            self._todo = [probe.batch]  # all of it goes back to the buffer: nothing was written
            raise RowsRejected(probe.batch, first_exc, row_of(probe.batch[0]))
        for bad, error in probe.errors:
            self._core.report_bad(bad, error)
        return

    def stopped(self, exc: BaseException) -> None:
        """The writing stopped on ``exc`` (the policy gave up, or the task was cancelled or
        interrupted): the part being written and the parts still to write go back to the front
        of the buffer, in order; the part is in doubt when its outcome is unknown."""
        core = self._core
        if (
            self.rows
            and self.batch_id is not None
            and (not isinstance(exc, Exception) or (self._doubt and is_connection_error(exc)))
        ):
            core.in_doubt[self.batch_id] = list(self.rows)
        back = self.rows + [row for rows in reversed(self._todo) for row in rows]
        if back and not core.buffer:  # rows put back wait max_wait_s from now, like any others
            core.oldest = _now()
        core.buffer[:0] = back
        self.rows, self._todo = [], []


# The errors a flush raises when a row has the wrong shape for it (not a value the database
# refuses): Python's own, and the DB-API's ProgrammingError / InterfaceError (a wrong number of
# bindings, a type the driver cannot send), matched by name through the class's bases so that
# every driver's counts (asyncpg's DataError is an InterfaceError; psycopg's is not).
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError)
_SHAPE_NAMES = frozenset(("ProgrammingError", "InterfaceError"))


def _itself(row: Any) -> Any:
    return row


def is_shape_error(exc: BaseException) -> bool:
    """Does ``exc`` say a row has the wrong shape for the flush (code), not bad values (data)?"""
    return isinstance(exc, _SHAPE_ERRORS) or any(
        c.__name__ in _SHAPE_NAMES for c in type(exc).__mro__
    )


def shape_of(row: Any) -> tuple[Any, ...]:
    """What a row looks like to a flush: its type, and for a mapping its keys and value types,
    for a tuple or list its length and value types."""
    if isinstance(row, Mapping):
        return (type(row), tuple(row), tuple(type(v) for v in row.values()))
    if isinstance(row, tuple | list):
        return (type(row), len(row), tuple(type(v) for v in row))
    return (type(row),)


@final
class _Probe(Generic[R]):
    """A batch's first and last rows, written alone after its first failure, and how each went."""

    __slots__ = ("batch", "errors", "pending")

    def __init__(self, batch: list[R]) -> None:
        self.batch = batch
        self.pending = [batch[0], batch[-1]]  # in the order they are written
        self.errors: list[tuple[R, Exception]] = []
