"""Exactly-once batch writes on a real PostgreSQL whose writer backends are terminated
(``pg_terminate_backend`` from a second connection) at random, seeded moments while they run a
statement: COPY, COMMIT, the pool's reset after COMMIT. Real time: the kills must land on
statements really running."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import slipstream as ss

from .faults import KILL_ACTIVE, KILLS, PATIENT, ROWS, counts, drop, killer, names, produce

Run = Callable[[Coroutine[Any, Any, Any]], Any]
pytestmark = pytest.mark.realtime


class TestKillsAtRandomMoments:
    """Backends terminated dozens of times while batches are written: each row lands once."""

    @pytest.mark.parametrize(
        ("mode", "seed"), [("copy", 1), ("executemany", 2), ("upsert", 3)], ids=str
    )
    def test_asyncpg_flush(self, mode: str, seed: int, postgres_url: str, arun: Run) -> None:
        """10,000 rows through asyncpg_flush (COPY, plain executemany, upsert) while a second
        connection terminates the writer's backends dozens of times: every row is in the
        table once, no batch was applied twice, and rows_written says so."""
        asyncpg = pytest.importorskip("asyncpg")
        table, marks, app = names()

        async def main() -> tuple[int, int, int, ss.WriterStatistics, list[Any], int]:
            admin = await asyncpg.connect(postgres_url)
            await admin.execute(
                f"CREATE TABLE {table} (id int, label text, writes int NOT NULL DEFAULT 0)"
            )
            if mode == "upsert":  # an upsert applied twice shows as writes > 0
                await admin.execute(
                    f"ALTER TABLE {table} ADD PRIMARY KEY (id);"
                    f"CREATE FUNCTION {table}_count() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN NEW.writes := OLD.writes + 1; RETURN NEW; END $$;"
                    f"CREATE TRIGGER {table}_count BEFORE UPDATE ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION {table}_count()"
                )
            await admin.close()
            pool = await asyncpg.create_pool(
                postgres_url, min_size=1, max_size=2, server_settings={"application_name": app}
            )
            options: dict[str, Any] = {"marker_table": marks}
            if mode == "executemany":
                options["copy"] = False
            if mode == "upsert":
                options["conflict"] = ["id"]
            flush = ss.asyncpg_flush(pool, table, ["id", "label"], **options)
            writer: ss.BatchWriter[Any] = ss.BatchWriter(flush, batch_size=200, retry=PATIENT)
            try:
                async with killer(postgres_url, app, seed) as killed, writer:
                    await produce(writer, ((i, f"r{i}") for i in range(ROWS)), killed)
                count, distinct = await counts(postgres_url, table)
                conn = await asyncpg.connect(postgres_url)
                rewrites = await conn.fetchval(f"SELECT coalesce(sum(writes), 0) FROM {table}")
                await conn.close()
                return count, distinct, rewrites, writer.statistics(), writer.failed, killed[0]
            finally:
                await pool.close()
                await drop(postgres_url, table, marks)
                conn = await asyncpg.connect(postgres_url)
                await conn.execute(f"DROP FUNCTION IF EXISTS {table}_count()")
                await conn.close()

        count, distinct, rewrites, stats, failed, killed = arun(main())
        assert (ROWS, ROWS, 0) == (count, distinct, rewrites)
        assert (ROWS, []) == (stats.rows_written, failed)
        assert killed >= KILLS

    def test_sqlalchemy_async_session(self, postgres_url: str, arun: Run) -> None:
        """The same through sqlalchemy_flush on an async_sessionmaker (asyncpg dialect)."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("greenlet")
        pytest.importorskip("asyncpg")
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        table, marks, app = names()
        meta = sa.MetaData()
        rows_table = sa.Table(table, meta, sa.Column("id", sa.Integer), sa.Column("s", sa.String))

        async def main() -> tuple[int, int, ss.WriterStatistics, list[Any], int]:
            engine = create_async_engine(
                postgres_url.replace("postgresql://", "postgresql+asyncpg://"),
                connect_args={"server_settings": {"application_name": app}},
            )
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(meta.create_all)
                flush = ss.sqlalchemy_flush(
                    async_sessionmaker(engine), rows_table, marker_table=marks
                )
                writer: ss.BatchWriter[Any] = ss.BatchWriter(flush, batch_size=250, retry=PATIENT)
                async with killer(postgres_url, app, 4) as killed, writer:
                    rows = ({"id": i, "s": str(i)} for i in range(ROWS))
                    await produce(writer, rows, killed)
                count, distinct = await counts(postgres_url, table)
                return count, distinct, writer.statistics(), writer.failed, killed[0]
            finally:
                await engine.dispose()
                await drop(postgres_url, table, marks)

        count, distinct, stats, failed, killed = arun(main())
        assert (ROWS, ROWS, ROWS, []) == (count, distinct, stats.rows_written, failed)
        assert killed >= KILLS

    def test_sqlalchemy_sync_session(self, postgres_url: str) -> None:
        """The same through sqlalchemy_flush on a sync sessionmaker (psycopg2) and a
        SyncBatchWriter, the kills coming from another thread."""
        sa = pytest.importorskip("sqlalchemy")
        psycopg2 = pytest.importorskip("psycopg2")
        from sqlalchemy.orm import sessionmaker

        table, marks, app = names()
        meta = sa.MetaData()
        rows_table = sa.Table(table, meta, sa.Column("id", sa.Integer), sa.Column("s", sa.String))
        engine = sa.create_engine(
            postgres_url.replace("postgresql://", "postgresql+psycopg2://"),
            connect_args={"application_name": app},
        )
        meta.create_all(engine)
        stop, killed = threading.Event(), [0]

        def kill() -> None:
            rnd = random.Random(5)
            admin = psycopg2.connect(postgres_url)
            admin.autocommit = True
            with admin.cursor() as cur:
                while not stop.is_set() and killed[0] < 2 * KILLS:
                    time.sleep(rnd.uniform(0.001, 0.03))
                    while not stop.is_set():
                        cur.execute(KILL_ACTIVE.replace("$1", "%s"), (app,))
                        terminated = cur.fetchone()[0]
                        if terminated:
                            killed[0] += terminated
                            break
            admin.close()

        thread = threading.Thread(target=kill)
        thread.start()
        try:
            flush = ss.sqlalchemy_flush(sessionmaker(engine), rows_table, marker_table=marks)
            with ss.SyncBatchWriter(flush, batch_size=250, retry=PATIENT) as writer:
                for i in range(ROWS):
                    writer.add({"id": i, "s": str(i)})
                    if i % 40 == 0 and killed[0] < KILLS:
                        time.sleep(0.006)
            stop.set()
            thread.join()
            engine.dispose()  # its pooled connections were terminated: check on a new one
            check = psycopg2.connect(postgres_url)
            with check.cursor() as cur:
                cur.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}")
                count, distinct = cur.fetchone()
            check.close()
        finally:
            stop.set()
            thread.join()
            engine.dispose()
            cleanup = psycopg2.connect(postgres_url)
            with cleanup, cleanup.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}, {marks}")
            cleanup.close()
        assert (ROWS, ROWS, ROWS) == (count, distinct, writer.statistics().rows_written)
        assert ([], True) == (writer.failed, killed[0] >= KILLS)
