"""The run-time N+1 detector in a FastAPI app on PostgreSQL, over real HTTP: an endpoint that
runs one SELECT per order logs one SLP201 warning (call site, fix from the rule catalogue), says
``N queries`` in ``Server-Timing`` and counts ``db.n_plus_one``; the same endpoint through a
per-request DataLoader (one ``WHERE id = ANY($1)``) logs nothing and returns the same JSON.
Both through an asyncpg pool (hooked in its ``init``) and a SQLAlchemy ``AsyncEngine``.

No ``from __future__ import annotations``: FastAPI reads ``Annotated[..., Depends(users)]`` when
it registers the route, and ``users`` is local to ``make_app``.
"""

import asyncio
import contextlib
import inspect
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Annotated, Any, Protocol

import httpx
import pytest
from fastapi import Depends, FastAPI

import slipstream as ss
from slipstream._impl.core.rules import rule

from .conftest import Serve

Run = Callable[[Coroutine[Any, Any, Any]], Any]
ORDERS = 6
USERS = 3  # order i belongs to user i % USERS: the naive endpoint asks for some users twice
LOGGER = "slipstream.detect"
TIMING = re.compile(r'db;dur=(\d+\.\d{3});desc="(\d+) quer(?:y|ies)"')
EXPECTED = [{"order": i, "user": f"user {i % USERS}"} for i in range(ORDERS)]


class Backend(Protocol):
    """What the endpoints need from the database, on one driver or the other."""

    def request(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def orders(self) -> list[tuple[int, int]]: ...

    async def user_name(self, user_id: int) -> str: ...

    async def user_names(self, user_ids: list[int]) -> dict[int, str]: ...


_CONNECTION: ContextVar[Any] = ContextVar("test_detect_fastapi_connection")


class AsyncpgBackend:
    """An asyncpg pool whose connections are hooked as they are made (``init=``); a request
    holds one connection (tasks it starts, the DataLoader's batch, inherit it)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        async with self.pool.acquire() as conn:
            token = _CONNECTION.set(conn)
            try:
                yield
            finally:
                _CONNECTION.reset(token)

    async def orders(self) -> list[tuple[int, int]]:
        rows = await _CONNECTION.get().fetch("SELECT id, user_id FROM orders ORDER BY id")
        return [(r["id"], r["user_id"]) for r in rows]

    async def user_name(self, user_id: int) -> str:
        query = "SELECT name FROM users WHERE id = $1"
        return str(await _CONNECTION.get().fetchval(query, user_id))

    async def user_names(self, user_ids: list[int]) -> dict[int, str]:
        query = "SELECT id, name FROM users WHERE id = ANY($1)"
        rows = await _CONNECTION.get().fetch(query, user_ids)
        return {r["id"]: r["name"] for r in rows}


class SQLAlchemyBackend:
    """A SQLAlchemy ``AsyncEngine`` on asyncpg, hooked with ``ss.instrument(engine)``."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def request(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    async def orders(self) -> list[tuple[int, int]]:
        import sqlalchemy as sa

        async with self.engine.connect() as conn:
            result = await conn.execute(sa.text("SELECT id, user_id FROM orders ORDER BY id"))
            return [(row.id, row.user_id) for row in result]

    async def user_name(self, user_id: int) -> str:
        import sqlalchemy as sa

        query = sa.text("SELECT name FROM users WHERE id = :id")
        async with self.engine.connect() as conn:
            result = await conn.execute(query, {"id": user_id})  # per-order
            return str(result.scalar_one())

    async def user_names(self, user_ids: list[int]) -> dict[int, str]:
        import sqlalchemy as sa

        query = sa.text("SELECT id, name FROM users WHERE id = ANY(:ids)")
        async with self.engine.connect() as conn:
            result = await conn.execute(query, {"ids": user_ids})
            return {row.id: row.name for row in result}


def line_of(marker: str) -> int:
    """The line of this module that ends with ``# <marker>``."""
    lines = inspect.getsource(inspect.getmodule(line_of)).splitlines()  # type: ignore[arg-type]
    return 1 + next(i for i, text in enumerate(lines) if text.rstrip().endswith(f"# {marker}"))


@pytest.fixture
def schema(postgres_url: str, arun: Run) -> Iterator[str]:
    """A schema of its own with ORDERS orders of USERS users, dropped after the test."""
    import asyncpg

    name = f"detect_{uuid.uuid4().hex[:10]}"

    async def sql(*statements: str) -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    users = ", ".join(f"({i}, 'user {i}')" for i in range(USERS))
    orders = ", ".join(f"({i}, {i % USERS})" for i in range(ORDERS))
    arun(
        sql(
            f"CREATE SCHEMA {name}",
            f"CREATE TABLE {name}.users (id int PRIMARY KEY, name text)",
            f"CREATE TABLE {name}.orders (id int PRIMARY KEY, user_id int)",
            f"INSERT INTO {name}.users VALUES {users}",
            f"INSERT INTO {name}.orders VALUES {orders}",
        )
    )
    yield name
    arun(sql(f"DROP SCHEMA {name} CASCADE"))


@contextlib.asynccontextmanager
async def connect(driver: str, url: str, schema: str) -> AsyncIterator[Backend]:
    """The backend for ``driver``, hooked, its connections made before any request."""
    if driver == "asyncpg":
        import asyncpg

        async def init(conn: Any) -> None:
            ss.instrument(conn)
            # asyncpg looks up an array type on a connection's first use of it (3 statements,
            # which would count in that request): look int[] up now, outside any request
            await conn.fetchval("SELECT $1::int[]", [])

        pool = await asyncpg.create_pool(
            url, min_size=2, max_size=2, init=init, server_settings={"search_path": schema}
        )
        try:
            yield AsyncpgBackend(pool)
        finally:
            await pool.close()
    else:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://"),
            connect_args={"server_settings": {"search_path": schema}},
        )
        ss.instrument(engine)
        try:
            async with engine.connect():  # the dialect's first-connect queries: no request's
                pass
            yield SQLAlchemyBackend(engine)
        finally:
            await engine.dispose()


def make_app(db: Backend, monitor: ss.Monitor, gate: asyncio.Barrier | None = None) -> FastAPI:
    """``/orders-naive``: one SELECT per order. ``/orders``: the same lookups through the
    request's DataLoader. With ``gate``, each handler waits at it after its first query and
    before it answers, so two requests run inside their scopes at the same time."""
    users = ss.request_loader(db.user_names)

    async def hold() -> None:
        if gate is not None:
            await gate.wait()

    app = FastAPI()
    app.add_middleware(ss.RequestScope)
    app.add_middleware(ss.QueryTiming, min_repeats=3, min_total_s=0, monitor=monitor)

    @app.get("/orders-naive")  # naive-endpoint
    async def orders_naive() -> list[dict[str, Any]]:
        async with db.request():
            orders = await db.orders()
            await hold()
            out = []
            for order_id, user_id in orders:
                out.append({"order": order_id, "user": await db.user_name(user_id)})
            await hold()
            return out

    @app.get("/orders")
    async def orders_batched(
        loader: Annotated[ss.DataLoader[int, str], Depends(users)],
    ) -> list[dict[str, Any]]:
        async with db.request():
            orders = await db.orders()
            await hold()
            names = await asyncio.gather(*(loader.load(user_id) for _, user_id in orders))
            await hold()
            return [
                {"order": order_id, "user": name}
                for (order_id, _), name in zip(orders, names, strict=True)
            ]

    return app


DRIVERS = ["asyncpg", "sqlalchemy"]
# Statements each request sends: the orders, then one per order or one ANY($1) (asyncpg's own
# reset of a released connection is not the app's: the watcher leaves it out).
COUNTS = {"asyncpg": (ORDERS + 1, 2), "sqlalchemy": (ORDERS + 1, 2)}


def timing(response: httpx.Response) -> tuple[float, int]:
    """The db metric of ``response``'s ``Server-Timing``: milliseconds and statements."""
    found = TIMING.fullmatch(response.headers["server-timing"])
    assert found is not None, response.headers["server-timing"]
    return float(found.group(1)), int(found.group(2))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def site(driver: str) -> str:
    """Where an N+1 is. SQLAlchemy: the exact line (the stack is followed out of SQLAlchemy's
    greenlet). asyncpg: its record arrives after the query with no stack, so QueryTiming names
    the endpoint the router chose (where its route is declared)."""
    if driver == "sqlalchemy":
        return f" at {__file__}:{line_of('per-order')} in SQLAlchemyBackend.user_name: "
    return f" at {__file__}:{line_of('naive-endpoint')} in make_app.<locals>.orders_naive: "


@pytest.mark.parametrize("driver", DRIVERS)
class TestDetectFastAPI:
    def test_naive_and_fixed_endpoints_one_after_the_other(
        self,
        driver: str,
        arun: Run,
        serving: Serve,
        postgres_url: str,
        schema: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The N+1 endpoint logs one SLP201 warning (its fingerprint, count, request and the
        catalogue's fix; on SQLAlchemy the exact line), says how many statements it sent and
        counts db.n_plus_one once; the DataLoader endpoint returns the same JSON with two
        lookups, no warning and no count."""
        caplog.set_level(logging.WARNING, logger=LOGGER)
        monitor = ss.Monitor()

        async def main() -> tuple[httpx.Response, list[str], dict[str, Any], httpx.Response]:
            async with (
                connect(driver, postgres_url, schema) as db,
                serving(make_app(db, monitor)) as url,
                httpx.AsyncClient(base_url=url) as http,
            ):
                naive = await http.get("/orders-naive")
                logged, counted = warnings(caplog), dict(monitor.report()["counters"])
                fixed = await http.get("/orders")
            return naive, logged, counted, fixed

        naive, logged, counted, fixed = arun(main())
        naive_count, fixed_count = COUNTS[driver]
        assert [200, 200] == [naive.status_code, fixed.status_code]
        assert EXPECTED == naive.json() == fixed.json()

        (message,) = logged
        assert message.startswith("SLP201 query-in-loop at ")
        assert f": {ORDERS} x 'select name from users where id = ?' (" in message
        assert " during GET /orders-naive. " in message
        assert message.endswith(f"Fix: {rule('SLP201').fix}")
        assert site(driver) in message
        assert {"db.n_plus_one": 1} == counted
        dur, queries = timing(naive)
        assert (naive_count, True) == (queries, dur > 0)

        assert [message] == warnings(caplog)  # the fixed endpoint logged nothing
        assert {"db.n_plus_one": 1} == monitor.report()["counters"]
        dur, queries = timing(fixed)
        assert (fixed_count, True) == (queries, dur > 0)

    def test_concurrent_naive_and_fixed_requests_keep_their_own(
        self,
        driver: str,
        arun: Run,
        serving: Serve,
        postgres_url: str,
        schema: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A naive and a fixed request held together by a barrier (each waits for the other
        after its first query and again before it answers, so each one's lookups run while the
        other's scope is open) each get their own count; the one warning is the naive one's."""
        caplog.set_level(logging.WARNING, logger=LOGGER)
        monitor = ss.Monitor()

        async def main() -> list[httpx.Response]:
            gate = asyncio.Barrier(2)
            async with (
                connect(driver, postgres_url, schema) as db,
                serving(make_app(db, monitor, gate)) as url,
                httpx.AsyncClient(base_url=url) as http,
            ):
                return list(await asyncio.gather(http.get("/orders-naive"), http.get("/orders")))

        naive, fixed = arun(main())
        assert EXPECTED == naive.json() == fixed.json()
        assert COUNTS[driver] == (timing(naive)[1], timing(fixed)[1])
        (message,) = warnings(caplog)
        assert f": {ORDERS} x 'select name from users where id = ?' (" in message
        assert " during GET /orders-naive. " in message
        assert site(driver) in message
        assert {"db.n_plus_one": 1} == monitor.report()["counters"]
