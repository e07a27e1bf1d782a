import asyncio
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shop.models import Base
from shop.settings import settings

engine = create_async_engine(settings.database_url, pool_size=10, max_overflow=5)
SessionFactory = async_sessionmaker(engine, expire_on_commit=False)


async def provide_session() -> AsyncIterator[AsyncSession]:
    async with SessionFactory() as session:
        yield session


class SchemaBootstrap:
    """Creates the tables on first use (dev and test deployments only)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._ready = False
        self._lock = asyncio.Lock()

    async def ensure(self) -> None:
        if not self._ready:  # expect: SLP503
            async with self.engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            self._ready = True

    async def ensure_locked(self) -> None:
        async with self._lock:
            if not self._ready:  # ok: SLP503 under an asyncio.Lock
                async with self.engine.begin() as conn:
                    await conn.run_sync(Base.metadata.create_all)
                self._ready = True


bootstrap = SchemaBootstrap(engine)
