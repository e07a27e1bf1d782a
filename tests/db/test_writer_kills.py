"""Exactly-once batch writes on a real PostgreSQL whose connections die around COMMIT.

Three ways to break a connection, all real: ``pg_terminate_backend`` from a second connection
at random (seeded) moments while the writer's backend runs a statement, a backend killed while
the pool resets the connection after COMMIT,
and a TCP proxy that forwards a COMMIT to the server and drops the server's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.core.transient import CommitOutcomeUnknown

Run = Callable[[Coroutine[Any, Any, Any]], Any]

ROWS = 10_000
KILLS = 24  # at least this many backends terminated per run
KILL_ACTIVE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE application_name = $1 AND state = 'active'"
)
PATIENT = ss.Retry(
    attempts=200, on=ss.is_connection_error, initial_s=0.002, max_backoff_s=0.03, deadline_s=60
)


def names() -> tuple[str, str, str]:
    """A table, a marker table and an application_name, all unique to one test."""
    tag = uuid.uuid4().hex[:10]
    return f"kills_{tag}", f"marks_{tag}", f"slipstream_kills_{tag}"


class CommitProxy:
    """A TCP proxy to PostgreSQL. When armed, it forwards the next COMMIT to the server, waits
    for the server's reply, drops it and closes the client's side: the commit took effect and
    its acknowledgement was lost. ``refuse_after`` new connections are refused after a drop."""

    def __init__(self) -> None:
        self.armed = 0
        self.dropped = 0
        self.refuse_after = 0
        self._refuse = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CommitProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def url(self, scheme: str = "postgresql") -> str:
        return f"{scheme}://postgres@127.0.0.1:{self.port}/test"

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._refuse:
            self._refuse -= 1
            client_w.close()
            return
        server_r, server_w = await asyncio.open_connection("127.0.0.1", 5432)
        commit_sent = asyncio.Event()

        async def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := await client_r.read(65536):
                    at = data.find(b"COMMIT")
                    if self.armed and at >= 5 and data[at - 5 : at - 4] == b"Q":
                        self.armed -= 1
                        commit_sent.set()
                    server_w.write(data)
                    await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            with contextlib.suppress(OSError):
                while data := await server_r.read(65536):
                    if commit_sent.is_set():  # the server has committed: drop its reply
                        self.dropped += 1
                        self._refuse = self.refuse_after
                        break
                    client_w.write(data)
                    await client_w.drain()
            client_w.close()
            server_w.close()

        await asyncio.gather(upstream(), downstream())


@contextlib.asynccontextmanager
async def killer(
    postgres_url: str, application: str, seed: int, limit: int = 2 * KILLS
) -> AsyncIterator[list[int]]:
    """Until the block ends, terminate the backends named ``application`` again and again: a
    random 1-30 ms (seeded) after the last kill, as soon as one is running a statement (COPY,
    COMMIT, the pool's reset after COMMIT), ``limit`` backends at most. Yields the number
    terminated (a one-item list)."""
    import asyncpg

    admin = await asyncpg.connect(postgres_url)
    rnd = random.Random(seed)
    killed = [0]
    stop = asyncio.Event()

    async def kill() -> None:
        while not stop.is_set() and killed[0] < limit:
            await asyncio.sleep(rnd.uniform(0.001, 0.03))
            while not stop.is_set():
                terminated = await admin.fetchval(KILL_ACTIVE, application)
                if terminated:
                    killed[0] += terminated
                    break

    task = asyncio.ensure_future(kill())
    try:
        yield killed
    finally:
        stop.set()
        await task
        await admin.close()


async def produce(writer: ss.BatchWriter[Any], rows: Iterator[Any], killed: list[int]) -> None:
    """Add rows in small chunks, pausing so the kills land all along the run; keep writing
    (slowly) until enough backends were terminated."""
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == 40:
            await writer.add_many(chunk)
            chunk = []
            await asyncio.sleep(0.008 if killed[0] < KILLS else 0)
    await writer.add_many(chunk)


async def flushed(writer: ss.BatchWriter[Any], flushes: int) -> None:
    """Wait (5 s at most) until the writer has made ``flushes`` flushes."""
    for _ in range(1000):
        if writer.statistics().flushes >= flushes:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"no flush {flushes} in 5 s: {writer!r}")


async def counts(postgres_url: str, table: str) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        row = await conn.fetchrow(f"SELECT count(*), count(DISTINCT id) FROM {table}")
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def drop(postgres_url: str, *tables: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        for table in tables:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        await conn.close()


class TestKillsAtRandomMoments:
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


class TestAfterCommit:
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
