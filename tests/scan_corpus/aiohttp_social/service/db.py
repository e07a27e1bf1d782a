import asyncio
import os

import asyncpg

DSN = os.environ.get("DSN", "postgresql://social@db/social")


class Database:
    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._ready = False

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:  # expect: SLP503
            self._pool = await asyncpg.create_pool(DSN, min_size=2, max_size=10)
        return self._pool

    async def safe_pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:  # ok: SLP503 under the lock
                self._pool = await asyncpg.create_pool(DSN, min_size=2, max_size=10)
        return self._pool

    async def migrate(self) -> None:
        if not self._ready:  # expect: SLP503
            pool = await self.safe_pool()
            await pool.execute("CREATE TABLE IF NOT EXISTS visits (user_id int, page text)")
            self._ready = True

    async def close(self) -> None:
        if self._pool is not None:  # ok: SLP503 no assignment after the await
            await self._pool.close()
