"""QueryTiming over real HTTP on a Starlette app with an instrumented SQLite file: the
Server-Timing header counts each request's statements, an N+1 logs one SLP201 line at the
endpoint's loop, a batched endpoint logs nothing, and concurrent requests keep their own counts."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import slipstream as ss

from .conftest import Serve

Run = Callable[[Coroutine[Any, Any, Any]], Any]
ORDERS = 6


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "shop.db", isolation_level=None)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)")
    conn.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"u{i}") for i in range(ORDERS)])
    conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i) for i in range(ORDERS)])
    ss.instrument(conn)
    yield conn
    conn.close()


def make_app(
    conn: sqlite3.Connection, monitor: ss.Monitor, barrier: asyncio.Barrier | None = None
) -> Starlette:
    async def n_plus_one(request: Request) -> Response:
        orders = conn.execute("SELECT id, user_id FROM orders").fetchall()
        names = []
        for _, user_id in orders:
            row = conn.execute("SELECT name FROM users WHERE id = ?", (user_id,)).fetchone()  # loop
            names.append(row[0])
        return JSONResponse(names)

    async def batched(request: Request) -> Response:
        rows = conn.execute(
            "SELECT o.id, u.name FROM orders o JOIN users u ON u.id = o.user_id"
        ).fetchall()
        return JSONResponse([name for _, name in rows])

    async def timed(request: Request) -> Response:
        return Response("ok", headers={"Server-Timing": 'app;dur=1.5;desc="render"'})

    async def lookups(request: Request) -> Response:
        n = int(request.path_params["n"])
        conn.execute("SELECT 1")
        assert barrier is not None
        await barrier.wait()  # both requests are inside their scopes now
        for i in range(n - 1):
            conn.execute("SELECT name FROM users WHERE id = ?", (i,))
            await asyncio.sleep(0)
        return Response("ok")

    return Starlette(
        routes=[
            Route("/orders", n_plus_one),
            Route("/orders/batched", batched),
            Route("/timed", timed),
            Route("/lookups/{n}", lookups),
        ],
        middleware=[Middleware(ss.QueryTiming, min_repeats=3, min_total_s=0, monitor=monitor)],
    )


def loop_line() -> int:
    """The line of make_app's per-order query (the one marked ``# loop``)."""
    lines, first = inspect.getsourcelines(make_app)
    return first + next(i for i, text in enumerate(lines) if text.rstrip().endswith("# loop"))


class TestQueryTiming:
    def test_n_plus_one_gets_header_and_one_warning(
        self, arun: Run, serving: Serve, db: sqlite3.Connection, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An N+1 endpoint's response says how many statements it ran, and the request logs
        one SLP201 warning at the loop's line and counts db.n_plus_one once."""
        monitor = ss.Monitor()
        caplog.set_level(logging.WARNING, logger="slipstream.detect")

        async def main() -> httpx.Response:
            async with serving(make_app(db, monitor)) as url, httpx.AsyncClient() as client:
                return await client.get(url + "/orders")

        response = arun(main())
        assert response.status_code == 200
        assert response.headers["server-timing"] == (f'db;dur=0.000;desc="{ORDERS + 1} queries"')
        lines = [r for r in caplog.records if r.name == "slipstream.detect"]
        assert len(lines) == 1
        message = lines[0].getMessage()
        assert lines[0].levelno == logging.WARNING
        assert message.startswith("SLP201 query-in-loop at ")
        assert f"{__file__}:{loop_line()} " in message
        assert f": {ORDERS} x " in message
        assert "GET /orders" in message
        assert "Fix: " in message
        assert monitor.report()["counters"] == {"db.n_plus_one": 1}

    def test_batched_endpoint_has_no_warning(
        self, arun: Run, serving: Serve, db: sqlite3.Connection, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One joined query gets a one-query header and no warning, and counts nothing."""
        monitor = ss.Monitor()
        caplog.set_level(logging.WARNING, logger="slipstream.detect")

        async def main() -> httpx.Response:
            async with serving(make_app(db, monitor)) as url, httpx.AsyncClient() as client:
                return await client.get(url + "/orders/batched")

        response = arun(main())
        assert response.headers["server-timing"] == 'db;dur=0.000;desc="1 query"'
        assert [r for r in caplog.records if r.name == "slipstream.detect"] == []
        assert monitor.report()["counters"] == {}

    def test_existing_server_timing_is_kept(
        self, arun: Run, serving: Serve, db: sqlite3.Connection
    ) -> None:
        """A Server-Timing the app set keeps its metric; the db metric follows after ", "."""

        async def main() -> httpx.Response:
            async with serving(make_app(db, ss.Monitor())) as url, httpx.AsyncClient() as client:
                return await client.get(url + "/timed")

        response = arun(main())
        assert response.headers.get_list("server-timing") == [
            'app;dur=1.5;desc="render", db;dur=0.000;desc="0 queries"'
        ]

    def test_concurrent_requests_keep_their_own_counts(
        self, arun: Run, serving: Serve, db: sqlite3.Connection
    ) -> None:
        """Two requests inside their scopes at once (a barrier holds both) each count only
        their own statements."""

        async def main() -> list[httpx.Response]:
            barrier = asyncio.Barrier(2)
            app = make_app(db, ss.Monitor(), barrier)
            async with serving(app) as url, httpx.AsyncClient() as client:
                pair = client.get(url + "/lookups/2"), client.get(url + "/lookups/7")
                return list(await asyncio.gather(*pair))

        small, large = arun(main())
        assert small.headers["server-timing"] == 'db;dur=0.000;desc="2 queries"'
        assert large.headers["server-timing"] == 'db;dur=0.000;desc="7 queries"'


class TestArguments:
    def test_bad_arguments_name_the_parameter(self) -> None:
        """A gate out of range or a monitor that is not a Monitor raises naming the parameter."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            return None

        with pytest.raises(ValueError, match="min_repeats"):
            ss.QueryTiming(app, min_repeats=1)
        with pytest.raises(ValueError, match="min_total_s"):
            ss.QueryTiming(app, min_total_s=-1)
        with pytest.raises(TypeError, match="monitor"):
            ss.QueryTiming(app, monitor=object())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="logger"):
            ss.QueryTiming(app, logger="slipstream")  # type: ignore[arg-type]
