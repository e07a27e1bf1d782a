import asyncio
import logging
import subprocess
import time

from bot.api import ChatAPI
from bot.storage import Storage

log = logging.getLogger("bot")


class Bot:
    def __init__(self, token: str, db_path: str) -> None:
        self.api = ChatAPI(token)
        self.storage = Storage(db_path)
        self.cooldowns: dict[int, float] = {}  # ok: SLP501 entries are popped when they expire
        self.user_cache: dict[int, dict] = {}  # ok: SLP501 bounded by a len() check
        self._tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()
        self.announce_channels: list[int] = []

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)  # ok: SLP502 kept in self._tasks
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def on_message(self, message: dict) -> None:
        guild = message["guild_id"]
        prefix = await self.storage.prefix(guild)
        if not message["content"].startswith(prefix):
            asyncio.create_task(self.log_message(message))  # expect: SLP502
            return
        if self.on_cooldown(message["author"]["id"]):
            return
        command, *args = message["content"][len(prefix):].split()
        handler = getattr(self, f"cmd_{command}", None)
        if handler is not None:
            self.spawn(handler(message, *args))

    def on_cooldown(self, user_id: int) -> bool:
        now = time.monotonic()
        until = self.cooldowns.get(user_id)
        if until is not None and until < now:
            self.cooldowns.pop(user_id)
            until = None
        if until is None:
            self.cooldowns[user_id] = now + 3
            return False
        return True

    async def log_message(self, message: dict) -> None:
        log.debug("message %s in %s", message["id"], message["channel_id"])

    async def cached_user(self, user_id: int) -> dict:
        if user_id not in self.user_cache:  # expect: SLP503
            if len(self.user_cache) > 5000:
                self.user_cache.clear()
            self.user_cache[user_id] = await self.api.user(user_id)
        return self.user_cache[user_id]

    async def cmd_whois(self, message: dict, *mentions: str) -> None:
        lines = []
        for mention in mentions:
            user = await self.cached_user(int(mention.strip("<@!>")))  # expect: SLP301
            lines.append(f"{user['username']} joined {user['created_at']}")
        await self.api.send(message["channel_id"], "\n".join(lines))

    async def cmd_announce(self, message: dict, *words: str) -> None:
        text = " ".join(words)
        for channel_id in self.announce_channels:
            await self.api.send(channel_id, text)
            await asyncio.sleep(1.0)  # ok: SLP301 deliberate throttle (rate limit)

    async def cmd_broadcast(self, message: dict, *words: str) -> None:
        text = " ".join(words)
        for channel_id in self.announce_channels:
            await self.api.send(channel_id, text)  # expect: SLP301

    async def cmd_purge_log(self, message: dict) -> None:
        async with self._lock:
            for channel_id in self.announce_channels:
                await self.api.send(channel_id, "log rotated")  # ok: SLP301 serialised under a lock

    async def cmd_update(self, message: dict) -> None:
        result = subprocess.run(["git", "pull", "--ff-only"], capture_output=True, text=True)  # expect: SLP401
        await self.api.send(message["channel_id"], result.stdout[-1500:] or "up to date")

    async def cmd_version(self, message: dict) -> None:
        out = await asyncio.to_thread(  # ok: SLP401 run in a worker thread
            subprocess.run, ["git", "rev-parse", "HEAD"], capture_output=True, text=True
        )
        await self.api.send(message["channel_id"], out.stdout.strip())

    async def cmd_slowmode(self, message: dict, seconds: str = "5") -> None:
        await self.api.send(message["channel_id"], f"slowmode {seconds}s")
        time.sleep(int(seconds))  # expect: SLP401
        await self.api.send(message["channel_id"], "slowmode off")

    async def cmd_archive(self, message: dict) -> None:
        before = None
        collected = []
        for _page in range(50):
            batch = await self.api.history(message["channel_id"], before)  # ok: SLP301 each page starts before the last one
            if not batch:
                break
            collected.extend(batch)
            before = batch[-1]["id"]
        await self.api.send(message["channel_id"], f"archived {len(collected)} messages")

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(30)
            log.debug("alive, %d tasks", len(self._tasks))

    async def run(self, events: asyncio.Queue) -> None:
        asyncio.ensure_future(self.heartbeat())  # expect: SLP502
        reaper = asyncio.create_task(self.reap())  # expect: SLP502
        while True:
            event = await events.get()
            if event is None:
                break
            await self.on_message(event)
        await self.api.close()

    async def reap(self) -> None:
        while True:
            await asyncio.sleep(60)
            now = time.monotonic()
            for user_id, until in list(self.cooldowns.items()):
                if until < now:
                    del self.cooldowns[user_id]
