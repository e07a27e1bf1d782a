"""A sink that rejects the shape of every row (a stage returning an int where the sink wants a
row) stops the run at the first batch with one message naming the stage's output and the
sink's shape, on SQLite and PostgreSQL; data errors (a constraint, one malformed row) are still
isolated row by row."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import slipstream as ss
from slipstream._impl.db.batching import is_shape_error, shape_of

Run = Callable[[Coroutine[Any, Any, Any]], Any]


async def as_int(n: int) -> int:
    return n * 10


async def as_row(n: int) -> tuple[str, int]:
    return (str(n), n * 10)


def expected_message(sink: str, batch: int) -> str:
    return (
        f"the sink {sink} rejects what stage 'as_int' returns: an int per item. The first and "
        f"the last of a batch of {batch}, written alone, each raised TypeError: 'int' object is "
        "not iterable, and every item of the batch has that shape: this is the code, not the "
        "data. A sink takes one row per item: a mapping of its columns or a sequence in their "
        "order (return it from the last stage, or build it with row=). The run stopped at that "
        "batch: none of it was written, no item was marked failed, and a run after the fix "
        "processes them."
    )


class Counting:
    """Wraps a flush, counting its calls (the fail-fast must not bisect)."""

    def __init__(self, flush: Any) -> None:
        self.flush, self.calls = flush, 0
        self.__qualname__ = repr(flush)

    def setup(self) -> Any:
        return self.flush.setup()

    async def aclose(self) -> None:
        await self.flush.aclose()


class CountingSync(Counting):
    def __call__(self, rows: list[Any]) -> None:
        self.calls += 1
        self.flush(rows)


class CountingAsync(Counting):
    async def __call__(self, rows: list[Any], batch_id: str | None = None) -> None:
        self.calls += 1
        await self.flush(rows, batch_id=batch_id)


def sqlite_table(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (key text primary key, value int not null)")


class TestOnSqlite:
    def test_an_int_per_item_stops_the_run_at_the_first_batch(
        self, tmp_path: Path, arun: Run
    ) -> None:
        """A stage returning an int into ``sqlite_flush``: the run raises ``PipelineError``
        with the message below after 3 flush calls (the batch, its first row, its last row),
        nothing is written and nothing is marked failed; after the fix the same checkpoint
        run writes every item."""
        db, cp = tmp_path / "out.db", tmp_path / "cp.db"
        sqlite_table(db)
        sink = CountingSync(ss.sqlite_flush(db, "t", ["key", "value"]))

        async def broken() -> None:
            pipeline = ss.Pipeline(range(250), [ss.Stage(as_int)], sink, checkpoint=str(cp))
            await pipeline.run()

        with pytest.raises(ss.PipelineError) as caught:
            arun(broken())
        assert str(caught.value) == expected_message(repr(sink.flush), 100)
        assert isinstance(caught.value.__cause__, TypeError)
        assert sink.calls == 3

        async def fixed() -> tuple[ss.RunReport, set[str]]:
            pipeline = ss.Pipeline(range(250), [ss.Stage(as_row)], sink, checkpoint=str(cp))
            report = await pipeline.run()
            async with ss.Checkpoint(cp) as checkpoint:
                return report, await checkpoint.keys("default", "failed")

        report, failed = arun(fixed())
        assert (report.state, report.ok, report.failed, failed) == ("finished", 250, 0, set())
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*), sum(value) from t").fetchone() == (250, 311250)

    def test_a_constraint_violation_is_still_one_failed_item(
        self, tmp_path: Path, arun: Run
    ) -> None:
        """Data, not code: one row breaking NOT NULL is isolated (its item failed at the sink)
        and the run finishes with the other rows written."""
        db = tmp_path / "out.db"
        sqlite_table(db)

        async def row(n: int) -> tuple[str, int | None]:
            return (str(n), None if n == 37 else n)

        async def main() -> ss.RunReport:
            pipeline = ss.Pipeline(
                range(100), [ss.Stage(row)], ss.sqlite_flush(db, "t", ["key", "value"])
            )
            return await pipeline.run()

        report = arun(main())
        assert (report.state, report.ok, report.failed) == ("finished", 99, 1)
        assert [(f.key, f.stage) for f in report.failures] == [("37", "sink")]

    def test_bad_first_and_last_rows_among_good_ones_are_isolated(
        self, tmp_path: Path, arun: Run
    ) -> None:
        """The first and the last row have the wrong shape but the others do not: the rows are
        not all alike, so it is data; the two items fail and the rest are written."""
        db = tmp_path / "out.db"
        sqlite_table(db)

        async def row(n: int) -> Any:
            return n if n in (0, 99) else (str(n), n)

        async def main() -> ss.RunReport:
            pipeline = ss.Pipeline(
                range(100), [ss.Stage(row)], ss.sqlite_flush(db, "t", ["key", "value"])
            )
            return await pipeline.run()

        report = arun(main())
        assert (report.state, report.ok, report.failed) == ("finished", 98, 2)
        assert sorted(f.key for f in report.failures) == ["0", "99"]


class TestOnPostgres:
    def test_an_int_per_item_stops_the_run_with_asyncpg_flush(
        self, postgres_url: str, arun: Run
    ) -> None:
        """The same on PostgreSQL through ``asyncpg_flush``: the same message, 3 flush calls,
        the table empty."""
        import asyncpg

        table = f"shape_{uuid.uuid4().hex[:8]}"

        async def main() -> tuple[BaseException, int, int]:
            conn = await asyncpg.connect(postgres_url)
            await conn.execute(f"create table {table} (key text primary key, value int)")
            try:
                flush = ss.asyncpg_flush(
                    lambda: asyncpg.create_pool(postgres_url, min_size=1, max_size=2),
                    table,
                    ["key", "value"],
                )
                sink = CountingAsync(flush)
                pipeline = ss.Pipeline(range(150), [ss.Stage(as_int)], sink, batch_size=50)
                with pytest.raises(ss.PipelineError) as caught:
                    await pipeline.run()
                rows = await conn.fetchval(f"select count(*) from {table}")
                assert str(caught.value) == expected_message(repr(flush), 50)
                return caught.value, sink.calls, rows
            finally:
                await conn.execute(f"drop table {table}")
                await conn.close()

        error, calls, rows = arun(main())
        assert isinstance(error.__cause__, TypeError)
        assert (calls, rows) == (3, 0)


class TestWriter:
    def test_the_batch_writer_stops_with_rows_rejected(self, tmp_path: Path, arun: Run) -> None:
        """Under the pipeline: ``BatchWriter`` raises ``FlushFailed`` caused by
        ``RowsRejected`` (the batch's rows, the first error, the sample), every row unwritten
        and none reported failed."""
        db = tmp_path / "w.db"
        sqlite_table(db)
        flush = ss.sqlite_flush(db, "t", ["key", "value"])

        async def main() -> tuple[ss.FlushFailed, ss.BatchWriter[Any]]:
            writer: ss.BatchWriter[Any] = ss.BatchWriter(flush, batch_size=10)

            async def write() -> None:
                async with writer:
                    for n in range(10):
                        await writer.add({"key": str(n)})  # no "value": KeyError, every row

            with pytest.raises(ss.FlushFailed) as caught:
                await write()
            return caught.value, writer

        error, writer = arun(main())
        rejected = error.__cause__
        assert isinstance(rejected, ss.RowsRejected)
        assert isinstance(rejected.error, KeyError)
        assert rejected.sample == {"key": "0"}
        assert "every row of the batch is a dict with keys 'key'" in str(rejected)
        assert (len(writer.unwritten), writer.failed) == (10, [])


class TestShapes:
    def test_shape_errors_are_code_errors_and_constraints_are_not(self) -> None:
        """Python's shape errors and the DB-API's ProgrammingError / InterfaceError count as
        shape errors (a wrong row length too, which stays a ValueError); a constraint does not."""
        from slipstream._impl.db.sinks.sql import record

        with pytest.raises(ValueError, match="has 3 values for 2 columns") as wrong_length:
            record((1, 2, 3), ["a", "b"])
        assert is_shape_error(wrong_length.value)
        assert is_shape_error(sqlite3.ProgrammingError("Incorrect number of bindings"))
        assert is_shape_error(TypeError("'int' object is not iterable"))
        assert not is_shape_error(sqlite3.IntegrityError("NOT NULL constraint failed"))
        assert not is_shape_error(ValueError("invalid literal"))

    def test_rows_alike_have_one_shape(self) -> None:
        """Rows built the same way share a shape; another type, length, key or value type is
        another shape (a None among ints is, so nullable columns are judged as data)."""
        assert shape_of((1, "a")) == shape_of((2, "b"))
        assert shape_of({"k": 1}) == shape_of({"k": 2})
        assert len({shape_of(r) for r in [(1, "a"), (1, None), (1,), {"k": 1}, 3]}) == 5
