"""BatchWriter's batch ids (the same on every retry of a batch, a new one per half of a
bisection), what is handed back or in doubt when it gives up, and its properties."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

from .tables import IdTable, Table

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestBatchIds:
    """Batch ids: one per batch and per half, kept across retries, and the rows in doubt."""

    def test_same_id_on_retries_new_ids_per_half(self, vrun: Run) -> None:
        """A flush taking batch_id gets the same id on every retry of a batch, and a new one
        for each batch and each half of a bisection."""
        table = IdTable(bad={5}, down=2)

        async def main() -> None:
            async with ss.BatchWriter(table.flush, batch_size=8) as w:
                await w.add_many({"id": i} for i in range(16))

        vrun(main())
        outcomes = [(ids, outcome) for _, ids, outcome in table.calls]
        assert [
            (list(range(8)), "ConnectionResetError"),
            (list(range(8)), "ConnectionResetError"),
            (list(range(8)), "ValueError"),
            ([0, 1, 2, 3], "ok"),
            ([4, 5, 6, 7], "ValueError"),
            ([4, 5], "ValueError"),
            ([4], "ok"),
            ([5], "ValueError"),
            ([6, 7], "ok"),
            (list(range(8, 16)), "ok"),
        ] == outcomes
        ids = [batch_id for batch_id, _, _ in table.calls]
        assert 1 == len(set(ids[:3]))  # one batch, three attempts
        assert 8 == len(set(ids[2:]))  # every batch and half after that has its own id
        assert all(isinstance(i, str) and i for i in ids)

    def test_a_flush_without_batch_id_is_called_as_before(self, vrun: Run) -> None:
        """A flush with no batch_id parameter is called with the rows alone."""
        seen: list[tuple[Any, ...]] = []

        async def flush(rows: list[int], *args: Any) -> None:
            seen.append(args)

        async def main() -> None:
            async with ss.BatchWriter(flush, batch_size=3) as w:
                await w.add_many(range(7))

        vrun(main())
        assert [(), (), ()] == seen

    def test_give_up_during_bisection_hands_back_only_unwritten_rows(self, vrun: Run) -> None:
        """When the database goes away while a batch is being bisected, the halves already
        committed are not handed back as unwritten (they would be written twice)."""
        table = IdTable(bad={3})
        original = IdTable.flush

        async def flush(rows: list[dict[str, Any]], batch_id: str | None = None) -> None:
            if table.flushes:  # after the first committed half: the database is gone
                table.down = 10**9
            await original(table, rows, batch_id=batch_id)

        policy = ss.Retry(attempts=2, on=ss.is_connection_error)

        async def main() -> None:
            async with ss.BatchWriter(flush, batch_size=8, retry=policy) as w:
                await w.add_many({"id": i} for i in range(8))

        with pytest.raises(ss.FlushFailed) as info:
            vrun(main())
        assert [0, 1] == sorted(table.rows)
        assert [2, 3, 4, 5, 6, 7] == [r["id"] for r in info.value.rows]

    def test_unknown_outcome_at_exit_is_in_doubt(self, vrun: Run) -> None:
        """A batch whose COMMIT outcome stayed unknown until the writer gave up is in
        unwritten and in in_doubt under its batch id, and FlushFailed says so."""
        from slipstream._impl.core.transient import CommitOutcomeUnknown

        calls: list[str | None] = []

        async def flush(rows: list[int], batch_id: str | None = None) -> None:
            calls.append(batch_id)
            raise CommitOutcomeUnknown(batch_id or "?", "the check failed")

        policy = ss.Retry(attempts=3, on=ss.is_connection_error)
        writer: ss.BatchWriter[int] = ss.BatchWriter(flush, batch_size=5, retry=policy)

        async def main() -> None:
            async with writer:
                await writer.add_many(range(5))

        with pytest.raises(ss.FlushFailed) as info:
            vrun(main())
        assert 3 == len(calls)
        assert 1 == len(set(calls))
        assert ({calls[0]: [0, 1, 2, 3, 4]}, [0, 1, 2, 3, 4]) == (writer.in_doubt, writer.unwritten)
        assert any("in_doubt" in note for note in info.value.__notes__)

    def test_a_sync_flush_runs_in_a_worker_thread(self, tmp_path: Path, vrun: Run) -> None:
        """BatchWriter runs a sync flush (ss.sqlite_flush) in a worker thread, as documented,
        and writes each row once."""
        import sqlite3
        import threading

        path = tmp_path / "w.sqlite"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE w (id INTEGER PRIMARY KEY, label TEXT)")
        inner = ss.sqlite_flush(path, "w", ["id", "label"])
        threads: list[str] = []

        def flush(rows: list[tuple[int, str]]) -> None:
            threads.append(threading.current_thread().name)
            inner(rows)

        async def main() -> ss.WriterStatistics:
            async with ss.BatchWriter(flush, batch_size=40) as w:
                await w.add_many((i, "x") for i in range(100))
            return w.statistics()

        stats = vrun(main())
        conn = sqlite3.connect(path)
        count = conn.execute("SELECT count(*) FROM w").fetchone()[0]
        conn.close()
        assert (100, 100, 3) == (count, stats.rows_written, stats.flushes)
        assert threading.main_thread().name not in threads

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        n=st.integers(0, 300),
        bad=st.sets(st.integers(0, 299), max_size=12),
        batch_size=st.integers(1, 80),
        down=st.integers(0, 3),
    )
    def test_nothing_lost_nothing_twice(
        self, n: int, bad: set[int], batch_size: int, down: int
    ) -> None:
        """Any sizes, bad rows and outages: each row is written or reported, exactly once."""
        table = Table(bad=bad, down=down)
        written: list[int] = []
        original = table.flush

        async def counting(rows: list[dict[str, Any]]) -> None:
            await original(rows)
            written.extend(r["id"] for r in rows)

        async def main() -> list[int]:
            async with ss.BatchWriter(counting, batch_size=batch_size) as w:
                await w.add_many({"id": i} for i in range(n))
            return sorted(r["id"] for r, _ in w.failed)

        failed = testing.run(main(), virtual_clock=True)
        assert sorted(bad & set(range(n))) == failed
        assert sorted(set(range(n)) - bad) == sorted(written)
