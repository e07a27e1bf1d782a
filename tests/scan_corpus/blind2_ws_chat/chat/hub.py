import asyncio
import json
import logging

import redis.asyncio as aioredis
from aiohttp import web

from chat.dedupe import first_time

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.rooms: dict[str, dict[str, asyncio.Queue]] = {}
        self._name_cache: dict[str, str] = {}  # expect: SLP501
        self._history_cache: dict[str, list[str]] = {}  # expect: SLP501
        self._listeners: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()

    def online(self, room: str) -> list[str]:
        return list(self.rooms.get(room, {}))

    async def display_name(self, user_id: str) -> str:
        name = self._name_cache.get(user_id)
        if name is None:
            name = await self.redis.hget(f"user:{user_id}", "name") or user_id
            self._name_cache[user_id] = name
        return name

    async def history(self, room: str) -> list[str]:
        if room not in self._history_cache:  # expect: SLP503
            self._history_cache[room] = await self.redis.lrange(f"history:{room}", -50, -1)
        return self._history_cache[room]

    async def join(self, room: str, user_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        self.rooms.setdefault(room, {})[user_id] = queue
        if room not in self._listeners:  # ok: SLP503 no await before the assignment
            self._listeners[room] = asyncio.create_task(self._listen(room))  # ok: SLP502 kept in a dict
        asyncio.create_task(self.redis.publish(f"presence:{room}", f"+{user_id}"))  # expect: SLP502
        return queue

    async def leave(self, room: str, user_id: str) -> None:
        self.rooms.get(room, {}).pop(user_id, None)
        task = asyncio.create_task(self.redis.publish(f"presence:{room}", f"-{user_id}"))  # ok: SLP502 kept
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self, room: str, user_id: str, text: str) -> None:
        payload = json.dumps({"user": user_id, "text": text})
        await self.redis.rpush(f"history:{room}", payload)
        await self.redis.publish(f"room:{room}", payload)

    async def _listen(self, room: str) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(f"room:{room}")
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)  # ok: SLP201 while loop
            if message is None:
                continue
            data = json.loads(message["data"])
            if not first_time(f"{room}:{data.get('id')}"):
                continue
            for queue in list(self.rooms.get(room, {}).values()):
                if not queue.full():
                    queue.put_nowait(message["data"])

    async def names_of(self, room: str) -> list[str]:
        ids = await self.redis.smembers(f"members:{room}")
        names = []
        for uid in ids:
            names.append(await self.display_name(uid))  # expect: SLP201
        return names

    async def names_of_fast(self, room: str) -> list[str | None]:
        ids = sorted(await self.redis.smembers(f"members:{room}"))
        return await self.redis.hmget("user_names", ids)  # ok: SLP201 one call for all ids

    async def archive(self, rooms: list[str]) -> None:
        for room in rooms:
            items = await self.redis.lrange(f"history:{room}", 0, -1)  # expect: SLP201
            await self.redis.set(f"archive:{room}", json.dumps(items))  # expect: SLP202
