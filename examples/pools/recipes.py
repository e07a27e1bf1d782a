"""One pool per process, through the registry, sized from the environment.

The recipes of docs/recipes.md, as code the tests run against a real PostgreSQL:

    settings = ss.PoolSettings.from_env("DB", url="postgresql://postgres@127.0.0.1/test")
    pool = await registry.get("pg", make_asyncpg_pool, settings, alive=asyncpg_alive)
    engine = await registry.get("sa", make_async_engine, settings, close=dispose_async)
    client = await registry.get("http", make_http_client, ss.PoolSettings(url=base_url))
"""

from __future__ import annotations

from typing import Any

import slipstream as ss


async def make_asyncpg_pool(settings: ss.PoolSettings) -> Any:
    """An asyncpg pool with sizes, recycling and timeouts from the settings."""
    import asyncpg

    return await asyncpg.create_pool(settings.url, **settings.asyncpg())


async def asyncpg_alive(pool: Any) -> bool:
    """The pre-ping asyncpg lacks: one round trip before the pool is handed out again."""
    return bool(await pool.fetchval("SELECT 1") == 1)


def make_async_engine(settings: ss.PoolSettings) -> Any:
    """A SQLAlchemy AsyncEngine with pool_pre_ping, pool_recycle and sizes from the settings."""
    from sqlalchemy.ext.asyncio import create_async_engine

    url = settings.url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return create_async_engine(url, **settings.sqlalchemy())


async def dispose_async(engine: Any) -> None:
    """SQLAlchemy engines close with dispose(), which the registry cannot guess."""
    await engine.dispose()


def make_engine(settings: ss.PoolSettings) -> Any:
    """A sync SQLAlchemy Engine (psycopg2) for sync code such as seed 004's pipeline."""
    from sqlalchemy import create_engine

    url = settings.url.replace("postgresql://", "postgresql+psycopg2://", 1)
    return create_engine(url, **settings.sqlalchemy())


def make_http_client(settings: ss.PoolSettings) -> Any:
    """An httpx.AsyncClient with connection limits from the settings."""
    import httpx

    return httpx.AsyncClient(
        base_url=settings.url,
        limits=httpx.Limits(**settings.httpx()),
        timeout=settings.timeout_s,
    )
