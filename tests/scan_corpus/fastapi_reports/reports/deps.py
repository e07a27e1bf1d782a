from collections.abc import AsyncIterator
from functools import lru_cache

import boto3
import httpx
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

engine = create_async_engine("postgresql+asyncpg://reports@db/reports")
Session = async_sessionmaker(engine)
_http: httpx.AsyncClient | None = None


async def get_db() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


def get_http(request: Request) -> httpx.AsyncClient:
    return request.app.state.http


@lru_cache
def get_s3():
    return boto3.client("s3")


def shared_http() -> httpx.AsyncClient:
    global _http
    if _http is None:
        _http = httpx.AsyncClient(timeout=10)
    return _http
