"""A pipeline runs its sink's lifecycle: setup once per run before any item (a failure stops
the run, nothing marked done), close once when the run ends, finished, failed or cancelled;
the built-in flushes create their pool and tables in it on real PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Sink:
    """A sink with a lifecycle that records, in order, what the pipeline did with it."""

    def __init__(
        self,
        *,
        fail_setup: bool = False,
        fail_close: bool = False,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.events: list[str] = []
        self.rows: list[Any] = []
        self.fail_setup, self.fail_close, self.gate = fail_setup, fail_close, gate
        self.entered = asyncio.Event()

    async def setup(self) -> None:
        self.events.append("setup")
        if self.fail_setup:
            raise ValueError("syntax error in the DDL")

    async def __call__(self, rows: list[Any]) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        self.events.append("write")
        self.rows += rows

    async def aclose(self) -> None:
        self.events.append("close")
        if self.fail_close:
            raise OSError("the pool would not close")


async def double(n: int) -> int:
    return n * 2


async def done_keys(path: Path) -> set[str]:
    async with ss.Checkpoint(path) as cp:
        return await cp.keys("default", "done")


class TestSinkLifecycle:
    """Setup and close of a sink, once per run."""

    def test_setup_before_any_item_and_close_after_the_last_write(self, vrun: Run) -> None:
        """Setup runs before the first item; close runs after the last write; a second run
        sets up and closes again (once per run)."""
        sink = Sink()
        seen: list[str] = []

        async def stage(n: int) -> int:
            seen.append(sink.events[-1])
            return n

        pipeline = ss.Pipeline(range(5), [ss.Stage(stage)], sink, batch_size=10)
        report = vrun(pipeline.run())
        assert (5, {"setup"}) == (report.ok, set(seen))
        assert ["setup", "write", "close"] == sink.events
        vrun(pipeline.run())
        assert ["setup", "write", "close"] * 2 == sink.events

    def test_a_failed_setup_fails_the_run_and_marks_nothing_done(
        self, tmp_path: Path, vrun: Run
    ) -> None:
        """The sink's setup failing stops the run as PipelineError naming the sink, before
        any item: no stage call, nothing in the checkpoint marked done; close still runs."""
        sink = Sink(fail_setup=True)
        calls: list[int] = []

        async def stage(n: int) -> int:
            calls.append(n)
            return n

        pipeline = ss.Pipeline(
            range(5), [ss.Stage(stage)], sink, checkpoint=ss.Checkpoint(tmp_path / "c.sqlite")
        )
        with pytest.raises(ss.PipelineError, match="setup of the sink failed") as raised:
            vrun(pipeline.run())
        assert isinstance(raised.value.__cause__, ValueError)
        assert ([], ["setup", "close"]) == (calls, sink.events)
        assert set() == vrun(done_keys(tmp_path / "c.sqlite"))

    def test_a_setup_refused_while_the_database_starts_is_retried(self, vrun: Run) -> None:
        """Connection errors of the sink's setup are retried (as a flush's are): refused
        twice, set up on the third attempt, and the run finishes."""
        attempts: list[int] = []

        class Starting(Sink):
            async def setup(self) -> None:
                attempts.append(1)
                if len(attempts) <= 2:
                    raise ConnectionRefusedError("the database is starting up")

        sink = Starting()
        report = vrun(ss.Pipeline(range(3), [ss.Stage(double)], sink).run())
        assert ("finished", 3, 3) == (report.state, report.ok, len(attempts))
        assert ["write", "close"] == sink.events

    def test_close_runs_when_the_run_fails(self, tmp_path: Path, vrun: Run) -> None:
        """A source that raises midway: its error is raised after what it gave is committed,
        and the sink is closed once, last."""
        sink = Sink()

        def source() -> Iterator[int]:
            yield from range(3)
            raise LookupError("the listing broke")

        pipeline = ss.Pipeline(
            source, [ss.Stage(double)], sink, checkpoint=ss.Checkpoint(tmp_path / "c.sqlite")
        )
        with pytest.raises(LookupError, match="the listing broke"):
            vrun(pipeline.run())
        assert ["setup", "write", "close"] == sink.events
        assert {"0", "1", "2"} == vrun(done_keys(tmp_path / "c.sqlite"))

    def test_close_runs_when_the_run_is_cancelled(self, vrun: Run) -> None:
        """Cancelled while the sink writes: the write in flight finishes (shielded) and the
        sink is closed once, after it."""
        gate = asyncio.Event()
        sink = Sink(gate=gate)

        async def main() -> None:
            task = asyncio.create_task(
                ss.Pipeline(range(100), [ss.Stage(double)], sink, batch_size=10).run()
            )
            await sink.entered.wait()
            task.cancel()
            await asyncio.sleep(0)
            gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(50):  # the shielded writes and close finish on their own
                await asyncio.sleep(0.01)

        vrun(main())
        assert "setup" == sink.events[0]
        assert ["close"] == [e for e in sink.events if e == "close"]
        assert "close" == sink.events[-1]

    def test_a_stage_setup_failure_closes_the_sink_too(self, vrun: Run) -> None:
        """A stage's setup failing stops the run; the sink's setup that ran beside it is
        closed once."""
        sink = Sink()

        async def broken() -> None:
            raise RuntimeError("no LLM client")

        pipeline = ss.Pipeline(range(3), [ss.Stage(double, setup=broken)], sink)
        with pytest.raises(ss.PipelineError, match="setup of stage 'double' failed"):
            vrun(pipeline.run())
        assert sink.events.count("close") == 1
        assert "write" not in sink.events

    def test_a_failing_close_after_a_good_run_is_raised(self, tmp_path: Path, vrun: Run) -> None:
        """A close that fails after every item was committed and marked is raised as
        PipelineError (the items stay done)."""
        sink = Sink(fail_close=True)
        pipeline = ss.Pipeline(
            range(4), [ss.Stage(double)], sink, checkpoint=ss.Checkpoint(tmp_path / "c.sqlite")
        )
        with pytest.raises(ss.PipelineError, match="closing the sink failed"):
            vrun(pipeline.run())
        assert {"0", "1", "2", "3"} == vrun(done_keys(tmp_path / "c.sqlite"))

    def test_a_sink_whose_setup_is_not_callable_is_named(self) -> None:
        """A sink with a setup (or aclose) that is not callable is refused when the pipeline
        is made, naming it."""

        class Broken:
            aclose = "later"

            def __call__(self, rows: list[Any]) -> None:
                return None

        with pytest.raises(TypeError, match=r"'sink\.aclose'"):
            ss.Pipeline(range(3), [ss.Stage(double)], Broken())


class TestBuiltInSinks:
    """The built-in flushes create their pool and DDL in the run's setup."""

    def test_sqlite_flush_creates_its_table_in_setup(self, tmp_path: Path, arun: Run) -> None:
        """A fresh SQLite file: the run's sink setup creates the table, then the rows go in."""
        db = tmp_path / "fresh.sqlite"
        flush = ss.sqlite_flush(
            db,
            "results",
            ["key", "value"],
            conflict=["key"],
            setup=lambda conn: conn.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value INTEGER)"
            ),
        )
        pipeline = ss.Pipeline(
            range(20), [ss.Stage(double)], flush, row=lambda item, v: (item.key, v)
        )
        report = arun(pipeline.run())
        conn = sqlite3.connect(db)
        try:
            stored = dict(conn.execute("SELECT key, value FROM results"))
        finally:
            conn.close()
        assert (20, {str(i): 2 * i for i in range(20)}) == (report.ok, stored)

    def test_asyncpg_flush_makes_its_pool_and_table_in_setup_and_closes_it(
        self, postgres_url: str, arun: Run
    ) -> None:
        """On PostgreSQL: the run makes the pool from the factory and runs the DDL before any
        item, writes every row, and closes the pool when it ends."""
        asyncpg = pytest.importorskip("asyncpg")
        table = f"sink_{uuid.uuid4().hex[:8]}"
        made: list[Any] = []

        async def factory() -> Any:
            made.append(await asyncpg.create_pool(postgres_url, min_size=1, max_size=2))
            return made[-1]

        async def main() -> tuple[int, int]:
            flush = ss.asyncpg_flush(
                factory,
                table,
                ["key", "value"],
                conflict=["key"],
                setup=lambda conn: conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (key text PRIMARY KEY, value int)"
                ),
                marker_table=f"{table}_m",
            )
            pipeline = ss.Pipeline(
                range(30), [ss.Stage(double)], flush, row=lambda item, v: (item.key, v)
            )
            report = await pipeline.run()
            conn = await asyncpg.connect(postgres_url)
            try:
                total = await conn.fetchval(f"SELECT sum(value) FROM {table}")
                await conn.execute(f"DROP TABLE {table}, {table}_m")
            finally:
                await conn.close()
            return report.ok, total

        assert (30, sum(2 * i for i in range(30))) == arun(main())
        assert 1 == len(made)
        assert made[0].is_closing()
