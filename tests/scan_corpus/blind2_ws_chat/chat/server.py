import asyncio
import json

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from chat.commands import dispatch
from chat.hub import Hub

REDIS_URL = "redis://localhost:6379/1"
EMOJI_PATH = "/etc/chat/emoji.json"

routes = web.RouteTableDef()


async def _writer(ws: web.WebSocketResponse, queue: asyncio.Queue) -> None:
    while True:
        await ws.send_str(await queue.get())


@routes.get("/ws/{room}")
async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    hub: Hub = request.app["hub"]
    room = request.match_info["room"]
    user = request.query["user"]
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    for line in await hub.history(room):
        await ws.send_str(line)  # ok: SLP301 ordered writes to one socket
    queue = await hub.join(room, user)
    writer = asyncio.create_task(_writer(ws, queue))  # ok: SLP502 cancelled below
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            if msg.data.startswith("/"):
                reply = await dispatch(hub, user, msg.data)
                if reply:
                    await ws.send_str(reply)
            else:
                await hub.publish(room, user, msg.data)
    finally:
        writer.cancel()
        await hub.leave(room, user)
    return ws


@routes.get("/rooms/{room}/members")
async def members(request: web.Request) -> web.Response:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)  # expect: SLP102
    try:
        ids = await client.smembers(f"members:{request.match_info['room']}")
    finally:
        await client.aclose()
    return web.json_response(sorted(ids))


@routes.get("/emoji")
async def emoji(request: web.Request) -> web.Response:
    with open(EMOJI_PATH) as fh:  # expect: SLP401
        table = json.load(fh)
    return web.json_response(table)


async def on_startup(app: web.Application) -> None:
    app["redis"] = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    app["hub"] = Hub(app["redis"])


def make_app() -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    app.on_startup.append(on_startup)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), port=8080)
