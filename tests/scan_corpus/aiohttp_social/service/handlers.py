import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web

from service.db import Database
from service.feeds import fetch_feed, snapshot_many, store_snapshot

routes = web.RouteTableDef()
REPORT_PATH = Path("/srv/reports/daily.csv")
BACKGROUND: set[asyncio.Task] = set()


@routes.get("/users/{user_id}/friends")
async def friends(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.pool()
    user_id = int(request.match_info["user_id"])
    async with pool.acquire() as conn:
        friend_ids = [r["friend_id"] for r in await conn.fetch("SELECT friend_id FROM friends WHERE user_id = $1", user_id)]  # ok: SLP201 the iterable runs once
        names = []
        for fid in friend_ids:
            row = await conn.fetchrow("SELECT name FROM users WHERE id = $1", fid)  # expect: SLP201  # ok: SLP301
            names.append(row["name"])
        count = await conn.fetchval("SELECT count(*) FROM friends WHERE user_id = $1", user_id)  # ok: SLP201 not in a loop
    return web.json_response({"names": names, "count": count})


@routes.get("/users/{user_id}/friends/fast")
async def friends_fast(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.pool()
    user_id = int(request.match_info["user_id"])
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT u.name FROM friends f JOIN users u ON u.id = f.friend_id WHERE f.user_id = $1",
            user_id,
        )
    return web.json_response({"names": [r["name"] for r in rows]})


@routes.post("/visits")
async def record_visits(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.pool()
    visits = await request.json()
    async with pool.acquire() as conn:
        for v in visits:
            await conn.execute("INSERT INTO visits (user_id, page) VALUES ($1, $2)", v["user"], v["page"])  # expect: SLP202  # ok: SLP301
        await conn.executemany(  # ok: SLP202 one batched call after the loop
            "INSERT INTO visits_archive (user_id, page) VALUES ($1, $2)",
            [(v["user"], v["page"]) for v in visits],
        )
    return web.json_response({"ok": True})


@routes.post("/feeds/refresh")
async def refresh_feeds(request: web.Request) -> web.Response:
    feeds = await request.json()
    bodies = {}
    async with aiohttp.ClientSession() as http:  # expect: SLP102
        for feed in feeds:
            bodies[feed["name"]] = await fetch_feed(http, feed["url"])  # expect: SLP301
    digests = snapshot_many(bodies)  # expect: SLP401
    first = store_snapshot("latest", next(iter(bodies.values())))  # expect: SLP401
    return web.json_response({"digests": digests, "first": first})


@routes.post("/feeds/refresh/offloaded")
async def refresh_feeds_offloaded(request: web.Request) -> web.Response:
    feeds = await request.json()
    http: aiohttp.ClientSession = request.app["http"]
    bodies = {}
    for feed in feeds:
        bodies[feed["name"]] = await fetch_feed(http, feed["url"])  # expect: SLP301
    digests = await asyncio.to_thread(snapshot_many, bodies)  # ok: SLP401 passed to a thread
    loop = asyncio.get_running_loop()
    first = await loop.run_in_executor(None, store_snapshot, "latest", b"")  # ok: SLP401
    return web.json_response({"digests": digests, "first": first})


@routes.get("/reports/daily")
async def daily_report(request: web.Request) -> web.Response:
    with open(REPORT_PATH, "rb") as f:  # expect: SLP401
        data = f.read()  # ok: SLP401 reported once, at open()
    size = REPORT_PATH.name  # ok: SLP401 a pure path attribute
    return web.Response(body=data, headers={"X-Name": size})


@routes.get("/reports/daily/offloaded")
async def daily_report_offloaded(request: web.Request) -> web.Response:
    data = await asyncio.to_thread(REPORT_PATH.read_bytes)  # ok: SLP401 passed, not called

    def _stat() -> int:
        return REPORT_PATH.stat().st_size + len(REPORT_PATH.read_bytes())  # ok: SLP401 nested def run in a thread

    size = await asyncio.to_thread(_stat)
    return web.Response(body=data, headers={"X-Size": str(size)})


async def _refresh_stats(db: Database) -> None:
    pool = await db.pool()
    await pool.execute("REFRESH MATERIALIZED VIEW user_stats")


@routes.post("/stats/refresh")
async def refresh_stats(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    asyncio.create_task(_refresh_stats(db))  # expect: SLP502
    return web.json_response({"queued": True})


@routes.post("/stats/refresh/kept")
async def refresh_stats_kept(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    task = asyncio.create_task(_refresh_stats(db))  # ok: SLP502 kept in a set
    BACKGROUND.add(task)
    task.add_done_callback(BACKGROUND.discard)
    return web.json_response({"queued": True})


@routes.get("/stream")
async def stream_rows(request: web.Request) -> web.StreamResponse:
    db: Database = request.app["db"]
    pool = await db.pool()
    http: aiohttp.ClientSession = request.app["http"]
    response = web.StreamResponse()
    await response.prepare(request)
    async with pool.acquire() as conn:
        async with conn.transaction():
            async for record in conn.cursor("SELECT id, url FROM pages"):
                await http.post("https://indexer.internal/page", json={"id": record["id"]})  # ok: SLP301 async for over a stream
                await response.write(f"{record['id']}\n".encode())
    return response


def make_app() -> web.Application:
    app = web.Application()
    app["db"] = Database()
    app.add_routes(routes)
    return app
