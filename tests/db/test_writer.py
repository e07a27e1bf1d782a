"""BatchWriter and SyncBatchWriter: batching, bisection, retries, shutdown, real databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slipstream as ss
from slipstream import testing

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Table:
    """An in-process table with transactional flushes: a batch holding a bad row writes
    nothing; `down` flushes fail with a connection error. (The writer's logic is tested here;
    the database tests below use real SQLite and PostgreSQL.)"""

    def __init__(self, bad: set[int] = frozenset(), down: int = 0, delay_s: float = 0.0) -> None:  # type: ignore[assignment]
        self.rows: dict[int, dict[str, Any]] = {}
        self.flushes: list[int] = []
        self.bad = bad
        self.down = down
        self.delay_s = delay_s

    async def flush(self, rows: list[dict[str, Any]]) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.down:
            self.down -= 1
            raise ConnectionResetError("server closed the connection")
        bad = [r["id"] for r in rows if r["id"] in self.bad]
        if bad:
            raise ValueError(f"invalid row {bad[0]}")
        for r in rows:
            self.rows[r["id"]] = r  # an upsert
        self.flushes.append(len(rows))


class TestBatchWriter:
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

    def test_sync_writer_refuses_an_async_flush(self) -> None:
        """SyncBatchWriter with an async flush (which it would never await) is a TypeError."""
        with pytest.raises(TypeError, match="'flush'") as info:
            ss.SyncBatchWriter(Table().flush)
        assert "HINT: use 'async with ss.BatchWriter(flush)'" in str(info.value)

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


class IdTable(Table):
    """A Table whose flush takes the writer's batch ids, and records each call's id and rows."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[tuple[str | None, list[int], str]] = []

    async def flush(  # type: ignore[override]
        self, rows: list[dict[str, Any]], batch_id: str | None = None
    ) -> None:
        try:
            await super().flush(rows)
        except Exception as exc:
            self.calls.append((batch_id, [r["id"] for r in rows], type(exc).__name__))
            raise
        self.calls.append((batch_id, [r["id"] for r in rows], "ok"))


class TestBatchIds:
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

    def test_a_sync_flush_runs_in_a_worker_thread(self, tmp_path: Path, arun: Run) -> None:
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

        stats = arun(main())
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


class TestSyncBatchWriter:
    def test_sqlalchemy_sqlite_upsert(self, tmp_path: Path) -> None:
        """A sync Session upserts into a SQLite file; a NOT NULL violation is isolated."""
        sa = pytest.importorskip("sqlalchemy")
        from sqlalchemy.orm import sessionmaker

        engine = sa.create_engine(f"sqlite:///{tmp_path / 'genes.sqlite'}")
        meta = sa.MetaData()
        genes = sa.Table(
            "genes",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("symbol", sa.String, nullable=False),
        )
        meta.create_all(engine)
        flush = ss.sqlalchemy_flush(sessionmaker(engine), genes, conflict=["id"])
        with ss.SyncBatchWriter(flush, batch_size=100) as w:
            w.add_many({"id": i, "symbol": f"G{i}"} for i in range(250))
            w.add({"id": 999, "symbol": None})
            w.add_many({"id": i, "symbol": f"H{i}"} for i in range(10))  # updates, no duplicates
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM genes")).scalar_one()
            first = conn.execute(sa.text("SELECT symbol FROM genes WHERE id = 0")).scalar_one()
        assert (250, "H0") == (count, first)
        assert [999] == [r["id"] for r, _ in w.failed]
        assert 3 <= w.statistics().flushes
        with engine.connect() as conn:  # exactly-once markers: one per committed batch here
            markers = conn.execute(sa.text("SELECT count(*) FROM slipstream_batches")).scalar()
        assert w.statistics().flushes == markers

    def test_bad_flush_arguments(self, tmp_path: Path) -> None:
        """The flush builders name their bad arguments (a column list given as one string
        gets a HINT: it would be read letter by letter)."""
        with pytest.raises(TypeError, match="'columns'") as info:
            ss.sqlite_flush(tmp_path / "x.sqlite", "t", "id")  # type: ignore[arg-type]
        assert 'HINT: columns=["id"]' in str(info.value)
        with pytest.raises(TypeError, match="'conflict'"):
            ss.sqlite_flush(tmp_path / "x.sqlite", "t", ["id"], conflict="id")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'columns'"):
            ss.sqlite_flush(tmp_path / "x.sqlite", "t", ["id; DROP TABLE t"])
        with pytest.raises(TypeError, match="'pool'"):
            ss.asyncpg_flush(42, "t", ["id"])


class TestPostgreSQL:
    def test_asyncpg_copy_upsert_and_bad_rows(self, postgres_url: str, arun: Run) -> None:
        """COPY for plain inserts, ON CONFLICT upserts on retry, bad rows isolated by the
        server's own checks."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"results_{uuid.uuid4().hex[:8]}"
        marks = f"{table}_marks"

        async def main() -> tuple[int, int, list[int], ss.WriterStatistics]:
            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
            try:
                await pool.execute(
                    f"CREATE TABLE {table} (id int PRIMARY KEY, label text NOT NULL, "
                    "score real CHECK (score BETWEEN 0 AND 1))"
                )
                copy = ss.asyncpg_flush(pool, table, ["id", "label", "score"], marker_table=marks)
                async with ss.BatchWriter(copy, batch_size=500) as w:
                    await w.add_many((i, "x", 0.5) for i in range(2000))
                upsert = ss.asyncpg_flush(
                    pool, table, ["id", "label", "score"], conflict=["id"], marker_table=marks
                )
                async with ss.BatchWriter(upsert, batch_size=64) as u:
                    for i in range(1900, 2100):
                        score = 7.0 if i in (1950, 2050) else 0.9
                        await u.add({"id": i, "label": "y", "score": score})
                    await u.add({"id": 5000, "label": "missing score"})  # KeyError: isolated
                count = await pool.fetchval(f"SELECT count(*) FROM {table}")
                updated = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE label = 'y'")
                failed = sorted(r["id"] for r, _ in u.failed)
                return count, updated, failed, u.statistics()
            finally:
                await pool.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
                await pool.close()

        count, updated, failed, stats = arun(main())
        assert 2000 + 100 - 1 == count  # ids 2000..2099 minus the bad 2050
        assert 198 == updated
        assert [1950, 2050, 5000] == failed
        assert 198 == stats.rows_written

    def test_sqlalchemy_async_session(self, postgres_url: str, arun: Run) -> None:
        """An AsyncSession flush upserts into PostgreSQL."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("greenlet")
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        name = f"genes_{uuid.uuid4().hex[:8]}"
        meta = sa.MetaData()
        genes = sa.Table(
            name, meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("s", sa.String)
        )

        async def main() -> int:
            url = postgres_url.replace("postgresql://", "postgresql+asyncpg://")
            engine = create_async_engine(url)
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(meta.create_all)
                flush = ss.sqlalchemy_flush(
                    async_sessionmaker(engine), genes, conflict=["id"], marker_table=f"{name}_m"
                )
                async with ss.BatchWriter(flush, batch_size=50) as w:
                    await w.add_many({"id": i % 120, "s": str(i)} for i in range(240))
                async with engine.connect() as conn:
                    count = (
                        await conn.execute(sa.text(f"SELECT count(*) FROM {name}"))
                    ).scalar_one()
                async with engine.begin() as conn:
                    await conn.run_sync(meta.drop_all)
                    await conn.execute(sa.text(f"DROP TABLE {name}_m"))
                return int(count)
            finally:
                await engine.dispose()

        assert 120 == arun(main())

    def test_markers_stay_bounded(self, postgres_url: str, arun: Run) -> None:
        """After 40 batches 8 markers of the writer are left (acknowledged ones are deleted 16
        at a time by a later transaction), and markers older than marker_retention_s are swept
        on the first write; younger ones stay."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"bounded_{uuid.uuid4().hex[:8]}"
        marks = f"{table}_marks"

        async def main() -> tuple[list[str], int]:
            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
            try:
                await pool.execute(
                    f"CREATE TABLE {table} (id int);"
                    f"CREATE TABLE {marks} (batch_id text PRIMARY KEY, "
                    "committed_at timestamptz NOT NULL DEFAULT now());"
                    f"INSERT INTO {marks} VALUES ('old', now() - interval '8 days'), "
                    "('recent', now() - interval '1 day')"
                )
                flush = ss.asyncpg_flush(pool, table, ["id"], marker_table=marks)
                async with ss.BatchWriter(flush, batch_size=25) as w:
                    await w.add_many((i,) for i in range(1000))
                left = [r[0] for r in await pool.fetch(f"SELECT batch_id FROM {marks}")]
                return sorted(left), await pool.fetchval(f"SELECT count(*) FROM {table}")
            finally:
                await pool.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
                await pool.close()

        left, count = arun(main())
        assert (1000, 9) == (count, len(left))
        assert ("recent" in left, "old" in left) == (True, False)

    def test_bad_asyncpg_flush_arguments(self, postgres_url: str, arun: Run) -> None:
        """asyncpg_flush names a bad marker table, retention, copy flag or column list."""
        asyncpg = pytest.importorskip("asyncpg")

        async def main() -> list[str]:
            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=1)
            messages = []
            try:
                for options, error in [
                    ({"marker_table": "marks; DROP TABLE x"}, ValueError),
                    ({"marker_retention_s": 0}, ValueError),
                    ({"marker_retention_s": None}, TypeError),
                    ({"copy": "yes"}, TypeError),
                ]:
                    with pytest.raises(error) as info:
                        ss.asyncpg_flush(pool, "t", ["id"], **options)
                    messages.append(str(info.value).split("'")[1])
                with pytest.raises(TypeError) as info:
                    await ss.asyncpg_flush(pool, "t", ["id"])([1], batch_id=7)  # type: ignore[arg-type]
                messages.append(str(info.value).split("'")[1])
            finally:
                await pool.close()
            return messages

        assert ["marker_table", "marker_retention_s", "marker_retention_s", "copy", "batch_id"] == (
            arun(main())
        )

    def test_two_flushes_create_the_marker_table_at_once(
        self, postgres_url: str, arun: Run
    ) -> None:
        """Two flush functions whose first writes race to create the same marker table both
        write their rows (the loser of CREATE TABLE IF NOT EXISTS is not an error)."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"race_{uuid.uuid4().hex[:8]}"
        marks = f"{table}_marks"

        async def main() -> int:
            pool = await asyncpg.create_pool(postgres_url, min_size=2, max_size=4)
            try:
                await pool.execute(f"CREATE TABLE {table} (id int)")
                first, second = (
                    ss.asyncpg_flush(pool, table, ["id"], marker_table=marks) for _ in range(2)
                )
                await asyncio.gather(first([(1,), (2,)]), second([(3,)]))
                return int(await pool.fetchval(f"SELECT count(*) FROM {table}"))
            finally:
                await pool.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
                await pool.close()

        assert 3 == arun(main())
