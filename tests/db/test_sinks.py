"""The flush functions on real databases: SQLite files, SQLAlchemy sessions (sync and async)
and asyncpg pools, their exactly-once markers, their argument checks, and the sync/async steps
that serve both twins of one flush."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.db.sinks.steps import run_async, run_sync

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class TestSQLAlchemy:
    """sqlalchemy_flush with a sessionmaker (sync) and an async_sessionmaker (async)."""

    def test_sync_session_on_sqlite_upserts(self, tmp_path: Path) -> None:
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

    def test_async_session_on_postgresql_upserts(self, postgres_url: str, arun: Run) -> None:
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


class TestAsyncpg:
    """asyncpg_flush: COPY and upserts, bounded markers, the marker table's creation."""

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


class TestArguments:
    """The flush builders check their arguments before anything is written."""

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


class TestSteps:
    """One body of steps serves the sync twin (calls already made) and the async twin (calls
    awaited, their errors thrown back in where they were yielded)."""

    @staticmethod
    def body(log: list[str], call: Callable[[str], Any]) -> Generator[Any, Any, str]:
        """Two calls; a failing second one is handled by the body's own ``except``."""
        first = yield call("first")
        try:
            second = yield call("second")
        except KeyError as exc:
            log.append(f"handled {exc}")
            second = "recovered"
        return f"{first}+{second}"

    def test_sync_and_async_drivers_give_the_same_result(self, vrun: Run) -> None:
        """The same body returns the same value, and handles the same failure in its own
        try, whether its calls are plain or awaited."""

        def plain(what: str) -> str:
            if what == "second":
                raise KeyError(what)
            return what.upper()

        async def awaited(what: str) -> str:
            await asyncio.sleep(0)
            return plain(what)

        sync_log: list[str] = []
        async_log: list[str] = []
        by_sync = run_sync(self.body(sync_log, plain))
        by_async = vrun(run_async(self.body(async_log, awaited)))
        assert ("FIRST+recovered", "FIRST+recovered") == (by_sync, by_async)
        assert sync_log == async_log == ["handled 'second'"]

    def test_an_error_the_body_does_not_handle_reaches_the_caller(self, vrun: Run) -> None:
        """An awaited call's error the body does not catch propagates out of the async driver
        unchanged."""

        async def failing(what: str) -> str:
            raise ConnectionResetError(what)

        with pytest.raises(ConnectionResetError, match="first"):
            vrun(run_async(self.body([], failing)))


def ddl_of(ddl: str) -> Any:
    """A sqlite_flush setup running ``ddl``."""
    return lambda conn: conn.execute(ddl)


class TestSqliteConnections:
    def test_each_thread_keeps_one_connection_until_close(self, tmp_path: Path) -> None:
        """Two threads flushing 3 batches each: 2 connections in all (seen by SQLite as the
        ones holding the file), every row written, none left open after ``close()``."""
        ddl = "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"
        flush = ss.sqlite_flush(
            tmp_path / "s.db", "t", ["k", "v"], conflict=["k"], setup=ddl_of(ddl)
        )
        flush.setup()
        seen: list[int] = []

        def work(base: int) -> None:
            for b in range(3):
                flush([(f"{base}-{b}-{i}", i) for i in range(10)])
                seen.append(threading.get_ident())

        threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(seen)) == 2
        flush.close()
        check = sqlite3.connect(tmp_path / "s.db")
        assert check.execute("select count(*) from t").fetchone() == (60,)
        # with every kept connection closed, this one is the last: it may switch the journal
        # mode, which SQLite refuses while another connection holds the WAL open
        assert check.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
        check.close()

    def test_a_failed_batch_drops_its_connection_and_writes_nothing(self, tmp_path: Path) -> None:
        """A batch that violates a constraint is rolled back whole; the next batch, on a new
        connection, is written."""
        ddl = "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"
        flush = ss.sqlite_flush(tmp_path / "s.db", "t", ["k", "v"], setup=ddl_of(ddl))
        flush([("a", 1)])
        with pytest.raises(sqlite3.IntegrityError):
            flush([("b", 2), ("c", None)])
        flush([("d", 4)])
        flush.close()
        rows = sqlite3.connect(tmp_path / "s.db").execute("select k from t order by k").fetchall()
        assert rows == [("a",), ("d",)]

    def test_close_while_a_flush_runs_leaves_that_connection_to_it(self, tmp_path: Path) -> None:
        """``close()`` from another thread while a flush is inside ``executemany`` (a value
        whose adaptation waits: a cancelled run's last flush going on in its thread) closes
        only the idle connections; the busy one commits its batch, then its flush closes it
        (closing it under the running statement crashed the interpreter)."""
        entered, release = threading.Event(), threading.Event()

        class Slow:
            def __conform__(self, protocol: Any) -> int:
                entered.set()
                release.wait(10)
                return 7

        ddl = "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"
        flush = ss.sqlite_flush(tmp_path / "s.db", "t", ["k", "v"], setup=ddl_of(ddl))
        flush([("warm", 1)])  # this thread's connection: idle when close() runs
        errors: list[BaseException] = []

        def write() -> None:
            try:
                flush([("a", 1), ("b", Slow())])
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        assert entered.wait(10)
        flush.close()  # the writer is inside executemany now
        release.set()
        writer.join(10)
        assert errors == []
        check = sqlite3.connect(tmp_path / "s.db")
        assert check.execute("select k, v from t order by k").fetchall() == [
            ("a", 1),
            ("b", 7),
            ("warm", 1),
        ]
        assert check.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
        check.close()
