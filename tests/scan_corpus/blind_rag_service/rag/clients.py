import os
from functools import lru_cache

import asyncpg
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI, OpenAI

EMBED_MODEL = "text-embedding-3-small"
CHAT_MODEL = "claude-sonnet-4-20250514"


@lru_cache(maxsize=1)
def openai_client() -> AsyncOpenAI:
    return AsyncOpenAI(api_key=os.environ["OPENAI_API_KEY"], max_retries=3)


@lru_cache(maxsize=1)
def anthropic_client() -> AsyncAnthropic:
    return AsyncAnthropic()


def sync_openai() -> OpenAI:
    return OpenAI()


class VectorStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, max_size=8)

    async def nearest(self, embedding: list[float], k: int = 5) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT id, text, source FROM chunk ORDER BY embedding <=> $1 LIMIT $2",
            str(embedding),
            k,
        )

    async def add(self, text: str, source: str, embedding: list[float]) -> None:
        await self.pool.execute(
            "INSERT INTO chunk (text, source, embedding) VALUES ($1, $2, $3)",
            text,
            source,
            str(embedding),
        )

    async def add_many(self, rows: list[tuple[str, str, list[float]]]) -> None:
        await self.pool.executemany(
            "INSERT INTO chunk (text, source, embedding) VALUES ($1, $2, $3)",
            [(t, s, str(e)) for t, s, e in rows],
        )
