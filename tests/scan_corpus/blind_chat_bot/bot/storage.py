import aiosqlite


class Storage:
    def __init__(self, path: str) -> None:
        self.path = path
        self.db: aiosqlite.Connection | None = None
        self._prefix_cache: dict[int, str] = {}  # expect: SLP501

    async def conn(self) -> aiosqlite.Connection:
        if self.db is None:  # expect: SLP503
            self.db = await aiosqlite.connect(self.path)
            await self.db.execute("CREATE TABLE IF NOT EXISTS prefix (guild INTEGER PRIMARY KEY, value TEXT)")
        return self.db

    async def prefix(self, guild_id: int) -> str:
        if guild_id not in self._prefix_cache:  # expect: SLP503
            db = await self.conn()
            async with db.execute("SELECT value FROM prefix WHERE guild = ?", (guild_id,)) as cur:
                row = await cur.fetchone()
            self._prefix_cache[guild_id] = row[0] if row else "!"
        return self._prefix_cache[guild_id]
