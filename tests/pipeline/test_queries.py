"""Queries per item per stage: the run is a query scope and each stage's calls one inside it,
so a RunReport says what each stage sent through instrumented drivers (a real SQLite file,
PostgreSQL through asyncpg), and plan() prices it for n items and names the fix."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import slipstream as ss
from slipstream._impl.core.rules import rule
from slipstream._impl.detect import scope

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]
HERE = Path(__file__).read_text().splitlines()
N = 40


def line_of(marker: str) -> int:
    """The line of this file that ends with the comment ``# marker``."""
    (line,) = [i for i, text in enumerate(HERE, 1) if text.endswith(f"# {marker}")]
    return line


def shown(path: str) -> str:
    """A path as plan() advice shows it: relative to the working directory when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A SQLite file with users 0..N-1, instrumented (its trace callback is the watcher's)."""
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.execute("create table users (id integer primary key, name text)")
    conn.execute("create table out (id integer primary key, name text)")
    conn.executemany("insert into users values (?, ?)", [(i, f"u{i}") for i in range(N)])
    conn.commit()
    ss.instrument(conn)
    yield conn
    conn.close()


def stage_named(report: ss.RunReport, name: str) -> ss.StageReport:
    (found,) = [s for s in report.stages if s.name == name]
    return found


class TestQueriesPerItem:
    def test_one_select_per_item_is_one_per_item_and_slp201_at_the_stage(
        self, db: sqlite3.Connection, vrun: Run[ss.RunReport]
    ) -> None:
        """A stage doing one SELECT per item: exactly 1.0 query per item over N items, and one
        SLP201 at the SELECT's line in the stage function, counted N times (the same query
        once per call, across items)."""

        async def lookup(n: int) -> str:
            return str(db.execute("select name from users where id = ?", (n,)).fetchone()[0])  # one

        report = vrun(ss.Pipeline(range(N), [ss.Stage(lookup)]).run())
        stage = report.stages[0]
        assert (N, N, 1.0) == (stage.ok, stage.queries, stage.queries_per_item)
        (finding,) = stage.findings
        assert ("SLP201", __file__, line_of("one"), N) == (
            finding.code,
            finding.path,
            finding.line,
            finding.count,
        )
        assert finding.function.endswith("lookup")
        assert finding.fix == rule("SLP201").fix
        assert N == report.queries  # nothing else in this run sent a statement
        assert (finding,) == report.findings

    def test_three_selects_per_item_is_three_per_item(
        self, db: sqlite3.Connection, vrun: Run[ss.RunReport]
    ) -> None:
        """A loop of three SELECTs inside each call: 3.0 per item, one finding counted 3N."""

        async def enrich(n: int) -> int:
            for k in range(3):
                db.execute("select name from users where id = ?", ((n + k) % N,))  # three
            return n

        stage = vrun(ss.Pipeline(range(N), [ss.Stage(enrich)]).run()).stages[0]
        assert (3 * N, 3.0) == (stage.queries, stage.queries_per_item)
        assert [(line_of("three"), 3 * N)] == [(f.line, f.count) for f in stage.findings]

    def test_a_sync_stage_counts_its_statements_in_its_thread(
        self, db: sqlite3.Connection, tmp_path: Path, arun: Run[ss.RunReport]
    ) -> None:
        """A sync stage runs in the thread pool with the call's context: still 1.0 per item.
        One connection per worker thread, each instrumented in its thread (a watched sqlite3
        connection shared by threads would deadlock CPython: ``instrument`` refuses one)."""
        local = threading.local()  # its connections close with their threads' locals

        def lookup_sync(n: int) -> str:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = sqlite3.connect(tmp_path / "app.db")
                ss.instrument(conn)
            return str(conn.execute("select name from users where id = ?", (n,)).fetchone()[0])

        run = ss.Pipeline(range(N), [ss.Stage(lookup_sync, concurrency=4)]).run()
        stage = arun(run).stages[0]
        assert (N, 1.0) == (stage.queries, stage.queries_per_item)

    def test_a_batched_stage_is_one_query_per_batch(
        self, db: sqlite3.Connection, vrun: Run[Any]
    ) -> None:
        """The stage's 8 concurrent calls share a DataLoader (batch_size 8): one IN query per
        8 items, so 1/8 query per item; the loader's task counts toward the stage that
        started it."""

        async def users_by_id(ids: list[int]) -> dict[int, str]:
            marks = ", ".join("?" * len(ids))
            rows = db.execute(f"select id, name from users where id in ({marks})", ids)
            return dict(rows.fetchall())

        async def main() -> tuple[ss.RunReport, ss.DataLoaderStatistics]:
            loader: ss.DataLoader[int, str] = ss.DataLoader(users_by_id, batch_size=8)

            async def batched(n: int) -> str:
                return await loader.load(n)

            report = await ss.Pipeline(range(N), [ss.Stage(batched, concurrency=8)]).run()
            return report, loader.statistics()

        report, stats = vrun(main())
        stage = report.stages[0]
        assert N // 8 == stats.batches == stage.queries
        assert 1 / 8 == stage.queries_per_item


class TestWhatIsNotAStages:
    def test_the_source_and_the_sink_count_for_the_run_not_a_stage(
        self, db: sqlite3.Connection, vrun: Run[ss.RunReport]
    ) -> None:
        """The source reads one row per item (in the stage's worker, between its calls) and
        the sink writes one row per statement: the stage still has exactly N statements; the
        run has them all, and their findings at the source's and the sink's lines."""

        def source() -> Iterator[int]:
            for n in range(N):
                db.execute("select id from users where id = ?", (n,)).fetchone()  # source
                yield n

        async def lookup(n: int) -> int:
            db.execute("select name from users where id = ?", (n,)).fetchone()  # stage
            return n

        async def sink(rows: list[int]) -> None:
            for n in rows:
                db.execute("insert into out values (?, ?)", (n, "x"))  # sink
            db.commit()

        report = vrun(ss.Pipeline(source, [ss.Stage(lookup)], sink, batch_size=10).run())
        stage = report.stages[0]
        assert (N, 1.0) == (stage.queries, stage.queries_per_item)
        assert [line_of("stage")] == [f.line for f in stage.findings]
        lines = {(f.code, f.line) for f in report.findings}
        assert {("SLP201", line_of("source")), ("SLP202", line_of("sink"))} <= lines
        assert report.queries >= 3 * N  # the source's N, the stage's N, the sink's N and more

    def test_two_stages_in_flight_at_once_are_not_mixed(
        self, db: sqlite3.Connection, vrun: Run[ss.RunReport]
    ) -> None:
        """Stage 'second' sends two statements, lets a call of 'first' send its second one
        (that call was waiting for it), then sends two more: the statements interleave on
        one connection, and each stage still has exactly its own (2 and 4 per item)."""
        half = [asyncio.Event() for _ in range(N)]  # second(n) sent its first two
        resumed = [asyncio.Event() for _ in range(N)]  # first(n) sent its second
        interleaved = 0

        async def first(n: int) -> int:
            db.execute("select 1 from users where id = ?", (n,))  # first
            if n > 0:
                await half[n - 1].wait()
            db.execute("select 2 from users where id = ?", (n,))
            resumed[n].set()
            return n

        async def second(n: int) -> int:
            nonlocal interleaved
            db.execute("select 3 from users where id = ?", (n,))  # second
            db.execute("select 4 from users where id = ?", (n,))
            half[n].set()
            if n + 1 < N:
                await resumed[n + 1].wait()  # first(n + 1) sends while this call is open
                interleaved += 1
            db.execute("select 5 from users where id = ?", (n,))
            db.execute("select 6 from users where id = ?", (n,))
            return n

        report = vrun(
            ss.Pipeline(
                range(N), [ss.Stage(first, concurrency=2), ss.Stage(second, concurrency=1)]
            ).run()
        )
        a, b = stage_named(report, "first"), stage_named(report, "second")
        assert N - 1 == interleaved
        assert (2 * N, 2.0, 4 * N, 4.0) == (
            a.queries,
            a.queries_per_item,
            b.queries,
            b.queries_per_item,
        )
        assert {f.function.rsplit(".", 1)[-1] for f in a.findings} == {"first"}
        assert {f.function.rsplit(".", 1)[-1] for f in b.findings} == {"second"}
        assert 6 * N == report.queries


class TestPlan:
    def test_the_plan_prices_the_queries_and_names_the_stage_and_the_fix(
        self, db: sqlite3.Connection, vrun: Run[ss.RunReport]
    ) -> None:
        """After a run: per stage, the queries per item and for 1,000,000 items; the advice
        names each stage at one or more per item with its finding's line and the rule's fix
        (once per call: batch across items; three per call: a loop inside the call); the
        batched stage (1/8 per item) is priced but not advised."""

        async def lookup(n: int) -> int:
            db.execute("select name from users where id = ?", (n,)).fetchone()  # plan-lookup
            return n

        async def enrich(n: int) -> int:
            for k in range(3):
                db.execute("select id from users where id = ?", ((n + k) % N,))  # plan-enrich
            return n

        async def users_by_id(ids: list[int]) -> list[int]:
            db.execute(f"select id from users where id in ({', '.join('?' * len(ids))})", ids)
            return ids

        loader: ss.DataLoader[int, int] = ss.DataLoader(users_by_id, batch_size=8)

        async def batched(n: int) -> int:
            return await loader.load(n)

        pipeline = ss.Pipeline(
            range(N),
            [
                ss.Stage(lookup, latency_s=0.01),
                ss.Stage(enrich, latency_s=0.01),
                ss.Stage(batched, concurrency=8, latency_s=0.01),
            ],
        )
        vrun(pipeline.run())
        plan = pipeline.plan(1_000_000)
        assert [1.0, 3.0, 0.125] == [s.queries_per_item for s in plan.stages]
        assert [1_000_000, 3_000_000, 125_000] == [s.queries for s in plan.stages]
        assert 4_125_000 == plan.queries
        fix = rule("SLP201").fix
        here = shown(__file__)
        assert (
            f"stage 'lookup' makes 1.0 queries per item (SLP201 at {here}:{line_of('plan-lookup')}"
            "): 1,000,000 queries for 1,000,000 items; the same statement once per call: batch "
            "it across items (an ss.DataLoader shared by the stage's calls batches the 8 calls "
            f"in flight). {fix}"
        ) in plan.advice
        assert (
            f"stage 'enrich' makes 3.0 queries per item (SLP201 at {here}:{line_of('plan-enrich')}"
            "): 3,000,000 queries for 1,000,000 items; 3.0 per call from that line: a loop inside "
            f"each call. {fix}"
        ) in plan.advice
        assert not [a for a in plan.advice if "'batched'" in a]
        assert "4,125,000 queries" in str(plan)
        assert "3.00 queries/item" in str(plan)


class TestNotMeasured:
    def test_nothing_instrumented_is_none(
        self, tmp_path: Path, vrun: Run[ss.RunReport], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """In a process where nothing was ever instrumented (the flag instrument() sets, put
        back to a fresh process's value), a stage querying an unhooked SQLite file is not
        measured: None per item, no findings, no column, and plan() prices no queries."""
        monkeypatch.setattr(scope, "INSTRUMENTED", False)
        conn = sqlite3.connect(tmp_path / "plain.db")

        async def lookup(n: int) -> int:
            conn.execute("select ?", (n,)).fetchone()
            return n

        pipeline = ss.Pipeline(range(N), [ss.Stage(lookup, latency_s=0.01)])
        report = vrun(pipeline.run())
        conn.close()
        stage = report.stages[0]
        assert (None, 0, ()) == (stage.queries_per_item, stage.queries, stage.findings)
        assert (0, ()) == (report.queries, report.findings)
        assert "queries" not in report.summary()
        plan = pipeline.plan(100)
        assert (None, None) == (plan.queries, plan.stages[0].queries_per_item)

    def test_detect_false_measures_nothing(
        self, db: sqlite3.Connection, vrun: Run[ss.RunReport]
    ) -> None:
        """detect=False: an instrumented connection's statements are not counted at all."""

        async def lookup(n: int) -> int:
            db.execute("select name from users where id = ?", (n,)).fetchone()
            return n

        report = vrun(ss.Pipeline(range(N), [ss.Stage(lookup)], detect=False).run())
        assert (None, 0) == (report.stages[0].queries_per_item, report.queries)

    def test_detect_takes_the_gates_of_a_watch(
        self, db: sqlite3.Connection, vrun: Run[ss.RunReport]
    ) -> None:
        """detect=ss.watch(min_repeats=50): 40 repeats are counted but are no finding; a
        wrong detect= names the parameter."""

        async def lookup(n: int) -> int:
            db.execute("select name from users where id = ?", (n,)).fetchone()
            return n

        gates = ss.watch(min_repeats=50)
        stage = vrun(ss.Pipeline(range(N), [ss.Stage(lookup)], detect=gates).run()).stages[0]
        assert (1.0, ()) == (stage.queries_per_item, stage.findings)
        with pytest.raises(TypeError, match="'detect'"):
            ss.Pipeline(range(N), [ss.Stage(lookup)], detect=5)  # type: ignore[arg-type]


class TestPostgres:
    def test_asyncpg_one_select_per_item(self, postgres_url: str, arun: Run[Any]) -> None:
        """asyncpg through its query logger (timed; its records arrive a loop turn later):
        1.0 per item, time in the database, and the finding at the stage function's line
        (asyncpg gives no call site: the stage's scope stands for it)."""
        asyncpg = pytest.importorskip("asyncpg")

        async def main() -> ss.RunReport:
            conn = await asyncpg.connect(postgres_url)
            ss.instrument(conn)

            async def pg_lookup(n: int) -> int:  # pg-stage
                return int(await conn.fetchval("select $1::int + 1", n))

            try:
                gates = ss.watch(min_repeats=5, min_total_s=0)
                stages = [ss.Stage(pg_lookup, concurrency=1)]
                return await ss.Pipeline(range(N), stages, detect=gates).run()
            finally:
                await conn.close()

        report = arun(main())
        stage = report.stages[0]
        assert (N, N, 1.0) == (stage.ok, stage.queries, stage.queries_per_item)
        assert stage.db_s > 0
        (finding,) = stage.findings
        assert ("SLP201", __file__, line_of("pg-stage"), N) == (
            finding.code,
            finding.path,
            finding.line,
            finding.count,
        )
