import asyncio
import hashlib
import json
import time
from typing import Any

from findingmodel.index.repository import ModelIndex


class QueryCache:
    """LRU cache for query results, bounded (size check + del)."""

    def __init__(self, max_size: int = 1000, ttl: float = 300) -> None:
        self.max_size = max_size
        self.ttl = ttl
        self._cache: dict[str, Any] = {}  # ok: SLP501 evicted by size and TTL
        self._timestamps: dict[str, float] = {}  # ok: SLP501
        self._lock = asyncio.Lock()

    def _make_key(self, query: dict, collection: str) -> str:
        query_str = json.dumps(query, sort_keys=True)
        return f"{collection}:{hashlib.md5(query_str.encode()).hexdigest()}"

    async def get(self, query: dict, collection: str) -> Any | None:
        key = self._make_key(query, collection)
        async with self._lock:
            if key in self._cache:
                if time.time() - self._timestamps[key] < self.ttl:
                    return self._cache[key]
                del self._cache[key]
                del self._timestamps[key]
        return None

    async def set(self, query: dict, collection: str, result: Any) -> None:
        key = self._make_key(query, collection)
        async with self._lock:
            if len(self._cache) >= self.max_size:
                oldest = min(self._timestamps, key=self._timestamps.get)
                del self._cache[oldest]
                del self._timestamps[oldest]
            self._cache[key] = result
            self._timestamps[key] = time.time()


class CachedSearch:
    def __init__(self, index: ModelIndex, cache: QueryCache) -> None:
        self.index = index
        self.cache = cache

    async def search_many(self, queries: list[str]) -> list[list[dict]]:
        out = []
        for q in queries:
            hit = await self.cache.get({"q": q}, "models")  # ok: SLP201, SLP301 an in-memory cache
            if hit is None:
                hit = await self.index.search(q)  # expect: SLP201
                await self.cache.set({"q": q}, "models", hit)  # ok: SLP202 an in-memory cache
            out.append(hit)
        return out
