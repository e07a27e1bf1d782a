import asyncio
import csv
import logging

import aiohttp
from aiohttp import web

from inventory.db import Database
from inventory.suppliers import best_price, supplier_price

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def audit(db: Database, action: str, detail: str) -> None:
    pool = await db.get_pool()
    await pool.execute("INSERT INTO audit (action, detail) VALUES ($1, $2)", action, detail)


@routes.get("/items")
async def list_items(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.get_pool()
    skus = request.query.get("skus", "").split(",")
    items = []
    async with pool.acquire() as conn:
        for sku in skus:
            row = await conn.fetchrow("SELECT sku, name, qty FROM item WHERE sku = $1", sku)  # expect: SLP201
            if row is not None:
                items.append(dict(row))
    return web.json_response(items)


@routes.get("/items/bulk")
async def list_items_bulk(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.get_pool()
    skus = request.query.get("skus", "").split(",")
    rows = await pool.fetch("SELECT sku, name, qty FROM item WHERE sku = ANY($1::text[])", skus)
    return web.json_response([dict(r) for r in rows])


@routes.post("/stock")
async def update_stock(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.get_pool()
    changes = await request.json()
    async with pool.acquire() as conn:
        async with conn.transaction():
            for change in changes:
                await conn.execute(  # expect: SLP202
                    "UPDATE item SET qty = qty + $1 WHERE sku = $2", change["delta"], change["sku"]
                )
    asyncio.create_task(audit(db, "stock", f"{len(changes)} changes"))  # expect: SLP502
    return web.json_response({"ok": True})


@routes.post("/stock/bulk")
async def update_stock_bulk(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.get_pool()
    changes = await request.json()
    async with pool.acquire() as conn:
        await conn.executemany(
            "UPDATE item SET qty = qty + $1 WHERE sku = $2",
            [(c["delta"], c["sku"]) for c in changes],
        )
    request.app["background"].add(asyncio.create_task(audit(db, "stock", "bulk")))  # ok: SLP502 kept in a set
    return web.json_response({"ok": True})


@routes.get("/items/{sku}/price")
async def price(request: web.Request) -> web.Response:
    sku = request.match_info["sku"]
    suppliers = request.app["suppliers"]
    async with aiohttp.ClientSession() as session:  # expect: SLP102
        best = await best_price(session, suppliers, sku)
    return web.json_response({"sku": sku, "best": best})


@routes.get("/items/{sku}/quotes")
async def quotes(request: web.Request) -> web.Response:
    sku = request.match_info["sku"]
    session: aiohttp.ClientSession = request.app["http"]
    out = {}
    for supplier in request.app["suppliers"]:
        out[supplier["name"]] = await supplier_price(session, supplier, sku)  # expect: SLP301
    return web.json_response(out)


@routes.get("/items/{sku}/first-quote")
async def first_quote(request: web.Request) -> web.Response:
    sku = request.match_info["sku"]
    session: aiohttp.ClientSession = request.app["http"]
    for supplier in request.app["suppliers"]:
        value = await supplier_price(session, supplier, sku)  # ok: SLP301 stops at the first answer
        if value is not None:
            return web.json_response({"supplier": supplier["name"], "price": value})
    raise web.HTTPNotFound()


@routes.get("/export")
async def export(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.get_pool()
    rows = await pool.fetch("SELECT sku, name, qty FROM item ORDER BY sku")
    with open("/tmp/inventory.csv", "w", newline="") as fh:  # expect: SLP401
        writer = csv.writer(fh)
        writer.writerows([tuple(r) for r in rows])
    return web.FileResponse("/tmp/inventory.csv")


@routes.post("/reindex")
async def reindex(request: web.Request) -> web.Response:
    db: Database = request.app["db"]
    pool = await db.get_pool()
    async with pool.acquire() as conn:
        async with conn.transaction():
            async for row in conn.cursor("SELECT sku, name FROM item"):
                await conn.execute(  # expect: SLP202
                    "INSERT INTO search_index (sku, terms) VALUES ($1, to_tsvector($2))",
                    row["sku"],
                    row["name"],
                )
    return web.json_response({"ok": True})
