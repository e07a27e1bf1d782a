"""The writers' sans-IO core: when a batch is due, and what a failed flush call means."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.core.transient import CommitOutcomeUnknown
from slipstream._impl.db.batching import BatchJob, WriterCore

Run = Callable[[Coroutine[Any, Any, Any]], Any]
STEADY = ss.Retry(attempts=3, on=ss.is_connection_error, initial_s=0.5, jitter=False)


def core(
    batch_size: int = 4, retry: ss.Retry = STEADY, with_ids: bool = True, **options: Any
) -> WriterCore[int]:
    """A core whose flush takes batch ids (or not); the flush itself is never called here."""

    def with_id(rows: list[int], batch_id: str | None = None) -> None: ...

    def without_id(rows: list[int]) -> None: ...

    flush = with_id if with_ids else without_id
    return WriterCore(flush, batch_size, 1.0, retry, options.get("on_failed"))


class TestDue:
    """When the buffer's next batch is due."""

    def test_nothing_buffered_is_never_due(self) -> None:
        """An empty buffer has no deadline, closing or not."""
        assert (None, None) == (core().due_in_s(False), core().due_in_s(True))

    def test_a_full_batch_and_a_closing_writer_are_due_at_once(self) -> None:
        """A full batch is due now; so is one row when the writer closes."""
        full, one = core(batch_size=2), core()
        for row in (1, 2):
            full.push(row)
        one.push(1)
        assert (0.0, 0.0) == (full.due_in_s(False), one.due_in_s(True))

    def test_the_oldest_row_is_due_max_wait_s_after_it_came(self, vrun: Run) -> None:
        """On the virtual clock: a row is due exactly max_wait_s after it was buffered, and the
        rows that stay after a take wait from the take."""

        async def main() -> list[float | None]:
            c = core(batch_size=2)
            c.push(1)
            seen = [c.due_in_s(False)]
            await asyncio.sleep(0.25)
            seen.append(c.due_in_s(False))
            await asyncio.sleep(0.75)
            seen.append(c.due_in_s(False))
            for row in (2, 3):
                c.push(row)
            c.take()
            seen.append(c.due_in_s(False))
            return seen

        assert [1.0, 0.75, 0.0, 1.0] == vrun(main())

    def test_push_says_when_the_sync_writer_must_write(self, vrun: Run) -> None:
        """push() is True for the row that fills a batch and for one added once the oldest
        has waited max_wait_s, False otherwise."""

        async def main() -> list[bool]:
            c = core(batch_size=3)
            seen = [c.push(row) for row in (1, 2, 3)]
            c.take()
            seen.append(c.push(4))
            await asyncio.sleep(1.0)
            seen.append(c.push(5))
            return seen

        assert [False, False, True, False, True] == vrun(main())


class TestBatchJob:
    """What one batch's writing decides after each flush call."""

    def test_a_connection_error_retries_the_same_rows_with_the_same_id(self) -> None:
        """A connection error gives the policy's backoff; the retry is of the same rows under
        the same batch id, and is counted."""
        c = core()
        job = BatchJob(c, [1, 2, 3])
        assert job.next()
        first = (list(job.rows), job.batch_id)
        assert 0.5 == job.failed(ConnectionResetError("gone"))
        assert job.next()
        assert first == (job.rows, job.batch_id)
        job.written()
        assert not job.next()
        assert (3, 1, 1) == (c.rows_written, c.flushes, c.retries)

    def test_bad_data_is_bisected_first_half_first_with_new_ids(self) -> None:
        """A data error splits the rows in halves, written first half first, each under a new
        batch id; a single bad row is reported and never retried."""
        reported: list[tuple[int, Exception]] = []
        c = core(on_failed=reported.extend)
        job = BatchJob(c, [1, 2, 3, 4])
        calls: list[tuple[list[int], str | None]] = []
        while job.next():
            calls.append((list(job.rows), job.batch_id))
            if 3 in job.rows:
                assert job.failed(ValueError("bad row 3")) is None
            else:
                job.written()
        assert [[1, 2, 3, 4], [1, 2], [3, 4], [3], [4]] == [rows for rows, _ in calls]
        assert 5 == len({batch_id for _, batch_id in calls})
        assert ([3], [3]) == ([r for r, _ in c.failed], [r for r, _ in reported])
        assert (3, 0) == (c.rows_written, c.retries)

    def test_giving_up_puts_the_unwritten_rows_back_in_order(self) -> None:
        """When the policy gives up during a bisection, the part being written and the halves
        still to write go back to the front of the buffer, in order; written rows do not."""
        c = core()
        c.push(9)  # a row buffered meanwhile stays behind the ones put back
        job = BatchJob(c, [1, 2, 3, 4])
        assert job.next()
        job.failed(ValueError("bad"))
        assert job.next()  # [1, 2]
        job.written()
        assert job.next()  # [3, 4]
        for _ in range(STEADY.attempts - 1):  # retried: the same part again
            assert job.failed(ConnectionResetError("gone")) is not None
            assert job.next()
        with pytest.raises(ConnectionResetError) as info:
            job.failed(ConnectionResetError("gone"))
        job.stopped(info.value)
        assert ([3, 4, 9], {}) == (c.buffer, c.in_doubt)

    def test_an_unknown_commit_outcome_leaves_the_part_in_doubt(self) -> None:
        """A part that saw CommitOutcomeUnknown and was given up is in in_doubt under its
        batch id (a retry with that id would settle it)."""
        c = core(retry=ss.Retry(attempts=1, on=ss.is_connection_error))
        job = BatchJob(c, [1, 2])
        assert job.next()
        batch_id = job.batch_id
        with pytest.raises(CommitOutcomeUnknown) as info:
            job.failed(CommitOutcomeUnknown(str(batch_id), "the check failed"))
        job.stopped(info.value)
        assert ({batch_id: [1, 2]}, [1, 2]) == (c.in_doubt, c.buffer)

    def test_an_interrupted_call_leaves_the_part_in_doubt(self) -> None:
        """A cancellation midway through a call: the part may have committed, so it is in
        in_doubt, and back in the buffer."""
        c = core()
        job = BatchJob(c, [1, 2])
        assert job.next()
        batch_id = job.batch_id
        job.stopped(asyncio.CancelledError())
        assert ({batch_id: [1, 2]}, [1, 2]) == (c.in_doubt, c.buffer)

    def test_a_flush_without_batch_ids_has_no_doubt(self) -> None:
        """Without batch ids there is nothing to settle a doubt with: no in_doubt entry, the
        rows are back in the buffer all the same."""
        c = core(with_ids=False)
        job = BatchJob(c, [1, 2])
        assert job.next()
        assert job.batch_id is None
        job.stopped(asyncio.CancelledError())
        assert ({}, [1, 2]) == (c.in_doubt, c.buffer)
