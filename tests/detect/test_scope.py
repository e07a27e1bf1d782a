"""Scopes: context-variable attribution, nesting, exit on error and cancellation."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

import slipstream as ss
from slipstream._impl.detect.scope import CURRENT

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    ss.instrument(conn)
    return conn


class TestScope:
    def test_an_error_in_the_block_still_reports(self, db: sqlite3.Connection) -> None:
        """A block that raises still leaves its report, and no scope stays current."""
        w = ss.watch()

        def block() -> None:
            with w:
                db.execute("select 1")
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            block()
        assert w.report is not None
        assert w.report.queries == 1
        assert CURRENT.get() is None

    def test_a_cancelled_block_still_reports(self, db: sqlite3.Connection, vrun: Run[Any]) -> None:
        """An async block cancelled mid-way reports what ran, and its scope is closed."""
        w = ss.watch()

        async def body() -> None:
            async with w:
                db.execute("select 1")
                await asyncio.sleep(10)

        async def main() -> None:
            task = asyncio.create_task(body())
            await asyncio.sleep(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        vrun(main())
        assert w.report is not None
        assert w.report.queries == 1

    def test_tasks_started_inside_a_scope_count_toward_it(
        self, db: sqlite3.Connection, vrun: Run[Any]
    ) -> None:
        """Statements of tasks gathered inside a scope are the scope's."""

        async def one(i: int) -> None:
            await asyncio.sleep(0)
            db.execute("select ?", (i,))

        async def main() -> ss.WatchReport | None:
            async with ss.watch() as w:
                await asyncio.gather(*(one(i) for i in range(3)))
            return w.report

        report = vrun(main())
        assert report is not None
        assert report.queries == 3

    def test_a_scope_cannot_be_entered_twice_at_once(self) -> None:
        """Entering an entered scope again raises instead of mixing two blocks."""
        w = ss.watch()
        with w, pytest.raises(RuntimeError, match="already entered"), w:
            pass

    def test_slow_statements_are_listed(self, tmp_path: Any) -> None:
        """With slow_s=0 every timed statement is listed as slow, with its fingerprint."""
        import sqlalchemy as sa

        engine = sa.create_engine("sqlite://")
        with ss.watch(engine, slow_s=0.0) as w, engine.connect() as conn:
            conn.execute(sa.text("select 42"))
        engine.dispose()
        assert w.report is not None
        assert [s.fingerprint for s in w.report.slow] == ["select ?"]
