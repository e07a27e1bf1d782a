import asyncio
import json
import time

from bson import ObjectId
from starlette.requests import Request
from starlette.responses import JSONResponse

from svc.db import cache, db, sync_client


async def user_cards(request: Request) -> JSONResponse:
    body = await request.json()
    cards = []
    for uid in body["ids"]:
        user = await db.users.find_one({"_id": ObjectId(uid)}, {"name": 1, "avatar": 1})  # expect: SLP201
        if user:
            orders = await db.orders.count_documents({"user_id": user["_id"]})  # expect: SLP201
            cards.append({"name": user["name"], "orders": orders})
    return JSONResponse(cards)


async def user_cards_fast(request: Request) -> JSONResponse:
    body = await request.json()
    ids = [ObjectId(u) for u in body["ids"]]
    users = await db.users.find({"_id": {"$in": ids}}, {"name": 1}).to_list(length=len(ids))
    pipeline = [{"$match": {"user_id": {"$in": ids}}}, {"$group": {"_id": "$user_id", "n": {"$sum": 1}}}]
    counts = {c["_id"]: c["n"] async for c in db.orders.aggregate(pipeline)}
    return JSONResponse([{"name": u["name"], "orders": counts.get(u["_id"], 0)} for u in users])


async def record_events(request: Request) -> JSONResponse:
    events = await request.json()
    for event in events:
        event["ts"] = time.time()
        await db.events.insert_one(event)  # expect: SLP202
    return JSONResponse({"stored": len(events)})


async def record_events_fast(request: Request) -> JSONResponse:
    events = await request.json()
    now = time.time()
    await db.events.insert_many([{**e, "ts": now} for e in events], ordered=False)
    return JSONResponse({"stored": len(events)})


async def close_stale_orders(request: Request) -> JSONResponse:
    cutoff = time.time() - 86400
    closed = 0
    async for order in db.orders.find({"status": "open", "updated": {"$lt": cutoff}}):
        await db.orders.update_one({"_id": order["_id"]}, {"$set": {"status": "closed"}})  # expect: SLP202
        closed += 1
    return JSONResponse({"closed": closed})


async def product_views(request: Request) -> JSONResponse:
    ids = request.query_params["ids"].split(",")
    views = {}
    for pid in ids:
        views[pid] = int(await cache.get(f"views:{pid}") or 0)  # expect: SLP201
    return JSONResponse(views)


async def product_views_fast(request: Request) -> JSONResponse:
    ids = request.query_params["ids"].split(",")
    values = await cache.mget([f"views:{pid}" for pid in ids])
    return JSONResponse({pid: int(v or 0) for pid, v in zip(ids, values)})


async def warm_cache(request: Request) -> JSONResponse:
    products = await db.products.find({}, {"sku": 1, "price": 1}).to_list(length=5000)
    for p in products:
        await cache.set(f"price:{p['sku']}", json.dumps(p["price"]), ex=3600)  # expect: SLP202
    return JSONResponse({"warmed": len(products)})


async def warm_cache_pipelined(request: Request) -> JSONResponse:
    products = await db.products.find({}, {"sku": 1, "price": 1}).to_list(length=5000)
    pipe = cache.pipeline(transaction=False)
    for p in products:
        pipe.set(f"price:{p['sku']}", json.dumps(p["price"]), ex=3600)  # ok: SLP202 queued in a pipeline, one round trip
    await pipe.execute()
    return JSONResponse({"warmed": len(products)})


async def health(request: Request) -> JSONResponse:
    sync_client.admin.command("ping")  # expect: SLP401
    return JSONResponse({"ok": True})


async def health_offloaded(request: Request) -> JSONResponse:
    await asyncio.to_thread(sync_client.admin.command, "ping")  # ok: SLP401 run in a worker thread
    return JSONResponse({"ok": True})
