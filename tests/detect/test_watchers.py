"""The watchers on real drivers: SQLite files, PostgreSQL through asyncpg and SQLAlchemy."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import slipstream as ss
from slipstream._impl.core.rules import rule

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
HERE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """The line of this file that ends with the comment ``# marker``."""
    (line,) = [i for i, text in enumerate(HERE, 1) if text.endswith(f"# {marker}")]
    return line


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.execute("create table users (id integer primary key, name text)")
    conn.executemany("insert into users values (?, ?)", [(i, f"u{i}") for i in range(10)])
    conn.commit()
    return conn


class TestSqlite:
    def test_a_query_per_item_is_slp201_at_the_loops_line(self, db: sqlite3.Connection) -> None:
        """One SELECT per id in a loop is reported as SLP201 at the line inside the loop."""
        with ss.watch(db, min_repeats=2) as w:
            for i in range(10):
                db.execute("select name from users where id = ?", (i,)).fetchone()  # n+1
        assert w.report is not None
        (f,) = w.report.findings
        assert (f.code, f.path, f.line, f.count) == ("SLP201", __file__, line_of("n+1"), 10)
        assert f.fingerprint == "select name from users where id = ?"
        assert f.fix == rule("SLP201").fix
        assert w.report.queries == 10
        assert w.report.untimed == 10

    def test_the_batched_query_is_not_a_finding(self, db: sqlite3.Connection) -> None:
        """One IN query for all the ids is counted once and reported as nothing."""
        with ss.watch(db, min_repeats=2) as w:
            db.execute(f"select name from users where id in ({', '.join('?' * 10)})", range(10))
        assert w.report is not None
        assert w.report.findings == ()
        assert w.report.by_fingerprint == {"select name from users where id in (?)": 1}

    def test_a_commit_per_row_is_slp203(self, db: sqlite3.Connection) -> None:
        """A commit per inserted row is SLP203 at the commit's line, and the insert is SLP202."""
        with ss.watch(db, min_repeats=3) as w:
            for i in range(100, 105):
                db.execute("insert into users values (?, 'x')", (i,))  # write
                db.commit()  # commit
        assert w.report is not None
        got = {(f.code, f.line, f.count) for f in w.report.findings}
        assert got == {("SLP202", line_of("write"), 5), ("SLP203", line_of("commit"), 5)}

    def test_fewer_repeats_than_the_gate_are_no_finding(self, db: sqlite3.Connection) -> None:
        """Four repeats under the default gate of five are counted but not reported."""
        with ss.watch(db) as w:
            for i in range(4):
                db.execute("select name from users where id = ?", (i,))
        assert w.report is not None
        assert w.report.findings == ()
        assert w.report.queries == 4

    def test_nested_scopes_both_count(self, db: sqlite3.Connection) -> None:
        """A statement counts in the inner scope and in the scope around it; outside, nowhere."""
        with ss.watch(db) as outer:
            db.execute("select 1")
            with ss.watch(db) as inner:
                db.execute("select 2")
        db.execute("select 3")
        assert inner.report is not None
        assert outer.report is not None
        assert (inner.report.queries, outer.report.queries) == (1, 2)

    def test_record_to_merges_into_the_runtime_file(
        self, db: sqlite3.Connection, tmp_path: Path
    ) -> None:
        """Two scopes recording to one file add up their counts for the same call site."""
        out = tmp_path / "runtime.json"
        for _ in range(2):
            with ss.watch(db, min_repeats=2, record_to=str(out)):
                for i in range(3):
                    db.execute("select name from users where id = ?", (i,))  # recorded
        data = json.loads(out.read_text())
        assert data["version"] == 1
        (row,) = data["findings"]
        assert (row["code"], row["line"], row["count"]) == ("SLP201", line_of("recorded"), 6)

    def test_wrong_arguments_name_the_parameter(self) -> None:
        """A target that is no connection, or a gate out of range, raises naming it."""
        with pytest.raises(TypeError, match="watch"):
            ss.watch(object())
        with pytest.raises(ValueError, match="min_repeats"):
            ss.watch(min_repeats=1)
        with pytest.raises(ValueError, match="min_total_s"):
            ss.watch(min_total_s=-1.0)


class TestSqliteThreads:
    def test_a_connection_other_threads_may_use_is_refused(self) -> None:
        """``check_same_thread=False``: a trace callback on a connection two threads share
        deadlocks CPython's sqlite3 (measured: 4 threads x 20,000 SELECTs hang; without the
        callback they finish in 2 s), so ``instrument`` refuses, saying why and what to do."""
        shared = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            with pytest.raises(ValueError, match=r"check_same_thread=False.*deadlocks"):
                ss.instrument(shared)
        finally:
            shared.close()

    def test_a_one_thread_connection_is_watched(self) -> None:
        """The default connection (one thread) is hooked as before."""
        conn = sqlite3.connect(":memory:")
        try:
            with ss.watch(conn, min_repeats=2) as w:
                conn.execute("select 1")
            assert w.report is not None
            assert w.report.queries == 1
        finally:
            conn.close()


class TestSqlAlchemy:
    def test_sync_engine_times_statements_and_finds_the_loop(self, tmp_path: Path) -> None:
        """A sync engine's per-id SELECT is SLP201 at the loop's line, with durations."""
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'sa.db'}")
        with engine.begin() as conn:
            conn.execute(sa.text("create table t (id integer primary key)"))
        with ss.watch(engine, min_repeats=2, min_total_s=0.0) as w, engine.connect() as conn:
            for i in range(6):
                conn.execute(sa.text("select id from t where id = :i"), {"i": i})  # sa-sync
        engine.dispose()
        assert w.report is not None
        (f,) = w.report.findings
        assert (f.code, f.line, f.count) == ("SLP201", line_of("sa-sync"), 6)
        assert f.total_s > 0
        assert w.report.db_s >= f.total_s

    def test_core_commits_are_counted_when_asked(self, tmp_path: Path) -> None:
        """``core_commits=True``: a Core ``conn.commit()`` per row is SLP203 at its line."""
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
        with engine.begin() as conn:
            conn.execute(sa.text("create table t (id integer primary key)"))
        ss.instrument(engine, core_commits=True)
        with ss.watch(engine, min_repeats=3) as w, engine.connect() as conn:
            for i in range(3):
                conn.execute(sa.text("insert into t values (:i)"), {"i": i})
                conn.commit()  # sa-commit
        engine.dispose()
        assert w.report is not None
        assert ("SLP203", line_of("sa-commit"), 3) in {
            (f.code, f.line, f.count) for f in w.report.findings
        }

    def test_core_commits_are_not_counted_by_default(self, tmp_path: Path) -> None:
        """Without ``core_commits`` the engine has no connection event (the cheap path), so a
        Core commit is not seen; the statements still are."""
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
        with ss.watch(engine, min_repeats=2, min_total_s=0) as w, engine.connect() as conn:
            conn.execute(sa.text("create table t (id integer primary key)"))
            for i in range(3):
                conn.execute(sa.text("insert into t values (:i)"), {"i": i})
                conn.commit()
        engine.dispose()
        assert w.report is not None
        assert not engine._has_events  # type: ignore[attr-defined]
        assert {f.code for f in w.report.findings} == {"SLP202"}

    def test_orm_session_commit_per_row_is_slp203_once_each(self, tmp_path: Path) -> None:
        """An ORM ``session.commit()`` per row is SLP203 at the commit's line, counted once
        each even when the engine also counts Core commits."""
        from sqlalchemy.orm import Session

        for core in (False, True):
            engine = sa.create_engine(f"sqlite:///{tmp_path / f'o{core}.db'}")
            with engine.begin() as conn:
                conn.execute(sa.text("create table t (id integer primary key)"))
            ss.instrument(engine, core_commits=core)
            with ss.watch(engine, min_repeats=3) as w, Session(engine) as session:
                for i in range(4):
                    session.execute(sa.text("insert into t values (:i)"), {"i": i})
                    session.commit()  # orm-commit
            engine.dispose()
            assert w.report is not None
            assert ("SLP203", line_of("orm-commit"), 4) in {
                (f.code, f.line, f.count) for f in w.report.findings
            }, core

    def test_a_session_on_an_unwatched_engine_is_not_counted(self, tmp_path: Path) -> None:
        """The session hook is process-wide; commits of sessions bound to engines nobody
        instrumented stay out of the scope."""
        from sqlalchemy.orm import Session

        watched = sa.create_engine("sqlite://")
        ss.instrument(watched)
        other = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
        with ss.watch(min_repeats=2) as w, Session(other) as session:
            for _ in range(3):
                session.execute(sa.text("select 1"))
                session.commit()
        watched.dispose()
        other.dispose()
        assert w.report is not None
        assert w.report.queries == 0

    def test_every_execute_path_is_recorded_and_runs(self, tmp_path: Path) -> None:
        """A plain execute, an executemany and a statement without parameters are each
        recorded once, and their results are what the database has (the dialect's own
        execute ran)."""
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
        with ss.watch(engine, min_repeats=2) as w, engine.begin() as conn:
            conn.exec_driver_sql("create table t (id integer primary key)")  # no parameters
            conn.execute(sa.text("insert into t values (:i)"), [{"i": i} for i in range(5)])
            got = conn.execute(sa.text("select count(*) from t where id >= :i"), {"i": 0})
            assert got.scalar() == 5
        with engine.connect() as conn:  # outside the scope: SQLAlchemy's own path
            assert conn.execute(sa.text("select count(*) from t")).scalar() == 5
        engine.dispose()
        assert w.report is not None
        assert w.report.queries == 3
        assert w.report.untimed == 0

    def test_async_engine_on_postgres_finds_the_loop_line(
        self, postgres_url: str, arun: Run[Any]
    ) -> None:
        """Through an AsyncEngine on asyncpg, the call site is the user's awaiting line."""

        async def main() -> ss.WatchReport | None:
            engine = create_async_engine(postgres_url.replace("postgresql", "postgresql+asyncpg"))
            try:
                watching = ss.watch(engine, min_repeats=2, min_total_s=0.0)
                async with watching as w, engine.connect() as conn:
                    stmt = sa.text("select cast(:i as int)")
                    for i in range(5):
                        await conn.execute(stmt, {"i": i})  # sa-async
                    await conn.commit()
            finally:
                await engine.dispose()
            return w.report

        report = arun(main())
        assert report is not None
        (f,) = report.findings
        assert (f.code, f.path, f.line, f.count) == ("SLP201", __file__, line_of("sa-async"), 5)

    def test_async_session_commit_per_row_on_postgres(
        self, postgres_url: str, arun: Run[Any]
    ) -> None:
        """An ``AsyncSession.commit()`` per row on PostgreSQL is SLP203 at the awaiting line
        (the commit event fires in SQLAlchemy's greenlet; the walk goes on in its parent)."""
        from sqlalchemy.ext.asyncio import AsyncSession

        async def main() -> ss.WatchReport | None:
            engine = create_async_engine(postgres_url.replace("postgresql", "postgresql+asyncpg"))
            try:
                async with ss.watch(engine, min_repeats=3) as w, AsyncSession(engine) as session:
                    for i in range(3):
                        await session.execute(sa.text("select cast(:i as int)"), {"i": i})
                        await session.commit()  # async-commit
            finally:
                await engine.dispose()
            return w.report

        report = arun(main())
        assert report is not None
        assert ("SLP203", __file__, line_of("async-commit"), 3) in {
            (f.code, f.path, f.line, f.count) for f in report.findings
        }


class TestAsyncpg:
    def test_query_log_finds_the_loop_and_commits(self, postgres_url: str, arun: Run[Any]) -> None:
        """asyncpg's query logger times each query; the call site is the scope's own line."""

        async def main() -> ss.WatchReport | None:
            conn = await asyncpg.connect(postgres_url)
            try:
                await conn.execute("create temp table n (id int)")
                async with ss.watch(conn, min_repeats=3, min_total_s=0.0) as w:  # scope
                    for i in range(4):
                        async with conn.transaction():
                            await conn.execute("insert into n values ($1)", i)
            finally:
                await conn.close()
            return w.report

        report = arun(main())
        assert report is not None
        got = {(f.code, f.line, f.count) for f in report.findings}
        assert got == {("SLP202", line_of("scope"), 4), ("SLP203", line_of("scope"), 4)}
        assert report.db_s > 0
        assert report.untimed == 0

    def test_a_pools_own_statements_are_not_the_users(
        self, postgres_url: str, arun: Run[Any]
    ) -> None:
        """A pool hooked in ``init``: one ``pool.fetchval`` per item releases a connection each
        time, and asyncpg resets it (``RESET ALL``...) and looks up array types on first use;
        only the user's five queries count, so the one finding is theirs."""

        async def init(conn: Any) -> None:
            ss.instrument(conn)

        async def main() -> ss.WatchReport | None:
            pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=1, init=init)
            try:
                async with ss.watch(min_repeats=3, min_total_s=0.0) as w:
                    for i in range(5):
                        await pool.fetchval("select cardinality($1::int[])", [i])
            finally:
                await pool.close()
            return w.report

        report = arun(main())
        assert report is not None
        assert report.queries == 5
        assert [(f.code, f.count) for f in report.findings] == [("SLP201", 5)]
        assert set(report.by_fingerprint) == {"select cardinality (?::int[])"}

    def test_fast_repeats_under_the_time_gate_are_no_finding(
        self, postgres_url: str, arun: Run[Any]
    ) -> None:
        """Five timed SELECT 1 round trips take far less than the default 50 ms: no finding."""

        async def main() -> ss.WatchReport | None:
            conn = await asyncpg.connect(postgres_url)
            try:
                async with ss.watch(conn) as w:
                    for _ in range(5):
                        await conn.fetchval("select 1")
            finally:
                await conn.close()
            return w.report

        report = arun(main())
        assert report is not None
        assert report.queries == 5
        assert 0 < report.db_s < 0.05
        assert report.findings == ()

    def test_concurrent_scopes_do_not_mix(self, postgres_url: str, arun: Run[Any]) -> None:
        """Two tasks, each in its own scope on its own connection, each see only their queries."""

        async def task(n: int, ready: asyncio.Barrier) -> int:
            conn = await asyncpg.connect(postgres_url)
            try:
                async with ss.watch(conn) as w:
                    await ready.wait()
                    for i in range(n):
                        await conn.fetchval("select $1::int", i)
                        await asyncio.sleep(0)
            finally:
                await conn.close()
            assert w.report is not None
            return w.report.queries

        async def main() -> list[int]:
            ready = asyncio.Barrier(2)
            return list(await asyncio.gather(task(3, ready), task(7, ready)))

        assert arun(main()) == [3, 7]
