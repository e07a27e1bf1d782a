"""Exactly-once batch writes on a real PostgreSQL when the connection fails after the COMMIT was
sent: a backend killed while the pool resets the connection, and a TCP proxy that forwards a
COMMIT to the server and drops its reply (the commit took effect, its acknowledgement was lost).
Real time: the proxy and the server are real."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.core.transient import CommitOutcomeUnknown

from .faults import CommitProxy, counts, drop, flushed, names

Run = Callable[[Coroutine[Any, Any, Any]], Any]
pytestmark = pytest.mark.realtime


class TestAfterCommit:
    """Errors after the COMMIT was sent: a reset that fails, a reply that never comes."""

    def test_error_releasing_the_connection_is_not_a_failure(
        self, postgres_url: str, arun: Run
    ) -> None:
        """The backend is terminated while the pool resets the connection after COMMIT
        returned (asyncpg's reset-on-release raises): no retry, each row written once."""
        asyncpg = pytest.importorskip("asyncpg")
        table, marks, _ = names()
        armed = [0]

        async def main() -> tuple[int, ss.WriterStatistics]:
            admin = await asyncpg.connect(postgres_url)

            async def reset(conn: Any) -> None:
                if armed[0]:
                    armed[0] -= 1
                    await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
                await conn.execute("SELECT 1")  # fails on the terminated backend

            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=1, reset=reset)
            try:
                await admin.execute(f"CREATE TABLE {table} (id int, label text)")
                flush = ss.asyncpg_flush(pool, table, ["id", "label"], marker_table=marks)
                async with ss.BatchWriter(flush, batch_size=100) as writer:
                    armed[0] = 3  # the releases after the first three batches fail
                    await writer.add_many((i, "x") for i in range(500))
                return (await admin.fetchval(f"SELECT count(*) FROM {table}")), writer.statistics()
            finally:
                await pool.close()
                await admin.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
                await admin.close()

        count, stats = arun(main())
        assert (500, 500, 5, 0, 0) == (
            count,
            stats.rows_written,
            stats.flushes,
            stats.retries,
            armed[0],
        )

    @pytest.mark.parametrize("mode", ["copy", "upsert"])
    def test_lost_commit_reply_asyncpg(self, mode: str, postgres_url: str, arun: Run) -> None:
        """The server commits and the reply never arrives: the flush checks the marker on a
        fresh connection and returns; nothing is written twice and nothing is retried."""
        asyncpg = pytest.importorskip("asyncpg")
        table, marks, _ = names()

        async def main() -> tuple[int, int, ss.WriterStatistics, int]:
            async with CommitProxy() as proxy:
                pool = await asyncpg.create_pool(proxy.url(), ssl=False, min_size=1, max_size=1)
                admin = await asyncpg.connect(postgres_url)
                try:
                    await admin.execute(
                        f"CREATE TABLE {table} (id int PRIMARY KEY, label text, "
                        "version int NOT NULL DEFAULT 0)"
                    )
                    await admin.execute(
                        f"CREATE FUNCTION {table}_v() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN NEW.version := OLD.version + 1; RETURN NEW; END $$;"
                        f"CREATE TRIGGER {table}_v BEFORE UPDATE ON {table} "
                        f"FOR EACH ROW EXECUTE FUNCTION {table}_v()"
                    )
                    options: dict[str, Any] = {"marker_table": marks}
                    if mode == "upsert":
                        options["conflict"] = ["id"]
                    flush = ss.asyncpg_flush(pool, table, ["id", "label"], **options)
                    async with ss.BatchWriter(flush, batch_size=50) as writer:
                        await writer.add_many((i, "x") for i in range(50))
                        await flushed(writer, 1)  # the marker table is set up, no drop yet
                        proxy.armed = 1
                        await writer.add_many((i, "y") for i in range(50, 100))
                    count = await admin.fetchval(f"SELECT count(*) FROM {table}")
                    versions = await admin.fetchval(f"SELECT sum(version) FROM {table}")
                    return count, versions, writer.statistics(), proxy.dropped
                finally:
                    await pool.close()
                    await admin.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
                    await admin.execute(f"DROP FUNCTION IF EXISTS {table}_v()")
                    await admin.close()

        count, versions, stats, dropped = arun(main())
        assert (100, 0, 1) == (count, versions, dropped)
        assert (100, 2, 0) == (stats.rows_written, stats.flushes, stats.retries)

    def test_unknown_outcome_is_settled_by_the_retry(self, postgres_url: str, arun: Run) -> None:
        """The reply is lost and the check cannot connect either: the flush raises
        CommitOutcomeUnknown, the writer retries with the same batch id, and the retry finds
        the marker instead of writing the rows again."""
        asyncpg = pytest.importorskip("asyncpg")
        table, marks, _ = names()
        seen: list[BaseException] = []

        async def main() -> tuple[int, ss.WriterStatistics]:
            async with CommitProxy() as proxy:
                proxy.refuse_after = 2  # both connection attempts of the check fail
                pool = await asyncpg.create_pool(proxy.url(), ssl=False, min_size=0, max_size=1)
                admin = await asyncpg.connect(postgres_url)
                try:
                    await admin.execute(f"CREATE TABLE {table} (id int, label text)")
                    inner = ss.asyncpg_flush(pool, table, ["id", "label"], marker_table=marks)

                    async def flush(rows: list[Any], batch_id: str | None = None) -> None:
                        try:
                            await inner(rows, batch_id=batch_id)
                        except Exception as exc:
                            seen.append(exc)
                            raise

                    proxy.armed = 1
                    policy = ss.Retry(attempts=5, on=ss.is_connection_error, initial_s=0.01)
                    async with ss.BatchWriter(flush, batch_size=40, retry=policy) as writer:
                        await writer.add_many((i, "x") for i in range(40))
                    return await admin.fetchval(
                        f"SELECT count(*) FROM {table}"
                    ), writer.statistics()
                finally:
                    await pool.close()
                    await admin.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
                    await admin.close()

        count, stats = arun(main())
        assert (40, 40, 1) == (count, stats.rows_written, stats.retries)
        assert [CommitOutcomeUnknown] == [type(e) for e in seen]

    def test_a_batch_in_doubt_is_written_once_later(self, postgres_url: str, arun: Run) -> None:
        """The reply is lost and the database stays unreachable until the writer gives up:
        the batch is in unwritten and in_doubt; writing it later with its batch id finds it
        committed and adds nothing."""
        asyncpg = pytest.importorskip("asyncpg")
        table, marks, _ = names()

        async def main() -> tuple[int, int, int, int]:
            async with CommitProxy() as proxy:
                proxy.refuse_after = 10**6  # after the drop, no connection gets through
                pool = await asyncpg.create_pool(proxy.url(), ssl=False, min_size=0, max_size=1)
                admin = await asyncpg.connect(postgres_url)
                try:
                    await admin.execute(f"CREATE TABLE {table} (id int, label text)")
                    flush = ss.asyncpg_flush(pool, table, ["id", "label"], marker_table=marks)
                    policy = ss.Retry(attempts=2, on=ss.is_connection_error, initial_s=0.01)
                    writer: ss.BatchWriter[Any] = ss.BatchWriter(flush, batch_size=40, retry=policy)
                    proxy.armed = 1
                    with pytest.raises(ss.FlushFailed) as info:
                        async with writer:
                            await writer.add_many((i, "x") for i in range(40))
                    after_failure = await admin.fetchval(f"SELECT count(*) FROM {table}")
                    proxy.refuse_after = proxy._refuse = 0  # the database is back
                    for batch_id, rows in writer.in_doubt.items():
                        await flush(rows, batch_id=batch_id)
                    count = await admin.fetchval(f"SELECT count(*) FROM {table}")
                    doubtful = sum(len(rows) for rows in writer.in_doubt.values())
                    return len(info.value.rows), doubtful, after_failure, count
                finally:
                    await pool.close()
                    await admin.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
                    await admin.close()

        assert (40, 40, 40, 40) == arun(main())

    def test_without_markers_a_lost_reply_duplicates(self, postgres_url: str, arun: Run) -> None:
        """marker_table=None is at-least-once, as documented: the same lost reply makes the
        writer write the batch again (the reason the markers exist)."""
        asyncpg = pytest.importorskip("asyncpg")
        table, _, _ = names()

        async def main() -> int:
            async with CommitProxy() as proxy:
                pool = await asyncpg.create_pool(proxy.url(), ssl=False, min_size=1, max_size=1)
                admin = await asyncpg.connect(postgres_url)
                try:
                    await admin.execute(f"CREATE TABLE {table} (id int, label text)")
                    flush = ss.asyncpg_flush(pool, table, ["id", "label"], marker_table=None)
                    proxy.armed = 1
                    async with ss.BatchWriter(flush, batch_size=30) as writer:
                        await writer.add_many((i, "x") for i in range(30))
                    return int(await admin.fetchval(f"SELECT count(*) FROM {table}"))
                finally:
                    await pool.close()
                    await admin.execute(f"DROP TABLE IF EXISTS {table}")
                    await admin.close()

        assert 60 == arun(main())

    def test_lost_commit_reply_sqlalchemy_async(self, postgres_url: str, arun: Run) -> None:
        """The lost reply through an AsyncSession (asyncpg dialect): written once, no retry."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("greenlet")
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        table, marks, _ = names()
        meta = sa.MetaData()
        rows_table = sa.Table(table, meta, sa.Column("id", sa.Integer), sa.Column("s", sa.String))

        async def main() -> tuple[int, ss.WriterStatistics, int]:
            async with CommitProxy() as proxy:
                engine = create_async_engine(
                    proxy.url("postgresql+asyncpg"), connect_args={"ssl": False}
                )
                try:
                    async with engine.begin() as conn:
                        await conn.run_sync(meta.create_all)
                    flush = ss.sqlalchemy_flush(
                        async_sessionmaker(engine), rows_table, marker_table=marks
                    )
                    async with ss.BatchWriter(flush, batch_size=30) as writer:
                        await writer.add_many({"id": i, "s": "x"} for i in range(30))
                        await flushed(writer, 1)  # the marker table is set up, no drop yet
                        proxy.armed = 1
                        await writer.add_many({"id": i, "s": "y"} for i in range(30, 60))
                    return (
                        (await counts(postgres_url, table))[0],
                        writer.statistics(),
                        proxy.dropped,
                    )
                finally:
                    await engine.dispose()
                    await drop(postgres_url, table, marks)

        count, stats, dropped = arun(main())
        assert (60, 60, 2, 0, 1) == (
            count,
            stats.rows_written,
            stats.flushes,
            stats.retries,
            dropped,
        )

    def test_lost_commit_reply_sqlalchemy_sync(self, postgres_url: str, arun: Run) -> None:
        """The lost reply through a sync Session (psycopg2), the flush run by BatchWriter in a
        worker thread: written once, no retry."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("psycopg2")
        from sqlalchemy.orm import sessionmaker

        table, marks, _ = names()
        meta = sa.MetaData()
        rows_table = sa.Table(table, meta, sa.Column("id", sa.Integer), sa.Column("s", sa.String))

        async def main() -> tuple[int, ss.WriterStatistics, int]:
            async with CommitProxy() as proxy:
                engine = sa.create_engine(
                    proxy.url("postgresql+psycopg2"), connect_args={"sslmode": "disable"}
                )
                try:
                    await asyncio.to_thread(meta.create_all, engine)
                    flush = ss.sqlalchemy_flush(
                        sessionmaker(engine), rows_table, marker_table=marks
                    )
                    async with ss.BatchWriter(flush, batch_size=30) as writer:
                        await writer.add_many({"id": i, "s": "x"} for i in range(30))
                        await flushed(writer, 1)  # the marker table is set up, no drop yet
                        proxy.armed = 1
                        await writer.add_many({"id": i, "s": "y"} for i in range(30, 60))
                    return (
                        (await counts(postgres_url, table))[0],
                        writer.statistics(),
                        proxy.dropped,
                    )
                finally:
                    await asyncio.to_thread(engine.dispose)
                    await drop(postgres_url, table, marks)

        count, stats, dropped = arun(main())
        assert (60, 60, 2, 0, 1) == (
            count,
            stats.rows_written,
            stats.flushes,
            stats.retries,
            dropped,
        )
