"""Lazy initialisation in async code: races and the safe shapes."""

import asyncio

import aiohttp
import asyncpg
import httpx

_client: httpx.AsyncClient | None = None
_client_lock = asyncio.Lock()
_conns = {}  # expect: SLP501
_conn_lock = asyncio.Lock()


async def make_client() -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url="https://api.internal")
    await client.get("/warmup")
    return client


async def get_client() -> httpx.AsyncClient:
    global _client
    if _client is None:  # expect: SLP503
        _client = await make_client()
    return _client


async def get_client_locked() -> httpx.AsyncClient:
    global _client
    if _client is None:  # ok: SLP503 double-checked, the await happens under the lock
        async with _client_lock:
            if _client is None:  # ok: SLP503 under the lock
                _client = await make_client()
    return _client


async def connection_for(dsn: str) -> asyncpg.Connection:
    if dsn not in _conns:  # expect: SLP503
        conn = await asyncpg.connect(dsn)
        _conns[dsn] = conn
    return _conns[dsn]


async def connection_for_locked(dsn: str) -> asyncpg.Connection:
    async with _conn_lock:
        if dsn not in _conns:  # ok: SLP503 under the lock
            _conns[dsn] = await asyncpg.connect(dsn)
    return _conns[dsn]


def get_client_sync() -> httpx.Client:
    global _sync_client
    if _sync_client is None:  # ok: SLP503 not async
        _sync_client = httpx.Client()
    return _sync_client


_sync_client: httpx.Client | None = None


class TokenManager:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def _expired(self) -> bool:
        return asyncio.get_running_loop().time() > self._expires

    async def token(self) -> str:
        if self._token is None or self._expired():  # expect: SLP503
            resp = await self.http.post("/oauth/token", data={"grant_type": "client_credentials"})
            self._token = resp.json()["access_token"]
            self._expires = asyncio.get_running_loop().time() + 300
        return self._token

    async def token_locked(self) -> str:
        async with self._lock:
            if self._token is None or self._expired():  # ok: SLP503 under the lock
                resp = await self.http.post("/oauth/token", data={"grant_type": "client_credentials"})
                self._token = resp.json()["access_token"]
        return self._token


class Catalog:
    def __init__(self) -> None:
        self._models: list[dict] = []
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._initialized = False

    async def _fetch(self) -> list[dict]:
        session = await self.session()
        resp = await session.get("https://catalog.internal/models")
        return await resp.json()

    async def models(self) -> list[dict]:
        if not self._models:  # expect: SLP503
            data = await self._fetch()
            self._models = [m for m in data if m.get("public")]
        return self._models

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # ok: SLP503 assigned before the await
            self._session = aiohttp.ClientSession()
            await self._session.get("https://catalog.internal/login")
        return self._session

    async def start(self) -> None:
        if self._task is None:  # ok: SLP503 no await in the body
            self._task = asyncio.create_task(self._refresh_forever())  # ok: SLP502 stored on self

    async def _refresh_forever(self) -> None:
        while True:
            self._models = await self._fetch()
            await asyncio.sleep(60)

    async def require_session(self) -> aiohttp.ClientSession:
        if self._session is None:  # ok: SLP503 raises, never assigns
            raise RuntimeError("call start() first")
        await asyncio.sleep(0)
        return self._session

    async def init(self) -> None:
        if not self._initialized:  # expect: SLP503
            await self.session()
            await self._fetch()
            self._initialized = True

    async def warm(self, dsn: str) -> None:
        conn = None
        if conn is None:  # ok: SLP503 a local variable
            conn = await asyncpg.connect(dsn)
        await conn.close()
