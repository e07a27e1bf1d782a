"""The psycopg watchers on a real PostgreSQL: psycopg 3 (sync and async) and psycopg2."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import psycopg2
import psycopg2.extras
import pytest
from psycopg import sql
from psycopg.rows import dict_row

import slipstream as ss

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
HERE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """The line of this file that ends with the comment ``# marker``."""
    (line,) = [i for i, text in enumerate(HERE, 1) if text.endswith(f"# {marker}")]
    return line


@pytest.fixture
def pg3(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(postgres_url, row_factory=dict_row)
    yield conn
    conn.close()


@pytest.fixture
def pg2(postgres_url: str) -> Iterator[Any]:
    conn = psycopg2.connect(postgres_url, cursor_factory=psycopg2.extras.RealDictCursor)
    yield conn
    conn.close()


class TestPsycopg3:
    def test_a_query_per_item_is_slp201_at_the_loops_line(
        self, pg3: psycopg.Connection[Any]
    ) -> None:
        """``conn.execute`` per id: timed, at the user's line (not psycopg's), rows unchanged."""
        with ss.watch(pg3, min_repeats=2, min_total_s=0) as w:
            rows = [
                pg3.execute("select %s::int as x", (i,)).fetchone()  # pg3 n+1
                for i in range(4)
            ]
        assert rows == [{"x": i} for i in range(4)]  # the connection's row factory is kept
        assert w.report is not None
        (f,) = w.report.findings
        assert (f.code, f.path, f.line, f.count) == ("SLP201", __file__, line_of("pg3 n+1"), 4)
        assert f.fingerprint == "select ?::int as x"
        assert w.report.untimed == 0
        assert f.total_s > 0

    def test_executemany_is_one_statement_and_writes_in_a_loop_are_slp202(
        self, pg3: psycopg.Connection[Any]
    ) -> None:
        """One ``executemany`` is one statement; an INSERT per row through a cursor is SLP202."""
        pg3.execute("create temporary table t (id int)")
        with ss.watch(pg3, min_repeats=2, min_total_s=0) as w, pg3.cursor() as cur:
            cur.executemany("insert into t values (%s)", [(i,) for i in range(50)])
            for i in range(3):
                cur.execute("insert into t values (%(id)s)", {"id": i})  # pg3 write
        assert w.report is not None
        assert w.report.queries == 4
        (f,) = w.report.findings
        assert (f.code, f.line, f.count) == ("SLP202", line_of("pg3 write"), 3)
        assert pg3.execute("select count(*) as n from t").fetchone() == {"n": 53}

    def test_a_composed_query_and_a_failing_one_are_recorded(
        self, pg3: psycopg.Connection[Any]
    ) -> None:
        """An ``sql.Composed`` query is fingerprinted from its text; a statement that fails is
        counted and its error reaches the caller unchanged."""
        query = sql.SQL("select {} as x").format(sql.Literal(7))
        with ss.watch(pg3, min_repeats=2) as w:
            assert pg3.execute(query).fetchone() == {"x": 7}
            with pytest.raises(psycopg.errors.UndefinedTable):
                pg3.execute("select * from no_such_table")
        assert w.report is not None
        assert w.report.by_fingerprint == {"select ? as x": 1, "select * from no_such_table": 1}

    def test_instrumenting_twice_and_outside_a_scope(self, pg3: psycopg.Connection[Any]) -> None:
        """A second ``instrument`` keeps one watching class; with no scope open nothing counts."""
        ss.instrument(pg3)
        factory = pg3.cursor_factory
        ss.instrument(pg3)
        assert pg3.cursor_factory is factory
        assert factory.__mro__[1] is psycopg.Cursor
        assert pg3.execute("select 1 as x").fetchone() == {"x": 1}
        with ss.watch(min_repeats=2) as w:
            pass
        assert w.report is not None
        assert w.report.queries == 0

    def test_async_connection_concurrent_scopes_do_not_mix(
        self, postgres_url: str, arun: Run[Any]
    ) -> None:
        """Two tasks on their own ``AsyncConnection``, interleaved at a barrier, each count
        their own queries, at the awaiting line."""

        async def task(n: int, ready: asyncio.Barrier) -> tuple[int, int]:
            conn = await psycopg.AsyncConnection.connect(postgres_url)
            try:
                ss.instrument(conn)
                async with ss.watch(min_repeats=2, min_total_s=0) as w:
                    await ready.wait()
                    for i in range(n):
                        await conn.execute("select %s::int", (i,))  # pg3 async
                        await asyncio.sleep(0)
            finally:
                await conn.close()
            assert w.report is not None
            (f,) = w.report.findings
            return w.report.queries, f.line

        async def main() -> list[tuple[int, int]]:
            ready = asyncio.Barrier(2)
            return list(await asyncio.gather(task(3, ready), task(5, ready)))

        line = line_of("pg3 async")
        assert arun(main()) == [(3, line), (5, line)]


class TestPsycopg2:
    def test_a_query_per_item_keeps_the_cursor_factory(self, pg2: Any) -> None:
        """The watching cursor subclasses the connection's ``RealDictCursor``: rows are dicts,
        each query is timed at the user's line."""
        ss.instrument(pg2)
        assert issubclass(pg2.cursor_factory, psycopg2.extras.RealDictCursor)
        rows = []
        with ss.watch(min_repeats=2, min_total_s=0) as w:
            for i in range(3):
                cur = pg2.cursor()
                cur.execute("select %s as x", (i,))  # pg2 n+1
                rows.append(dict(cur.fetchone()))
        assert rows == [{"x": i} for i in range(3)]
        assert w.report is not None
        (f,) = w.report.findings
        assert (f.code, f.line, f.count, f.fingerprint) == (
            "SLP201",
            line_of("pg2 n+1"),
            3,
            "select ? as x",
        )

    def test_a_plain_connection_and_an_explicit_commit_statement(self, postgres_url: str) -> None:
        """A connection with psycopg2's own C cursor is watched too; ``conn.commit()`` is not
        seen (no hook), a ``COMMIT`` sent as a statement is."""
        conn = psycopg2.connect(postgres_url)
        try:
            with ss.watch(conn, min_repeats=2, min_total_s=0) as w:
                cur = conn.cursor()
                for _ in range(2):
                    cur.execute("select 1")
                    conn.commit()  # no hook: not counted
                    cur.execute("commit")
        finally:
            conn.close()
        assert w.report is not None
        assert w.report.by_fingerprint == {"select ?": 2, "commit": 2}
        assert sorted(f.code for f in w.report.findings) == ["SLP201", "SLP203"]
