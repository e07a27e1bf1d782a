"""``PostgresStore``: a checkpoint in a PostgreSQL database (``postgresql://`` URL, asyncpg).

The tables ``slipstream_runs`` and ``slipstream_items`` are created where missing (in the
connection's current schema), and a runs table made by a version without the owner columns
gets them added, its rows kept. A connection pool belongs to the event loop that made it: once
that loop has closed, ``is_open`` says so and the checkpoint opens a new pool.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

from ...core.errors import CheckpointError
from .sql import SqlStore

__all__ = ["PostgresStore"]

_COLUMNS = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'slipstream_runs'"
)


@functools.cache
def _pg_sql(sql: str) -> str:
    """Turn ``?`` placeholders into asyncpg's ``$n`` (the statements here have no literals
    containing ``?``); cached, as the statements are a handful of constants."""
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


class PostgresStore(SqlStore):
    """Statements through an asyncpg pool of up to two connections, on the loop that opened it."""

    REAL = "DOUBLE PRECISION"

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def is_open(self) -> bool:
        # its connections died with the loop that made them: not usable from any other
        return self._pool is not None and self._loop is not None and not self._loop.is_closed()

    async def open(self) -> None:
        try:
            import asyncpg  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise CheckpointError(
                "a PostgreSQL checkpoint needs asyncpg: pip install 'slipstream[postgres]'"
            ) from exc
        try:
            pool = await asyncpg.create_pool(self.url, min_size=1, max_size=2)
        except (OSError, asyncpg.PostgresError) as exc:
            raise CheckpointError(f"cannot reach the checkpoint database: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                await conn.execute(self.tables())
                have = {r[0] for r in await conn.fetch(_COLUMNS)}
                # a table made by an earlier version: add the columns, keep the rows
                for name, kind in self.owner_columns_missing(have):
                    await conn.execute(
                        f"ALTER TABLE slipstream_runs ADD COLUMN IF NOT EXISTS {name} {kind}"
                    )
        except BaseException:
            await pool.close()
            raise
        self._pool, self._loop = pool, asyncio.get_running_loop()

    async def close(self) -> None:
        pool, self._pool, self._loop = self._pool, None, None
        if pool is not None:
            await pool.close()

    async def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_pg_sql(sql), rows)

    async def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._pool.acquire() as conn:
            return [tuple(r) for r in await conn.fetch(_pg_sql(sql), *params)]

    def _sender(self) -> Callable[[str, Sequence[Any]], bool]:
        loop = asyncio.get_running_loop()

        async def run(sql: str, params: Sequence[Any]) -> bool:
            pool = self._pool
            if pool is None:  # closed
                return False
            async with pool.acquire() as conn:
                await conn.execute(_pg_sql(sql), *params)
            return True

        def send(sql: str, params: Sequence[Any]) -> bool:
            if loop.is_closed():
                return False
            return asyncio.run_coroutine_threadsafe(run(sql, params), loop).result(timeout=60)

        return send
