"""A flush's lifecycle: the built-in flushes set up once (a pool made from a factory, the DDL,
the marker table) however many first calls race, and close what they made; BatchWriter and
SyncBatchWriter run a flush's setup before any row and its close once at the end, on failure
and cancellation too; bad lifecycle arguments are named."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

from .tables import Table

Run = Callable[[Coroutine[Any, Any, Any]], Any]
DDL = "CREATE TABLE IF NOT EXISTS {t} (id integer PRIMARY KEY, label text)"


class Recorder:
    """A sink with a lifecycle that records what happened to it, in order."""

    def __init__(self, *, fail_setup: bool = False, gate: asyncio.Event | None = None) -> None:
        self.events: list[str] = []
        self.fail_setup = fail_setup
        self.gate = gate
        self.entered = asyncio.Event()

    async def setup(self) -> None:
        self.events.append("setup")
        if self.fail_setup:
            raise ValueError("syntax error in the DDL")

    async def __call__(self, rows: list[Any]) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        self.events.append(f"write {len(rows)}")

    async def aclose(self) -> None:
        self.events.append("close")


def sqlite_rows(path: Path, table: str) -> dict[int, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute(f"SELECT id, label FROM {table}"))
    finally:
        conn.close()


class TestBatchWriterLifecycle:
    """BatchWriter runs a flush's setup when its block opens and its aclose once at the end."""

    def test_setup_comes_before_the_first_write_and_close_after_the_last(self, vrun: Run) -> None:
        """Setup runs once as the block opens, before any row is written; close runs once,
        after the final flush."""
        sink = Recorder()

        async def main() -> None:
            async with ss.BatchWriter(sink, batch_size=2, max_pending=10) as writer:
                assert ["setup"] == sink.events
                await writer.add_many(range(5))

        vrun(main())
        assert ["setup", "write 2", "write 2", "write 1", "close"] == sink.events

    def test_a_failed_setup_raises_at_the_block_writes_nothing_and_closes(self, vrun: Run) -> None:
        """A setup that fails raises its own error where the block opens, nothing is written,
        and close still runs once (setup may have made something to release)."""
        sink = Recorder(fail_setup=True)
        body_ran = False

        async def main() -> None:
            nonlocal body_ran
            async with ss.BatchWriter(sink):
                body_ran = True

        with pytest.raises(ValueError, match="syntax error in the DDL"):
            vrun(main())
        assert (["setup", "close"], False) == (sink.events, body_ran)

    def test_close_runs_once_when_the_writer_gives_up(self, vrun: Run) -> None:
        """A database that stays down: FlushFailed carries the rows, and the flush is closed
        once."""
        table = Table(down=100)
        closes: list[str] = []

        class Down:
            async def __call__(self, rows: list[Any]) -> None:
                await table.flush(rows)

            async def aclose(self) -> None:
                closes.append("close")

        async def main() -> None:
            retry = ss.Retry(attempts=2, on=ss.is_connection_error, initial_s=0.01)
            async with ss.BatchWriter(Down(), retry=retry) as writer:
                await writer.add({"id": 1})

        with pytest.raises(ss.FlushFailed) as raised:
            vrun(main())
        assert ([{"id": 1}], ["close"]) == (raised.value.rows, closes)

    def test_close_runs_once_when_the_block_is_cancelled(self, vrun: Run) -> None:
        """Cancelled while a flush is in flight: the pending rows are written (shielded) and
        the flush is closed once, after them."""
        gate = asyncio.Event()
        sink = Recorder(gate=gate)

        async def body() -> None:
            async with ss.BatchWriter(sink, batch_size=1, max_pending=10) as writer:
                await writer.add(1)
                await asyncio.Event().wait()  # never: the task is cancelled here

        async def main() -> None:
            task = asyncio.create_task(body())
            await sink.entered.wait()
            task.cancel()
            await asyncio.sleep(0)
            gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.01)  # the shielded close finishes

        vrun(main())
        assert ["setup", "write 1", "close"] == sink.events

    def test_connection_errors_of_setup_are_retried(self, vrun: Run) -> None:
        """A setup refused twice (the database restarting) is retried under the writer's
        policy and the block opens; a setup that keeps failing raises after the attempts."""
        attempts: list[int] = []

        class Restarting(Recorder):
            async def setup(self) -> None:
                attempts.append(1)
                if len(attempts) <= 2:
                    raise ConnectionRefusedError("the database is starting up")

        sink = Restarting()

        async def main(retry: ss.Retry) -> None:
            async with ss.BatchWriter(sink, retry=retry) as writer:
                await writer.add(1)

        vrun(main(ss.Retry(attempts=5, on=ss.is_connection_error, initial_s=0.1)))
        assert (3, ["write 1", "close"]) == (len(attempts), sink.events)
        attempts.clear()
        with pytest.raises(ConnectionRefusedError):
            vrun(main(ss.Retry(attempts=2, on=ss.is_connection_error, initial_s=0.1)))
        assert 2 == len(attempts)

    def test_sync_hooks_run_in_a_thread(self, arun: Run) -> None:
        """A sync setup and aclose (blocking work: a connection) run off the loop."""
        threads: list[str] = []

        class Blocking:
            def setup(self) -> None:
                threads.append(threading.current_thread().name)

            async def __call__(self, rows: list[Any]) -> None:
                return None

            def aclose(self) -> None:
                threads.append(threading.current_thread().name)

        async def main() -> None:
            async with ss.BatchWriter(Blocking()) as writer:
                await writer.add(1)

        arun(main())
        assert 2 == len(threads)
        assert threading.main_thread().name not in threads


class TestSyncBatchWriterLifecycle:
    """SyncBatchWriter runs a sync setup on entry and a sync close on exit."""

    def test_sync_setup_and_close(self, tmp_path: Path) -> None:
        """sqlite_flush's setup creates the table on entry; its close runs on exit."""
        db = tmp_path / "r.sqlite"
        flush = ss.sqlite_flush(
            db, "labels", ["id", "label"], setup=lambda conn: conn.execute(DDL.format(t="labels"))
        )
        with ss.SyncBatchWriter(flush, batch_size=10) as writer:
            assert {} == sqlite_rows(db, "labels")  # the table is there, empty
            writer.add_many((i, f"L{i}") for i in range(25))
        assert {i: f"L{i}" for i in range(25)} == sqlite_rows(db, "labels")
        assert "not set up" in repr(flush)  # closed: a later use sets up again

    def test_close_by_hand_then_leaving_the_block_closes_the_flush_once(self) -> None:
        """``close()`` inside the block and the block's exit together close the flush once."""
        events: list[str] = []

        class Flush:
            def setup(self) -> None:
                events.append("setup")

            def close(self) -> None:
                events.append("close")

            def __call__(self, rows: list[Any]) -> None:
                events.append(f"write {len(rows)}")

        with ss.SyncBatchWriter(Flush(), batch_size=10) as writer:
            writer.add_many(range(3))
            writer.close()
        assert events == ["setup", "write 3", "close"]

    def test_an_async_setup_is_refused(self) -> None:
        """A flush whose setup is async cannot run in a sync writer: TypeError naming it."""

        class AsyncSetup:
            async def setup(self) -> None:
                return None

            def __call__(self, rows: list[Any]) -> None:
                return None

        with pytest.raises(TypeError, match=r"'flush\.setup' must be sync"):
            ss.SyncBatchWriter(AsyncSetup()).__enter__()


class TestBuiltInFlushSetup:
    """The built-in flushes set up once until closed, whoever calls first."""

    def test_concurrent_first_calls_share_one_setup(self, tmp_path: Path) -> None:
        """Two threads call a fresh sqlite_flush at once: one runs the setup (held on an
        event until both are in), the other waits for it; both batches are written."""
        db = tmp_path / "r.sqlite"
        entered, release = threading.Event(), threading.Event()
        setups: list[int] = []

        def setup(conn: sqlite3.Connection) -> None:
            setups.append(1)
            entered.set()
            assert release.wait(5)
            conn.execute(DDL.format(t="labels"))

        flush = ss.sqlite_flush(db, "labels", ["id", "label"], setup=setup)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(flush, [(1, "a")])
            assert entered.wait(5)
            second = pool.submit(flush, [(2, "b")])
            release.set()
            first.result(5), second.result(5)
        assert ([1], {1: "a", 2: "b"}) == (setups, sqlite_rows(db, "labels"))

    def test_a_failed_setup_is_tried_again_by_the_next_call(self, tmp_path: Path) -> None:
        """A setup that failed is not remembered as done: the call raises its error, and the
        next call runs the setup again (once) before writing."""
        db = tmp_path / "r.sqlite"
        calls: list[int] = []

        def setup(conn: sqlite3.Connection) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise sqlite3.OperationalError("disk I/O error")
            conn.execute(DDL.format(t="labels"))

        flush = ss.sqlite_flush(db, "labels", ["id", "label"], setup=setup)
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
            flush([(1, "a")])
        flush([(1, "a")])
        flush([(2, "b")])
        assert (2, {1: "a", 2: "b"}) == (len(calls), sqlite_rows(db, "labels"))

    def test_sqlalchemy_setup_creates_the_tables(self, tmp_path: Path) -> None:
        """sqlalchemy_flush's setup gets the session's connection (here create_all), committed
        before the first write."""
        sa = pytest.importorskip("sqlalchemy")
        from sqlalchemy.orm import sessionmaker

        engine = sa.create_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
        meta = sa.MetaData()
        labels = sa.Table(
            "labels",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("label", sa.String),
        )
        flush = ss.sqlalchemy_flush(sessionmaker(engine), labels, setup=meta.create_all)
        with ss.SyncBatchWriter(flush) as writer:
            writer.add_many({"id": i, "label": str(i)} for i in range(3))
        assert {0: "0", 1: "1", 2: "2"} == sqlite_rows(tmp_path / "r.sqlite", "labels")
        engine.dispose()


class TestAsyncpgLifecycle:
    """asyncpg_flush on real PostgreSQL: the pool from a factory, the DDL by setup."""

    def test_concurrent_first_flushes_make_one_pool_and_run_the_ddl_once(
        self, postgres_url: str, arun: Run
    ) -> None:
        """Two flushes start together on a fresh flush: the factory runs once (held on an
        event until both wait for it), the DDL once, and both batches are written."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"life_{uuid.uuid4().hex[:8]}"
        made: list[Any] = []
        ddl_runs: list[int] = []

        async def main() -> dict[int, str]:
            entered, gate = asyncio.Event(), asyncio.Event()

            async def factory() -> Any:
                entered.set()
                await gate.wait()
                made.append(await asyncpg.create_pool(postgres_url, min_size=1, max_size=2))
                return made[-1]

            async def setup(conn: Any) -> None:
                ddl_runs.append(1)
                await conn.execute(DDL.format(t=table))

            flush = ss.asyncpg_flush(
                factory, table, ["id", "label"], setup=setup, marker_table=f"{table}_m"
            )
            first = asyncio.create_task(flush([(1, "a")]))
            second = asyncio.create_task(flush([(2, "b")]))
            await entered.wait()  # both tasks already wait for the one setup
            gate.set()
            await asyncio.gather(first, second)
            await flush.aclose()
            conn = await asyncpg.connect(postgres_url)
            try:
                got = dict(await conn.fetch(f"SELECT id, label FROM {table}"))
                await conn.execute(f"DROP TABLE {table}, {table}_m")
            finally:
                await conn.close()
            return got

        assert {1: "a", 2: "b"} == arun(main())
        assert (1, [1]) == (len(made), ddl_runs)
        assert made[0].is_closing()  # the pool it made is closed by aclose

    def test_each_writer_block_sets_up_and_closes_its_own_pool(
        self, postgres_url: str, arun: Run
    ) -> None:
        """Two BatchWriter blocks over one flush: a pool each, made by setup and closed at
        the block's end; a given pool (close_pool unset) stays open."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"life_{uuid.uuid4().hex[:8]}"
        made: list[Any] = []

        async def main() -> tuple[int, bool]:
            async def factory() -> Any:
                made.append(await asyncpg.create_pool(postgres_url, min_size=1, max_size=2))
                return made[-1]

            flush = ss.asyncpg_flush(
                factory,
                table,
                ["id", "label"],
                conflict=["id"],
                setup=lambda conn: conn.execute(DDL.format(t=table)),
                marker_table=None,
            )
            for n in range(2):
                async with ss.BatchWriter(flush) as writer:
                    await writer.add((n, str(n)))
            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=1)
            try:
                given = ss.asyncpg_flush(pool, table, ["id", "label"], marker_table=None)
                async with ss.BatchWriter(given) as writer:
                    await writer.add((9, "9"))
                count = await pool.fetchval(f"SELECT count(*) FROM {table}")
                await pool.execute(f"DROP TABLE {table}")
                return count, pool.is_closing()
            finally:
                await pool.close()

        assert (3, False) == arun(main())
        assert 2 == len(made)
        assert all(p.is_closing() for p in made)

    def test_async_sqlalchemy_setup_creates_the_table_on_postgresql(
        self, postgres_url: str, arun: Run
    ) -> None:
        """An async sqlalchemy_flush's setup runs create_all on its AsyncConnection."""
        sa = pytest.importorskip("sqlalchemy")
        pytest.importorskip("greenlet")
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        name = f"life_{uuid.uuid4().hex[:8]}"
        meta = sa.MetaData()
        table = sa.Table(
            name, meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("s", sa.String)
        )

        async def main() -> int:
            engine = create_async_engine(
                postgres_url.replace("postgresql://", "postgresql+asyncpg://")
            )
            try:
                flush = ss.sqlalchemy_flush(
                    async_sessionmaker(engine),
                    table,
                    marker_table=f"{name}_m",
                    setup=lambda conn: conn.run_sync(meta.create_all),
                )
                async with ss.BatchWriter(flush) as writer:
                    await writer.add_many({"id": i, "s": str(i)} for i in range(4))
                async with engine.begin() as conn:
                    count = (await conn.execute(sa.text(f"SELECT count(*) FROM {name}"))).scalar()
                    await conn.execute(sa.text(f"DROP TABLE {name}, {name}_m"))
                return int(count or 0)
            finally:
                await engine.dispose()

        assert 4 == arun(main())


class TestArguments:
    """Bad lifecycle arguments raise naming the parameter."""

    def test_bad_lifecycle_arguments_are_named(self, tmp_path: Path) -> None:
        """pool, setup, close_pool, a sqlite setup that is async, and a flush whose setup is
        not callable are refused with their names."""

        async def async_setup(conn: Any) -> None:
            return None

        with pytest.raises(TypeError, match="'pool'"):
            ss.asyncpg_flush(42, "t", ["a"])
        with pytest.raises(TypeError, match="'setup'"):
            ss.asyncpg_flush(lambda: None, "t", ["a"], setup=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'close_pool'"):
            ss.asyncpg_flush(lambda: None, "t", ["a"], close_pool="yes")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'setup' must be a sync function"):
            ss.sqlite_flush(tmp_path / "x.sqlite", "t", ["a"], setup=async_setup)

        class Broken:
            setup = 3

            async def __call__(self, rows: list[Any]) -> None:
                return None

        with pytest.raises(TypeError, match=r"'flush\.setup'"):
            ss.BatchWriter(Broken())

    def test_a_factory_that_makes_no_pool_is_named_at_setup(self, vrun: Run) -> None:
        """A pool factory returning something else fails setup with a TypeError naming
        'pool'."""
        flush = ss.asyncpg_flush(lambda: "not a pool", "t", ["a"])
        with pytest.raises(TypeError, match="the 'pool' factory must return"):
            vrun(flush.setup())
