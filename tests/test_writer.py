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
        """1,050 rows at max_items 100: ten full flushes and one of 50 on exit."""
        table = Table()

        async def main() -> ss.WriterStatistics:
            async with ss.BatchWriter(table.flush, max_items=100, max_delay_s=60) as w:
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
        """Three rows and no more adds: they are written max_delay_s after the first."""
        table = Table()
        flushed_at = [0.0]

        async def flush(rows: list[dict[str, Any]]) -> None:
            flushed_at[0] = asyncio.get_running_loop().time()
            await table.flush(rows)

        async def main() -> tuple[float, list[int]]:
            async with ss.BatchWriter(flush, max_items=100, max_delay_s=2) as w:
                for i in range(3):
                    await w.add({"id": i})
                await asyncio.sleep(2.5)  # no more adds; the flusher's own timer must act
                return flushed_at[0], list(table.flushes)

        at, flushes = vrun(main())
        assert [3] == flushes
        assert 2.0 == pytest.approx(at)

    def test_bad_rows_are_isolated(self, vrun: Run) -> None:
        """Bad rows are bisected out and reported; every good row is written."""
        table = Table(bad={13, 77})
        reported: list[Any] = []

        async def main() -> ss.WriterStatistics:
            async with ss.BatchWriter(table.flush, max_items=64, on_failed=reported.extend) as w:
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
            async with ss.BatchWriter(table.flush, max_items=10) as w:
                await w.add_many({"id": i} for i in range(10))
            return w.statistics()

        stats = vrun(main())
        assert (10, 2, [10]) == (stats.rows_written, stats.retries, table.flushes)

    def test_database_down_at_exit_hands_rows_back(self, vrun: Run) -> None:
        """When the database stays down, exit raises FlushFailed holding every unwritten row."""
        table = Table(down=10**9)
        policy = ss.Retry(attempts=3, on=ss.is_connection_error)

        async def main() -> None:
            async with ss.BatchWriter(table.flush, max_items=5, retry=policy) as w:
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
            async with ss.BatchWriter(table.flush, max_items=10, max_pending=30) as w:
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
            async with ss.BatchWriter(table.flush, max_items=100, max_delay_s=60) as w:
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
        with pytest.raises(ValueError, match="'max_items'"):
            ss.BatchWriter(Table().flush, max_items=0)
        with pytest.raises(ValueError, match="'max_pending'"):
            ss.BatchWriter(Table().flush, max_items=10, max_pending=5)
        with pytest.raises(TypeError, match="'flush'"):
            ss.BatchWriter(42)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="async with"):
            asyncio.run(ss.BatchWriter(Table().flush).add({"id": 1}))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        n=st.integers(0, 300),
        bad=st.sets(st.integers(0, 299), max_size=12),
        max_items=st.integers(1, 80),
        down=st.integers(0, 3),
    )
    def test_nothing_lost_nothing_twice(
        self, n: int, bad: set[int], max_items: int, down: int
    ) -> None:
        """Any sizes, bad rows and outages: each row is written or reported, exactly once."""
        table = Table(bad=bad, down=down)
        written: list[int] = []
        original = table.flush

        async def counting(rows: list[dict[str, Any]]) -> None:
            await original(rows)
            written.extend(r["id"] for r in rows)

        async def main() -> list[int]:
            async with ss.BatchWriter(counting, max_items=max_items) as w:
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
        with ss.SyncBatchWriter(flush, max_items=100) as w:
            w.add_many({"id": i, "symbol": f"G{i}"} for i in range(250))
            w.add({"id": 999, "symbol": None})
            w.add_many({"id": i, "symbol": f"H{i}"} for i in range(10))  # updates, no duplicates
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM genes")).scalar_one()
            first = conn.execute(sa.text("SELECT symbol FROM genes WHERE id = 0")).scalar_one()
        assert (250, "H0") == (count, first)
        assert [999] == [r["id"] for r, _ in w.failed]
        assert 3 <= w.statistics().flushes


class TestPostgreSQL:
    def test_asyncpg_copy_upsert_and_bad_rows(self, postgres_url: str, arun: Run) -> None:
        """COPY for plain inserts, ON CONFLICT upserts on retry, bad rows isolated by the
        server's own checks."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"results_{uuid.uuid4().hex[:8]}"

        async def main() -> tuple[int, int, list[int], ss.WriterStatistics]:
            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
            try:
                await pool.execute(
                    f"CREATE TABLE {table} (id int PRIMARY KEY, label text NOT NULL, "
                    "score real CHECK (score BETWEEN 0 AND 1))"
                )
                copy = ss.asyncpg_flush(pool, table, ["id", "label", "score"])
                async with ss.BatchWriter(copy, max_items=500) as w:
                    await w.add_many((i, "x", 0.5) for i in range(2000))
                upsert = ss.asyncpg_flush(pool, table, ["id", "label", "score"], conflict=["id"])
                async with ss.BatchWriter(upsert, max_items=64) as u:
                    for i in range(1900, 2100):
                        score = 7.0 if i in (1950, 2050) else 0.9
                        await u.add({"id": i, "label": "y", "score": score})
                    await u.add({"id": 5000, "label": "missing score"})  # KeyError: isolated
                count = await pool.fetchval(f"SELECT count(*) FROM {table}")
                updated = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE label = 'y'")
                failed = sorted(r["id"] for r, _ in u.failed)
                return count, updated, failed, u.statistics()
            finally:
                await pool.execute(f"DROP TABLE IF EXISTS {table}")
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
                flush = ss.sqlalchemy_flush(async_sessionmaker(engine), genes, conflict=["id"])
                async with ss.BatchWriter(flush, max_items=50) as w:
                    await w.add_many({"id": i % 120, "s": str(i)} for i in range(240))
                async with engine.connect() as conn:
                    count = (
                        await conn.execute(sa.text(f"SELECT count(*) FROM {name}"))
                    ).scalar_one()
                async with engine.begin() as conn:
                    await conn.run_sync(meta.drop_all)
                return int(count)
            finally:
                await engine.dispose()

        assert 120 == arun(main())
