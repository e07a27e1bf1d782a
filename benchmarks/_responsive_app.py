"""The server side of bench_responsiveness: seed 004's API with its pipeline, naive or not.

POST /run?mode=naive|slipstream&db=PATH-or-URL starts the pipeline in the background: delete
the "genes" half of a cache table (200,000 rows) in a SQLite file or, when ``db`` is a
``postgresql://`` URL, in PostgreSQL; then a 2 s CPU-bound "refresh". GET /health
answers at once if the loop is free. GET /done reports whether the pipeline finished, the line
LoopWatch named, and the loop's lag p99.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import slipstream as ss


def refresh_materialized_view(seconds: float) -> int:
    """CPU-bound work standing in for the 2 s materialised-view refresh."""
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(1000)) % 7
    return n


def delete_cache_namespace(db: str) -> int:
    """Seed 004's before: one DELETE of the whole namespace, with a sync driver, on the loop."""
    if db.startswith("postgresql"):
        import psycopg2

        pg = psycopg2.connect(db)
        try:
            with pg, pg.cursor() as cur:
                cur.execute("DELETE FROM cache WHERE ns = 'genes'")
                return int(cur.rowcount)
        finally:
            pg.close()
    conn = sqlite3.connect(db)
    try:
        with conn:
            return int(conn.execute("DELETE FROM cache WHERE ns = 'genes'").rowcount)
    finally:
        conn.close()


STATE: dict[str, Any] = {"done": True, "culprits": [], "lag_p99_ms": 0.0}


async def pipeline(mode: str, db: str) -> None:
    STATE.update(done=False, culprits=[], lag_p99_ms=0.0)
    async with ss.LoopWatch(
        slow_s=0.05, on_block=lambda r: STATE["culprits"].append(r.function)
    ) as watch:
        await asyncio.sleep(0.2)  # let the client see the idle baseline too
        if mode == "naive":
            delete_cache_namespace(db)  # noqa: SLP401 - seed 004's blocking delete, on purpose
            refresh_materialized_view(2.0)
        elif db.startswith("postgresql"):
            import asyncpg

            pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
            try:
                await ss.chunked_delete(
                    pool, "cache", where="ns = $1", params=("genes",), batch_size=2000
                )
            finally:
                await pool.close()
            await ss.offload(refresh_materialized_view, 2.0, kind="process")
        else:
            await ss.chunked_delete(db, "cache", where="ns = ?", params=("genes",), batch_size=2000)
            await ss.offload(refresh_materialized_view, 2.0, kind="process")
        await asyncio.sleep(0.2)
    STATE.update(done=True, lag_p99_ms=watch.statistics().lag_p99_s * 1000)


TASKS = ss.TaskSet(limit=1, policy="reject")


async def run(request: Request) -> JSONResponse:
    await TASKS.spawn(pipeline(request.query_params["mode"], request.query_params["db"]))
    return JSONResponse({"started": True})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def done(request: Request) -> JSONResponse:
    return JSONResponse(STATE)


app = Starlette(
    routes=[Route("/run", run, methods=["POST"]), Route("/health", health), Route("/done", done)]
)

if __name__ == "__main__":
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    asyncio.run(server.serve(sockets=[sock]))
