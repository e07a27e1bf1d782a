"""A FastAPI service wired with slipstream (docs/frameworks.md shows this file; tests/web runs it).

- ``Lifespan``: the registry (the asyncpg pool, the config cache), the task set (events) and the
  loop watch open with the app and close with it: events drain before the pool closes.
- ``request_loader`` + ``RequestScope``: the role check per member is one query per request,
  not one per member (the N+1), and no request sees another's loader.
- ``Cache(ttl_s=60)``: the config is read from the database once a minute, not per request.
- ``@nonblocking(limit=2)``: the zip export is built in a thread, two at most at once.
- ``CacheControl``: ``/api/config`` may be kept 60 s by browsers and CDNs; nothing else.
- ``TimingMiddleware`` and ``/stats``: per-route latency, loop lag, background task counts.

Run it (needs PostgreSQL; seeds demo rows)::

    python examples/fastapi_service/app.py postgresql://postgres@127.0.0.1:5432/test

No ``from __future__ import annotations`` in this file: FastAPI reads
``Annotated[..., Depends(roles)]`` when it registers a route, and a string annotation can only
name module globals, while ``roles`` here is local to ``create_app``.
"""

import asyncio
import contextlib
import csv
import dataclasses
import io
import sys
import zipfile
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel

import slipstream as ss

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS members (project_id int, user_id int, name text);
CREATE TABLE IF NOT EXISTS roles (user_id int PRIMARY KEY, role text);
CREATE TABLE IF NOT EXISTS config (key text PRIMARY KEY, value text);
CREATE TABLE IF NOT EXISTS events (id serial PRIMARY KEY, kind text, detail text);
"""


class Event(BaseModel):
    kind: str
    detail: str = ""


async def seed(pool: Any, *, members: int = 20) -> None:
    """Demo rows: project 1 with ``members`` members, every fifth one an admin."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(SCHEMA_SQL)
        await conn.execute("TRUNCATE members, roles, config, events")
        await conn.executemany(
            "INSERT INTO members VALUES (1, $1, $2)", [(i, f"user {i}") for i in range(members)]
        )
        await conn.executemany(
            "INSERT INTO roles VALUES ($1, $2)",
            [(i, "admin" if i % 5 == 0 else "viewer") for i in range(members)],
        )
        await conn.execute("INSERT INTO config VALUES ('theme', 'dark'), ('max_upload', '10')")


@ss.nonblocking(limit=2)
def build_zip(rows: list[tuple[int, str]]) -> bytes:
    """CPU and memory work: in a worker thread, two exports at most at once."""
    text = io.StringIO()
    csv.writer(text).writerows([("user_id", "name"), *rows])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("members.csv", text.getvalue())
    return buffer.getvalue()


def create_app(dsn: str, *, schema: str = "public", monitor: ss.Monitor | None = None) -> FastAPI:
    """The service; ``schema`` is the PostgreSQL schema its tables live in."""
    monitor = monitor or ss.monitor
    pool_settings = ss.PoolSettings(url=dsn, size=5, max_overflow=5)

    async def make_pool(settings: ss.PoolSettings) -> Any:
        return await asyncpg.create_pool(
            settings.url, server_settings={"search_path": schema}, **settings.asyncpg()
        )

    async def db() -> Any:  # the app's one pool: made once, closed by the registry
        return await lifespan.registry.get("pg", make_pool, pool_settings)

    async def config_cache() -> ss.Cache:
        return await lifespan.registry.get("config", lambda: ss.Cache(ttl_s=60.0))

    @contextlib.asynccontextmanager
    async def startup(app: FastAPI) -> AsyncIterator[None]:
        await db()  # connect before the first request, and fail startup if the db is down
        await config_cache()
        yield

    lifespan = ss.Lifespan(
        tasks=ss.TaskSet(limit=100, name="events"),
        watch=ss.LoopWatch(slow_s=0.1),
        monitor=monitor,
        inner=startup,
    )

    @monitor.measure("db.roles")
    async def roles_by_user(user_ids: list[int]) -> dict[int, str]:
        rows = await (await db()).fetch(
            "SELECT user_id, role FROM roles WHERE user_id = ANY($1)", user_ids
        )
        return {r["user_id"]: r["role"] for r in rows}

    roles = ss.request_loader(roles_by_user)

    async def can_edit(user_id: int) -> bool:  # called once per member: batched per request
        return await roles.get().load(user_id) == "admin"

    @monitor.measure("db.config")
    async def load_config() -> dict[str, str]:
        rows = await (await db()).fetch("SELECT key, value FROM config")
        return {r["key"]: r["value"] for r in rows}

    async def record_event(event: Event) -> None:
        await (await db()).execute(
            "INSERT INTO events (kind, detail) VALUES ($1, $2)", event.kind, event.detail
        )

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(ss.CacheControl, rules={"/api/config": "public, max-age=60"})
    app.add_middleware(ss.RequestScope)
    app.add_middleware(ss.TimingMiddleware, monitor=monitor)

    @app.get("/api/projects/{project_id}/members")
    async def members(
        project_id: int, loader: Annotated[ss.DataLoader[int, str], Depends(roles)]
    ) -> list[dict[str, Any]]:
        rows = await (await db()).fetch(
            "SELECT user_id, name FROM members WHERE project_id = $1 ORDER BY user_id",
            project_id,
        )
        editable = await asyncio.gather(*(can_edit(r["user_id"]) for r in rows))
        found = await loader.load_many([r["user_id"] for r in rows])  # cached: no query
        return [
            {"user_id": r["user_id"], "name": r["name"], "role": role, "can_edit": edit}
            for r, role, edit in zip(rows, found, editable, strict=True)
        ]

    @app.get("/api/config")
    async def config() -> dict[str, str]:
        return await (await config_cache()).get_or_load("config", load_config)

    @app.post("/api/events", status_code=202)
    async def events(event: Event) -> dict[str, bool]:
        await lifespan.tasks.spawn(record_event(event))  # answered now, stored soon after
        return {"accepted": True}

    @app.get("/api/projects/{project_id}/export.zip")
    async def export(project_id: int) -> Response:
        rows = await (await db()).fetch(
            "SELECT user_id, name FROM members WHERE project_id = $1 ORDER BY user_id",
            project_id,
        )
        body = await build_zip([(r["user_id"], r["name"]) for r in rows])
        return Response(body, media_type="application/zip", headers={"Cache-Control": "no-store"})

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        found = lifespan.statistics()
        loop = found["loop"]
        return {
            "tasks": dataclasses.asdict(found["tasks"]),
            "loop": {"beats": loop.beats, "lag_p99_s": loop.lag_p99_s, "blocks": loop.blocks},
            "monitor": monitor.report(),
        }

    return app


async def _seed(dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        await seed(pool)
    finally:
        await pool.close()


if __name__ == "__main__":
    import uvicorn

    url = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/test"
    asyncio.run(_seed(url))
    uvicorn.run(create_app(url), host="127.0.0.1", port=8000, log_level="info")
