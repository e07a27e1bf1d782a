import asyncio
import os

import aiohttp
from aiohttp import web

from inventory.db import Database
from inventory.routes import routes


async def refresh_suppliers(app: web.Application) -> None:
    while True:
        pool = await app["db"].get_pool()
        rows = await pool.fetch("SELECT name, url FROM supplier WHERE active")
        app["suppliers"] = [dict(r) for r in rows]
        await asyncio.sleep(300)


async def on_startup(app: web.Application) -> None:
    app["http"] = aiohttp.ClientSession()
    app["background"] = set()
    app["refresher"] = asyncio.create_task(refresh_suppliers(app))  # ok: SLP502 kept on the app


async def on_cleanup(app: web.Application) -> None:
    app["refresher"].cancel()
    await app["http"].close()
    await app["db"].close()


def make_app() -> web.Application:
    app = web.Application()
    app["db"] = Database(os.environ["DATABASE_URL"])
    app["suppliers"] = []
    app.add_routes(routes)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


if __name__ == "__main__":
    web.run_app(make_app())
