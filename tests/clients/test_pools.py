"""PoolSettings and the pool recipes, against a real PostgreSQL and a real HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

import pytest

import slipstream as ss

from ..conftest import load_example

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def recipes() -> ModuleType:
    return load_example("pools/recipes.py", "pool_recipes")


class TestPoolSettings:
    def test_from_env_and_explicit_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Sizes come from SLIPSTREAM_<NAME>_*; explicit arguments win."""
        monkeypatch.setenv("SLIPSTREAM_DB_POOL_SIZE", "7")
        monkeypatch.setenv("SLIPSTREAM_DB_RECYCLE_S", "600")
        monkeypatch.setenv("SLIPSTREAM_DB_PRE_PING", "false")
        s = ss.PoolSettings.from_env("db", url="postgresql://x/y", max_overflow=0)
        assert (7, 0, 600.0, False) == (s.size, s.max_overflow, s.recycle_s, s.pre_ping)
        assert {"pool_size": 7, "pool_recycle": 600, "pool_pre_ping": False} == {
            k: s.sqlalchemy()[k] for k in ("pool_size", "pool_recycle", "pool_pre_ping")
        }

    def test_bad_env_value_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A malformed variable raises ValueError naming it."""
        monkeypatch.setenv("SLIPSTREAM_DB_POOL_SIZE", "many")
        with pytest.raises(ValueError, match="SLIPSTREAM_DB_POOL_SIZE"):
            ss.PoolSettings.from_env("DB")
        with pytest.raises(ValueError, match="'size'"):
            ss.PoolSettings(size=0)

    def test_equal_settings_are_one_registry_key(self, vrun: Run) -> None:
        """Two equal PoolSettings built separately share one pool in the registry."""

        async def main() -> bool:
            registry = ss.Registry()
            a = await registry.get("p", lambda s: [s.url], ss.PoolSettings(url="u"))
            b = await registry.get("p", lambda s: [s.url], ss.PoolSettings(url="u"))
            return a is b

        assert vrun(main())


class TestRecipes:
    def test_asyncpg_pool_once_pinged_and_closed(self, postgres_url: str, arun: Run) -> None:
        """The asyncpg pool is created once, pinged on reuse, and closed by the registry."""
        pytest.importorskip("asyncpg")
        r = recipes()

        async def main() -> tuple[int, bool, bool]:
            settings = ss.PoolSettings(url=postgres_url, size=2, max_overflow=1)
            async with ss.Registry() as registry:
                pool = await registry.get("pg", r.make_asyncpg_pool, settings)
                again = await registry.get(
                    "pg", r.make_asyncpg_pool, settings, alive=r.asyncpg_alive
                )
                value = await again.fetchval("SELECT 41 + 1")
                assert (1, 1) == (
                    registry.statistics()["pg"].creations,
                    registry.statistics()["pg"].hits,
                )
            return value, pool is again, pool.is_closing()

        assert (42, True, True) == arun(main())

    def test_sqlalchemy_async_engine_with_dispose(self, postgres_url: str, arun: Run) -> None:
        """The SQLAlchemy engine gets pre-ping and recycle, and is disposed by close=."""
        pytest.importorskip("sqlalchemy.ext.asyncio")
        pytest.importorskip("greenlet")
        from sqlalchemy import text

        r = recipes()
        disposed = []

        async def dispose(engine: Any) -> None:
            disposed.append(engine)
            await r.dispose_async(engine)

        async def main() -> tuple[int, bool, int]:
            settings = ss.PoolSettings(url=postgres_url, size=2, recycle_s=900)
            async with ss.Registry() as registry:
                engine = await registry.get("sa", r.make_async_engine, settings, close=dispose)
                async with engine.connect() as conn:
                    value = (await conn.execute(text("SELECT 7"))).scalar_one()
                pool = engine.sync_engine.pool
                return value, pool._pre_ping, pool._recycle

        assert (7, True, 900) == arun(main())
        assert 1 == len(disposed)

    def test_sync_engine_through_get_sync(self, postgres_url: str) -> None:
        """Sync code gets one psycopg2 engine per settings and closes it with dispose."""
        pytest.importorskip("psycopg2")
        from sqlalchemy import text

        r = recipes()
        registry = ss.Registry()
        settings = ss.PoolSettings(url=postgres_url, size=1)
        engine = registry.get_sync("sa", r.make_engine, settings, close=lambda e: e.dispose())
        assert engine is registry.get_sync("sa", r.make_engine, settings)
        with engine.connect() as conn:
            assert 3 == conn.execute(text("SELECT 3")).scalar_one()
        asyncio.run(registry.aclose())
        assert 0 == engine.pool.checkedout()

    def test_http_client(self, arun: Run) -> None:
        """The httpx client is shared, talks over a real socket, and is closed at the end."""
        pytest.importorskip("httpx")
        r = recipes()

        async def main() -> tuple[bytes, bool]:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                async with ss.Registry() as registry:
                    settings = ss.PoolSettings(url=f"http://127.0.0.1:{port}")
                    client = await registry.get("http", r.make_http_client, settings)
                    body = (await client.get("/")).content
            finally:
                server.close()
                await server.wait_closed()
            return body, client.is_closed

        assert (b"ok", True) == arun(main())
