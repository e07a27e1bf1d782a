import asyncio
import json

import asyncpg

from ingest.codec import Event

INSERT_EVENT = (
    "INSERT INTO events (event_id, user_id, kind, ts, payload) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (event_id) DO NOTHING"
)


class EventSink:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get_pool(self) -> asyncpg.Pool:
        if self.pool is None:  # expect: SLP503
            self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=8)
        return self.pool

    async def get_pool_safe(self) -> asyncpg.Pool:
        async with self._lock:
            if self.pool is None:  # ok: SLP503 under lock
                self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=8)
        return self.pool

    async def write_event(self, event: Event) -> None:
        pool = await self.get_pool_safe()
        await pool.execute(
            INSERT_EVENT, event.event_id, event.user_id, event.kind, event.ts, json.dumps(event.payload)
        )

    async def write_many(self, events: list[Event]) -> None:
        pool = await self.get_pool_safe()
        async with pool.acquire() as conn:
            await conn.executemany(  # ok: SLP202 batched
                INSERT_EVENT,
                [(e.event_id, e.user_id, e.kind, e.ts, json.dumps(e.payload)) for e in events],
            )

    async def write_counters(self, conn: asyncpg.Connection, counts: dict[int, int]) -> None:
        async with conn.transaction():
            for user_id, n in counts.items():
                await conn.execute(  # expect: SLP202
                    "UPDATE user_stats SET events = events + $2 WHERE user_id = $1", user_id, n
                )
