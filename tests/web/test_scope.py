"""Per-request DataLoaders: one query per request for N lookups against a real SQLite file,
over real HTTP; never one loader (or one cache) for two requests.

No ``from __future__ import annotations``: the apps are built inside functions, and FastAPI can
resolve ``Annotated[..., Depends(roles)]`` for a local ``roles`` only as a live annotation."""

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

import slipstream as ss

from .conftest import Serve

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class RoleTable:
    """A roles table in a SQLite file; ``queries`` records the keys of every SELECT."""

    def __init__(self, path: Path, users: int = 50) -> None:
        self.path = path
        self.queries: list[list[int]] = []
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE roles (user_id INTEGER PRIMARY KEY, role TEXT)")
            db.executemany(
                "INSERT INTO roles VALUES (?, ?)",
                [(i, "admin" if i % 10 == 0 else "member") for i in range(users)],
            )

    def _select(self, ids: list[int]) -> dict[int, str]:
        with sqlite3.connect(self.path) as db:
            marks = ",".join("?" * len(ids))
            rows = db.execute(f"SELECT user_id, role FROM roles WHERE user_id IN ({marks})", ids)
            return dict(rows.fetchall())

    async def roles_by_user(self, ids: list[int]) -> dict[int, str]:
        self.queries.append(sorted(ids))
        return await ss.offload(self._select, ids)


@pytest.fixture
def table(tmp_path: Path) -> RoleTable:
    return RoleTable(tmp_path / "roles.db")


def member_app(table: RoleTable, *, middleware: bool = True) -> tuple[FastAPI, Any]:
    roles = ss.request_loader(table.roles_by_user)
    app = FastAPI()
    if middleware:
        app.add_middleware(ss.RequestScope)

    async def is_admin(user: int) -> bool:  # deep code: no loader passed down
        return await roles.get().load(user) == "admin"

    async def second(loader: Annotated[ss.DataLoader[int, str], Depends(roles)]) -> int:
        return id(loader)

    @app.get("/members")
    async def members(
        n: int,
        loader: Annotated[ss.DataLoader[int, str], Depends(roles)],
        other: Annotated[int, Depends(second)],
    ) -> dict[str, Any]:
        ids = list(range(n))
        half = n // 2
        found = await asyncio.gather(
            *(loader.load(i) for i in ids[:half]), *(is_admin(i) for i in ids[half:])
        )
        return {
            "admins": [i for i, r in zip(ids, found, strict=True) if r in ("admin", True)],
            "same": loader is roles.get() and id(loader) == other,
        }

    return app, roles


class TestPerRequestLoader:
    def test_n_lookups_are_one_query_per_request(
        self, arun: Run, serving: Serve, table: RoleTable
    ) -> None:
        """Three requests of 20 role checks each make three SELECTs of 20 ids, and the
        endpoint, a sub-dependency and code below it share one loader within each request."""
        app, _ = member_app(table)

        async def main() -> list[Any]:
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                return [(await http.get("/members", params={"n": 20})).json() for _ in range(3)]

        bodies = arun(main())
        assert [{"admins": [0, 10], "same": True}] * 3 == bodies
        assert [list(range(20))] * 3 == table.queries

    def test_two_requests_in_flight_never_share_a_loader_or_its_cache(
        self, arun: Run, serving: Serve, table: RoleTable
    ) -> None:
        """Two requests held in flight together get two loaders: a value one request primed is
        invisible to the other, which queries the database for the same key itself."""
        roles = ss.request_loader(table.roles_by_user)
        app = FastAPI()
        app.add_middleware(ss.RequestScope)
        arrived: list[int] = []
        both_here = asyncio.Event()

        @app.get("/as/{user}")
        async def as_user(
            user: int, loader: Annotated[ss.DataLoader[int, str], Depends(roles)]
        ) -> dict[str, Any]:
            if user == 1:
                loader.prime(7, "what user 1 may see")
            arrived.append(id(loader))
            if len(arrived) == 2:
                both_here.set()
            await both_here.wait()  # both loaders exist at once: ids cannot be reused
            return {"loader": id(loader), "seven": await loader.load(7)}

        async def main() -> list[Any]:
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                one, two = await asyncio.gather(http.get("/as/1"), http.get("/as/2"))
                return [one.json(), two.json()]

        one, two = arun(main())
        assert one["loader"] != two["loader"]
        assert "what user 1 may see" == one["seven"]
        assert "member" == two["seven"]
        assert [[7]] == table.queries  # only the second request went to the database

    def test_without_the_middleware_the_dependency_is_still_per_request(
        self, arun: Run, serving: Serve, table: RoleTable
    ) -> None:
        """With no RequestScope, Depends still gives one loader per request (FastAPI shares a
        dependency's value within a request) and a fresh one for the next; get() below the
        endpoint is refused with a hint to add the middleware."""
        roles = ss.request_loader(table.roles_by_user)
        app = FastAPI()

        async def second(loader: Annotated[ss.DataLoader[int, str], Depends(roles)]) -> int:
            return id(loader)

        @app.get("/")
        async def home(
            loader: Annotated[ss.DataLoader[int, str], Depends(roles)],
            other: Annotated[int, Depends(second)],
        ) -> dict[str, Any]:
            await loader.load_many([1, 2, 3])
            try:
                roles.get()
                refused = ""
            except RuntimeError as exc:
                refused = str(exc)
            return {"same": id(loader) == other, "refused": refused}

        async def main() -> list[Any]:
            async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
                return [(await http.get("/")).json() for _ in range(2)]

        first, second_body = arun(main())
        assert first["same"]
        assert second_body["same"]
        assert "HINT: add the middleware" in first["refused"]
        assert [[1, 2, 3], [1, 2, 3]] == table.queries  # no cache carried between requests


class TestRequestScope:
    def test_one_loader_per_scope_and_a_clean_cache_after(self, arun: Run) -> None:
        """Inside a scope get() returns one loader; the next scope gets another, and the old
        one's cache is cleared when its scope ends."""
        calls: list[list[int]] = []

        async def double(keys: list[int]) -> dict[int, int]:
            calls.append(keys)
            return {k: 2 * k for k in keys}

        loader = ss.request_loader(double)

        async def main() -> tuple[Any, ...]:
            with ss.request_scope():
                first = loader.get()
                assert first is loader.get()
                await first.load(4)
            with ss.request_scope():
                second = loader.get()
                await second.load(4)
            return first, second

        first, second = arun(main())
        assert first is not second
        assert [[4], [4]] == calls
        assert "cache_hits=0" in repr(first)

    def test_a_task_that_outlives_its_request_is_refused(self, arun: Run) -> None:
        """A task started inside a scope that calls get() after the scope ended raises a
        RuntimeError saying the request scope has ended; outside any scope, none is open."""

        async def nothing(keys: list[int]) -> list[int]:
            return keys

        loader = ss.request_loader(nothing)
        later = asyncio.Event()

        async def background() -> None:
            await later.wait()
            loader.get()

        async def main() -> BaseException | None:
            with ss.request_scope():
                task = asyncio.get_running_loop().create_task(background())
            later.set()
            await asyncio.wait([task])
            return task.exception()

        error = arun(main())
        assert isinstance(error, RuntimeError)
        assert "the request scope has ended" in str(error)
        with pytest.raises(RuntimeError, match="no request scope is open"):
            loader.get()

    def test_wrong_loader_options_fail_when_declared(self) -> None:
        """request_loader checks DataLoader's options at declaration, naming the parameter."""

        async def nothing(keys: list[int]) -> list[int]:
            return keys

        with pytest.raises(ValueError, match="batch_size"):
            ss.request_loader(nothing, batch_size=0)
        with pytest.raises(TypeError, match="batch_fn"):
            ss.request_loader("roles")  # type: ignore[arg-type]

    def test_lifespan_messages_pass_through(self, arun: Run) -> None:
        """The middleware opens no scope for a lifespan message and hands it on untouched."""
        seen: list[bool] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            async def nothing(keys: list[int]) -> list[int]:
                return keys

            try:
                ss.request_loader(nothing).get()
                seen.append(True)
            except RuntimeError:
                seen.append(False)

        async def receive() -> dict[str, Any]:
            return {}

        async def send(message: Any) -> None:
            pass

        wrapped = ss.RequestScope(app)
        arun(wrapped({"type": "lifespan"}, receive, send))
        arun(wrapped({"type": "http", "path": "/"}, receive, send))
        assert [False, True] == seen
