import asyncio

import asyncpg


class Database:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None

    async def get_pool(self) -> asyncpg.Pool:
        if self.pool is None:  # expect: SLP503
            self.pool = await asyncpg.create_pool(self.dsn, min_size=2, max_size=10)
        return self.pool

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


class ReportingDatabase:
    """The read replica: created once under a lock."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:  # ok: SLP503 checked and created under a lock
                self._pool = await asyncpg.create_pool(self.dsn, max_size=4)
        return self._pool
