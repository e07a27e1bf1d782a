"""BatchWriter and SyncBatchWriter: batching, bisection, retries, bounds and shutdown, against
in-process tables (test_sinks.py has the real databases, test_writer_ids.py the batch ids)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss

from .tables import Table

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestBatchWriter:
    """The async writer: when it flushes, what it does with failures, how it stops."""

    def test_flushes_by_size_and_on_exit(self, vrun: Run) -> None:
        """1,050 rows at batch_size 100: ten full flushes and one of 50 on exit."""
        table = Table()

        async def main() -> ss.WriterStatistics:
            async with ss.BatchWriter(table.flush, batch_size=100, max_wait_s=60) as w:
                await w.add_many({"id": i} for i in range(1050))
            return w.statistics()

        stats = vrun(main())
        assert [100] * 10 + [50] == table.flushes
        assert (1050, 11, 0, 0) == (
            stats.rows_written,
            stats.flushes,
            stats.failed_rows,
            stats.pending,
        )

    def test_flushes_when_the_oldest_row_is_due(self, vrun: Run) -> None:
        """Three rows and no more adds: they are written max_wait_s after the first."""
        table = Table()
        flushed_at = [0.0]

        async def flush(rows: list[dict[str, Any]]) -> None:
            flushed_at[0] = asyncio.get_running_loop().time()
            await table.flush(rows)

        async def main() -> tuple[float, list[int]]:
            async with ss.BatchWriter(flush, batch_size=100, max_wait_s=2) as w:
                for i in range(3):
                    await w.add({"id": i})
                await asyncio.sleep(2.5)  # no more adds; the flusher's own timer must act
                return flushed_at[0], list(table.flushes)

        at, flushes = vrun(main())
        assert [3] == flushes
        assert 2.0 == pytest.approx(at)

    @pytest.mark.timeout(20)
    def test_a_deadline_a_rounding_error_away_is_due(self, vrun: Run) -> None:
        """Rows paced by a rate limiter (10 a second) with max_wait_s=0.2, on a virtual
        clock: every batch is flushed when due; the flusher does not spin forever on a
        deadline a float rounding error in the future (it did: the clock never moved)."""
        table = Table()

        async def main() -> tuple[ss.WriterStatistics, float]:
            limiter = ss.RateLimiter(ss.Rate(per_second=10, burst=1))
            async with ss.BatchWriter(table.flush, batch_size=100, max_wait_s=0.2) as w:
                for i in range(40):
                    await limiter.acquire()
                    await w.add({"id": i})
            return w.statistics(), asyncio.get_running_loop().time()

        stats, elapsed = vrun(main())
        assert (40, list(range(40))) == (stats.rows_written, sorted(table.rows))
        assert 13 <= stats.flushes
        assert 3.9 == pytest.approx(elapsed, abs=0.05)

    def test_bad_rows_are_isolated(self, vrun: Run) -> None:
        """Bad rows are bisected out and reported; every good row is written."""
        table = Table(bad={13, 77})
        reported: list[Any] = []

        async def main() -> ss.WriterStatistics:
            async with ss.BatchWriter(table.flush, batch_size=64, on_failed=reported.extend) as w:
                await w.add_many({"id": i} for i in range(200))
            assert [13, 77] == sorted(r["id"] for r, _ in w.failed)
            return w.statistics()

        stats = vrun(main())
        assert set(range(200)) - {13, 77} == set(table.rows)
        assert (198, 2) == (stats.rows_written, stats.failed_rows)
        assert all(isinstance(e, ValueError) for _, e in reported)

    def test_connection_errors_retry_the_batch(self, vrun: Run) -> None:
        """Two connection failures, then success: retried, written once each."""
        table = Table(down=2)

        async def main() -> ss.WriterStatistics:
            async with ss.BatchWriter(table.flush, batch_size=10) as w:
                await w.add_many({"id": i} for i in range(10))
            return w.statistics()

        stats = vrun(main())
        assert (10, 2, [10]) == (stats.rows_written, stats.retries, table.flushes)

    def test_database_down_at_exit_hands_rows_back(self, vrun: Run) -> None:
        """When the database stays down, exit raises FlushFailed holding every unwritten row."""
        table = Table(down=10**9)
        policy = ss.Retry(attempts=3, on=ss.is_connection_error)

        async def main() -> None:
            async with ss.BatchWriter(table.flush, batch_size=5, retry=policy) as w:
                await w.add_many({"id": i} for i in range(12))

        with pytest.raises(ss.FlushFailed) as info:
            vrun(main())
        assert list(range(12)) == sorted(r["id"] for r in info.value.rows)
        assert isinstance(info.value.__cause__, ConnectionResetError)

    def test_bounded_pending(self, vrun: Run) -> None:
        """Producers wait while max_pending rows are buffered or being written."""
        table = Table(delay_s=1)
        peak = [0]

        async def main() -> None:
            async with ss.BatchWriter(table.flush, batch_size=10, max_pending=30) as w:
                for i in range(200):
                    await w.add({"id": i})
                    peak[0] = max(peak[0], w.statistics().pending)

        vrun(main())
        assert peak[0] <= 30
        assert 200 == len(table.rows)

    def test_cancellation_still_writes_pending_rows(self, vrun: Run) -> None:
        """Cancelling the producing task leaves no buffered row unwritten."""
        table = Table(delay_s=0.5)

        async def produce() -> None:
            async with ss.BatchWriter(table.flush, batch_size=100, max_wait_s=60) as w:
                for i in range(1000):
                    await w.add({"id": i})
                    if i % 10 == 0:
                        await asyncio.sleep(0.1)

        async def main() -> int:
            task = asyncio.create_task(produce())
            await asyncio.sleep(3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return len(table.rows)

        written = vrun(main())
        assert written > 0
        assert written == len(table.rows)
        assert sorted(table.rows) == list(range(written))

    def test_bad_arguments(self) -> None:
        """Bad sizes and a non-callable flush are named; add() outside the block is refused."""
        with pytest.raises(ValueError, match="'batch_size'"):
            ss.BatchWriter(Table().flush, batch_size=0)
        with pytest.raises(ValueError, match="'max_pending'"):
            ss.BatchWriter(Table().flush, batch_size=10, max_pending=5)
        with pytest.raises(TypeError, match="'flush'"):
            ss.BatchWriter(42)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="async with"):
            asyncio.run(ss.BatchWriter(Table().flush).add({"id": 1}))

    @pytest.mark.parametrize(
        ("options", "error", "name"),
        [
            ({"max_wait_s": None}, TypeError, "max_wait_s"),
            ({"max_wait_s": "1"}, TypeError, "max_wait_s"),
            ({"max_wait_s": 0}, ValueError, "max_wait_s"),
            ({"max_wait_s": float("nan")}, ValueError, "max_wait_s"),
            ({"batch_size": "10"}, TypeError, "batch_size"),
            ({"batch_size": True}, TypeError, "batch_size"),
            ({"max_pending": None}, TypeError, "max_pending"),
            ({"retry": 3}, TypeError, "retry"),
            ({"on_failed": "print"}, TypeError, "on_failed"),
        ],
    )
    def test_every_bad_argument_is_named(
        self, options: dict[str, Any], error: type[Exception], name: str
    ) -> None:
        """Each bad argument raises TypeError or ValueError naming its parameter, for both
        writers (no bare comparison error)."""
        with pytest.raises(error, match=f"'{name}'"):
            ss.BatchWriter(Table().flush, **options)
        if name != "max_pending":
            with pytest.raises(error, match=f"'{name}'"):
                ss.SyncBatchWriter(lambda rows: None, **options)

    def test_the_writer_can_be_entered_again(self, vrun: Run) -> None:
        """A writer used in two successive blocks writes the rows of both."""
        table = Table()

        async def main() -> ss.WriterStatistics:
            writer: ss.BatchWriter[dict[str, Any]] = ss.BatchWriter(table.flush, batch_size=10)
            async with writer:
                await writer.add_many({"id": i} for i in range(15))
            async with writer:
                await writer.add_many({"id": i} for i in range(15, 30))
            return writer.statistics()

        stats = vrun(main())
        assert (30, list(range(30))) == (stats.rows_written, sorted(table.rows))


class TestSyncBatchWriter:
    """The sync writer: the same decisions as the async one, made on ``add``."""

    def test_sync_writer_refuses_an_async_flush(self) -> None:
        """SyncBatchWriter with an async flush (which it would never await) is a TypeError."""
        with pytest.raises(TypeError, match="'flush'") as info:
            ss.SyncBatchWriter(Table().flush)
        assert "HINT: use 'async with ss.BatchWriter(flush)'" in str(info.value)

    def test_max_wait_s_is_checked_on_add_on_the_loop_clock(self, vrun: Run) -> None:
        """Used inside a virtual-clock loop, the sync writer reads the loop's clock: a row
        added max_wait_s after the first flushes both, one added before does not."""
        table = Table()

        async def main() -> list[list[int]]:
            seen = []
            with ss.SyncBatchWriter(table.flush_sync, batch_size=100, max_wait_s=2) as w:
                w.add({"id": 0})
                await asyncio.sleep(1.5)
                w.add({"id": 1})
                seen.append(list(table.flushes))
                await asyncio.sleep(0.5)
                w.add({"id": 2})
                seen.append(list(table.flushes))
            seen.append(list(table.flushes))
            return seen

        assert [[], [3], [3]] == vrun(main())

    def test_bad_rows_are_isolated_and_connection_errors_retried(self) -> None:
        """Bad rows are bisected out and reported, a connection error retries the batch, and
        every good row is written once."""
        table = Table(bad={3, 17}, down=2)
        reported: list[Any] = []
        policy = ss.Retry(attempts=5, on=ss.is_connection_error, initial_s=0, jitter=False)
        with ss.SyncBatchWriter(
            table.flush_sync, batch_size=8, retry=policy, on_failed=reported.extend
        ) as w:
            w.add_many({"id": i} for i in range(20))
        stats = w.statistics()
        assert set(range(20)) - {3, 17} == set(table.rows)
        assert ([3, 17], [3, 17]) == (
            sorted(r["id"] for r, _ in w.failed),
            sorted(r["id"] for r, _ in reported),
        )
        assert (18, 2, 2, 0) == (
            stats.rows_written,
            stats.failed_rows,
            stats.retries,
            stats.pending,
        )

    def test_database_down_at_exit_hands_rows_back(self) -> None:
        """When the database stays down, close raises FlushFailed holding every unwritten row
        and the writer's unwritten says the same."""
        table = Table(down=10**9)
        policy = ss.Retry(attempts=2, on=ss.is_connection_error, initial_s=0, jitter=False)
        writer: ss.SyncBatchWriter[dict[str, Any]] = ss.SyncBatchWriter(
            table.flush_sync, batch_size=100, retry=policy
        )
        with pytest.raises(ss.FlushFailed) as info, writer:
            writer.add_many({"id": i} for i in range(12))
        assert list(range(12)) == [r["id"] for r in info.value.rows]
        assert list(range(12)) == [r["id"] for r in writer.unwritten]
        assert isinstance(info.value.__cause__, ConnectionResetError)


class TestGivingUp:
    def test_an_add_waiting_for_room_when_the_flusher_gives_up_raises_with_every_row(
        self, vrun: Run
    ) -> None:
        """The database stays down: the flusher gives up while ``add`` waits for room. The
        wait ends in ``FlushFailed`` (it hung forever: the rows went back in the buffer, so
        the room never came), and its rows are every row added plus the one being added."""

        async def down(rows: list[int]) -> None:
            raise ConnectionResetError("down")

        added: list[int] = []

        async def main() -> ss.FlushFailed:
            try:
                async with ss.BatchWriter(down, batch_size=10, max_pending=20) as writer:
                    for i in range(1000):
                        await asyncio.wait_for(writer.add(i), 600)
                        added.append(i)
            except ss.FlushFailed as exc:
                return exc
            raise AssertionError("no FlushFailed")

        failed = vrun(main())
        assert sorted(failed.rows) == list(range(len(added) + 1))

    def test_add_many_reports_the_rows_it_did_not_take(self, vrun: Run) -> None:
        """``add_many`` failing midway: its rows not yet taken are in the error's rows and in
        what closing the writer again reports, so a pipeline counts them unwritten."""

        async def down(rows: list[int]) -> None:
            raise ConnectionResetError("down")

        async def main() -> tuple[list[int], list[int], list[int]]:
            writer: ss.BatchWriter[int] = ss.BatchWriter(down, batch_size=10, max_pending=20)
            await writer.__aenter__()
            sent: list[int] = []
            first: list[int] = []
            try:
                for start in range(0, 1000, 7):
                    chunk = list(range(start, start + 7))
                    sent += chunk
                    await writer.add_many(chunk)
            except ss.FlushFailed as exc:
                first = sorted(exc.rows)
            with pytest.raises(ss.FlushFailed) as again:
                await writer.aclose()
            return sent, first, sorted(again.value.rows)

        sent, first, again = vrun(main())
        assert first == sent  # nothing was written: every row sent is unwritten, once
        assert again == sent
